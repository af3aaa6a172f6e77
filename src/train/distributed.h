// Data-parallel training on LibTorch's distributed engine, c10d (the engine PyTorch's DDP runs
// on): where this process stands in a run (the torchrun and Slurm environment variables), the
// TCPStore rendezvous, and a process group on Gloo (CPU) or NCCL (CUDA) with the few collectives
// training needs. Gradients are averaged by train/gradient_buckets.h.
//   W = world size (ranks), r = this rank, B = global batch: rank r trains samples [r·B/W, (r+1)·B/W)
//   of every batch, so W ranks make the same update as one process at batch B.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace at {
class Tensor;
}

namespace luminars {

// ---------------------------------------------------------------------------------------------
// Launch: who am I in the run
// ---------------------------------------------------------------------------------------------

// Where this process stands in a run, as its launcher told it through the environment:
//   torchrun (and `luminars train --nproc-per-node N`): RANK, WORLD_SIZE, LOCAL_RANK,
//     LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT
//   Slurm (srun):  SLURM_PROCID, SLURM_NTASKS, SLURM_LOCALID, SLURM_NTASKS_PER_NODE; MASTER_ADDR
//     must name the node of rank 0 (MASTER_PORT as above)
// torchrun's variables win where both are set. Neither: one process (world size 1).
struct LaunchEnv {
  int rank = 0, world_size = 1;
  int local_rank = 0, local_world_size = 1;  // ranks on this machine (its GPU index, its share of the cores)
  std::string master_addr = "127.0.0.1";     // the TCPStore of rank 0
  int master_port = 29500;
  std::string launcher;                      // "torchrun", "slurm", or empty for one process
  bool distributed() const { return world_size > 1; }
};

// Reads the environment through `getenv` (std::getenv by default); throws naming the variable
// when a value is missing, not a number or out of range.
LaunchEnv launch_env(const std::function<const char*(const char*)>& getenv = {});

// The part of every global batch of `batch` samples that `rank` of `world` trains on.
struct BatchPart {
  int64_t begin = 0, size = -1;  // size -1: the whole batch
  bool whole() const { return size < 0; }
};
// Throws when `batch` is not a multiple of `world` (the global batch semantics need equal parts).
BatchPart batch_part(int64_t batch, int rank, int world);

// ---------------------------------------------------------------------------------------------
// The process group
// ---------------------------------------------------------------------------------------------

struct DistributedOptions {
  std::string backend = "auto";              // auto (NCCL on CUDA, Gloo on the CPU), gloo or nccl
  std::chrono::milliseconds timeout{300000};  // rendezvous or a collective waiting longer fails
  // The other ranks waiting longer than this for work rank 0 does alone (validation, sample
  // grids, a checkpoint on a slow disk) fail; see ProcessGroup::rank0_section.
  std::chrono::milliseconds rank0_timeout{3600000};
};

// Whether this build has c10d's Gloo process group (gloo's headers at configure time) and NCCL
// (a LibTorch built with it, as PyTorch's CUDA wheel is).
bool gloo_available();
bool nccl_available();

class ProcessGroup {
 public:
  // Joins the run `env` describes: rank 0 serves a TCPStore at MASTER_ADDR:MASTER_PORT, every
  // rank connects, and the process group forms; returns when all W ranks have joined (throws
  // after the timeout otherwise). `cuda`: the tensors live on the GPU (selects NCCL for "auto").
  ProcessGroup(const LaunchEnv& env, const DistributedOptions& options, bool cuda);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const;
  int size() const;
  int local_rank() const;
  const std::string& backend() const;  // "gloo" or "nccl"
  std::chrono::milliseconds timeout() const;
  std::chrono::milliseconds rank0_timeout() const;

  // In place on every rank: the element-wise sum over the ranks. `what` names the operation in
  // the error a dead or stalled rank causes.
  void all_reduce_sum(std::vector<at::Tensor>& tensors, const std::string& what);
  // In place: rank 0's values on every rank (any dtypes and strides; flattened per dtype).
  void broadcast(const std::vector<at::Tensor>& tensors, const std::string& what);

  // An all-reduce (sum) started now, finished by wait(): the communication runs meanwhile.
  class Pending {
   public:
    virtual ~Pending() = default;
    virtual void wait() = 0;
  };
  std::unique_ptr<Pending> start_all_reduce_sum(at::Tensor& tensor, const std::string& what);

  // Small text through the rendezvous store (options, digests), each waiting up to timeout().
  // gather_text: every rank's `text` on rank 0, in rank order; the others get an empty list.
  std::vector<std::string> gather_text(const std::string& text, const std::string& what);
  // broadcast_text: rank 0's `text` on every rank; it returns on each rank once all have it.
  std::string broadcast_text(const std::string& text, const std::string& what);

  // Work that rank 0 alone does (validation, sample grids, writing a checkpoint): rank 0 runs
  // `work` while the others wait for it, up to rank0_timeout() instead of the collectives'
  // timeout(), with nothing else in flight. Every rank must call it at the same point. When
  // `work` throws on rank 0, the others end their wait with an error naming rank 0 and `what`.
  void rank0_section(const std::string& what, const std::function<void()>& work);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// True in the one process of a single-process run and on rank 0 of a distributed one: the
// process that writes checkpoints, samples and logs.
bool writes_files(const ProcessGroup* group);

// Fault injection for the tests: LUMINARS_DIST_FAULT="RANK:STEP:kill" makes rank RANK SIGKILL
// itself as it starts optimizer step STEP (1-based); "RANK:STEP:hang" makes it stall there.
void distributed_fault_hook(int rank, int64_t step);

}  // namespace luminars
