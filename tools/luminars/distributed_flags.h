// The data-parallel flags of the trainers (train, train-vae, train-clip) and what they do before
// training starts: spawn this machine's ranks (--nproc-per-node), or join the run the environment
// describes (torchrun's or Slurm's variables; train/distributed.h).
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>

#include "commands.h"
#include "train/distributed.h"

namespace luminars::cli {

struct DistFlags {
  int nproc_per_node = 1;    // ranks this command starts on this machine
  int nnodes = 1, node_rank = 0;
  std::string backend = "auto";
  double timeout_s = 300;    // a rank waiting longer than this for the others fails
  double rank0_timeout_s = 3600;  // ... or for rank 0 alone (validation, samples, a checkpoint)
};

// Adds the flags to `cmd`, bound to `f` (which must outlive the command).
void add_distributed_flags(CLI::App* cmd, DistFlags& f);

// With --nproc-per-node N (or --nnodes M): runs this same command line as N ranks of the run
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT in their environment),
// waits for them and returns true; the caller then returns. The first rank to fail makes the
// others stop (SIGTERM, then SIGKILL after a grace period) and this throws naming it.
// Returns false, doing nothing, without those flags.
bool launch_local_ranks(const DistFlags& f, const GlobalOptions& g);

// When the environment makes this process one rank of several: sets its intra-op threads to its
// share of the cores (unless --threads), puts a CUDA `device` on the GPU LOCAL_RANK, joins the run
// and returns its process group. Null for a single process.
std::shared_ptr<ProcessGroup> join_run(const DistFlags& f, const GlobalOptions& g, torch::Device& device);

}  // namespace luminars::cli
