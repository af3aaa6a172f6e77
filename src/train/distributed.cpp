// The process group of data-parallel training: rendezvous through c10d's TCPStore, then c10d's
// ProcessGroupGloo (CPU) or ProcessGroupNCCL (CUDA). Only this file includes c10d's headers; it
// builds without them (LUMINARS_HAVE_GLOO / LUMINARS_HAVE_NCCL unset), and then a run on more than
// one process is a clear error.
#include "train/distributed.h"

#include <torch/torch.h>
#include <torch/version.h>

#include <charconv>
#include <csignal>
#include <cstdlib>
#include <map>
#include <thread>
#include <utility>

#include "core/error.h"

#if defined(LUMINARS_HAVE_GLOO) || defined(LUMINARS_HAVE_NCCL)
#define LUMINARS_HAVE_C10D 1
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif
#ifdef LUMINARS_HAVE_GLOO
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef LUMINARS_HAVE_NCCL
#ifndef USE_C10D_NCCL
#define USE_C10D_NCCL
#endif
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

namespace luminars {

// ---------------------------------------------------------------------------------------------
// Launch environment
// ---------------------------------------------------------------------------------------------

namespace {

// A whole number in [lo, hi] from the start of `text` (the rest ignored when `prefix_only`).
bool parse_int(const char* text, int lo, int hi, int& out, bool prefix_only = false) {
  const char* end = text + std::char_traits<char>::length(text);
  int v = 0;
  auto [ptr, ec] = std::from_chars(text, end, v);
  if (ec != std::errc() || ptr == text || (!prefix_only && ptr != end) || v < lo || v > hi) return false;
  out = v;
  return true;
}

}  // namespace

LaunchEnv launch_env(const std::function<const char*(const char*)>& getenv_fn) {
  auto get = [&](const char* name) -> const char* {
    const char* v = getenv_fn ? getenv_fn(name) : std::getenv(name);
    return v && *v ? v : nullptr;
  };
  auto number = [&](const char* name, int lo, int hi) {
    int v = 0;
    if (!parse_int(get(name), lo, hi, v))
      throw Error(std::string(name) + "=" + get(name) + ": expected a whole number from " + std::to_string(lo) + " to " + std::to_string(hi));
    return v;
  };
  constexpr int kMaxRanks = 1 << 20;
  LaunchEnv e;
  if (get("RANK") || get("WORLD_SIZE")) {
    if (!get("RANK") || !get("WORLD_SIZE")) throw Error("RANK and WORLD_SIZE must be set together (torchrun sets both)");
    e.launcher = "torchrun";
    e.world_size = number("WORLD_SIZE", 1, kMaxRanks);
    e.rank = number("RANK", 0, e.world_size - 1);
    // Without LOCAL_RANK every rank is taken to run on this machine (a launch by hand).
    e.local_rank = get("LOCAL_RANK") ? number("LOCAL_RANK", 0, e.world_size - 1) : e.rank;
    e.local_world_size = get("LOCAL_WORLD_SIZE") ? number("LOCAL_WORLD_SIZE", 1, e.world_size) : e.world_size;
    if (get("MASTER_ADDR")) e.master_addr = get("MASTER_ADDR");
  } else if (get("SLURM_PROCID") && (get("SLURM_STEP_NUM_TASKS") || get("SLURM_NTASKS"))) {
    // srun sets SLURM_STEP_NUM_TASKS for its job step; a batch script alone sees only SLURM_NTASKS.
    e.launcher = "slurm";
    e.world_size = number(get("SLURM_STEP_NUM_TASKS") ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS", 1, kMaxRanks);
    e.rank = number("SLURM_PROCID", 0, e.world_size - 1);
    e.local_rank = get("SLURM_LOCALID") ? number("SLURM_LOCALID", 0, e.world_size - 1) : 0;
    // Tasks on this node: "4" or "4(x2)" (the count of the first nodes) in SLURM_STEP_TASKS_PER_NODE.
    int per_node = 0, nodes = 0;
    if (const char* t = get("SLURM_STEP_TASKS_PER_NODE"); t && parse_int(t, 1, kMaxRanks, per_node, true)) {
      e.local_world_size = per_node;
    } else if (const char* n = get("SLURM_NTASKS_PER_NODE"); n && parse_int(n, 1, kMaxRanks, per_node, true)) {
      e.local_world_size = per_node;
    } else if (const char* nn = get("SLURM_STEP_NUM_NODES") ? get("SLURM_STEP_NUM_NODES") : get("SLURM_NNODES");
               nn && parse_int(nn, 1, kMaxRanks, nodes)) {
      e.local_world_size = (e.world_size + nodes - 1) / nodes;
    } else {
      e.local_world_size = 1;
    }
    e.local_world_size = std::max(e.local_world_size, e.local_rank + 1);
    if (e.world_size > 1) {
      if (!get("MASTER_ADDR"))
        throw Error("under Slurm, set MASTER_ADDR to the node of rank 0 before srun, e.g. "
                    "export MASTER_ADDR=$(scontrol show hostnames \"$SLURM_JOB_NODELIST\" | head -n 1)");
      e.master_addr = get("MASTER_ADDR");
    }
  }
  if (get("MASTER_PORT")) e.master_port = number("MASTER_PORT", 1, 65535);
  return e;
}

BatchPart batch_part(int64_t batch, int rank, int world) {
  if (world <= 1) return {};
  if (batch % world != 0)
    throw Error("the batch of " + std::to_string(batch) + " does not split evenly over " + std::to_string(world) +
                " ranks: give --batch a multiple of " + std::to_string(world) + " (each rank trains batch / ranks of every batch)");
  const int64_t per_rank = batch / world;
  return {rank * per_rank, per_rank};
}

bool writes_files(const ProcessGroup* group) { return group == nullptr || group->rank() == 0; }

void distributed_fault_hook(int rank, int64_t step) {
  static const auto fault = [] {
    struct Fault {
      int rank = -1;
      int64_t step = -1;
      std::string kind;
    } f;
    const char* v = std::getenv("LUMINARS_DIST_FAULT");
    if (!v || !*v) return f;
    const std::string s(v);
    const auto a = s.find(':'), b = s.find(':', a == std::string::npos ? a : a + 1);
    if (a == std::string::npos || b == std::string::npos) throw Error("LUMINARS_DIST_FAULT=" + s + ": expected RANK:STEP:kill or RANK:STEP:hang");
    f.rank = std::stoi(s.substr(0, a));
    f.step = std::stoll(s.substr(a + 1, b - a - 1));
    f.kind = s.substr(b + 1);
    if (f.kind != "kill" && f.kind != "hang") throw Error("LUMINARS_DIST_FAULT=" + s + ": the fault is kill or hang");
    return f;
  }();
  if (fault.rank != rank || fault.step != step) return;
  std::fprintf(stderr, "rank %d: LUMINARS_DIST_FAULT: %s at step %lld\n", rank, fault.kind.c_str(), static_cast<long long>(step));
  if (fault.kind == "kill") std::raise(SIGKILL);
  for (;;) std::this_thread::sleep_for(std::chrono::seconds(1));  // stalled: alive, never answering
}

// ---------------------------------------------------------------------------------------------
// Process group
// ---------------------------------------------------------------------------------------------

bool gloo_available() {
#ifdef LUMINARS_HAVE_GLOO
  return true;
#else
  return false;
#endif
}

bool nccl_available() {
#ifdef LUMINARS_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

#ifdef LUMINARS_HAVE_C10D

namespace {

std::string message_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

}  // namespace

// c10d's process groups derive from c10d::Backend since LibTorch 2.0, from c10d::ProcessGroup before.
#if TORCH_VERSION_MAJOR >= 2
using C10dGroup = c10d::Backend;
#else
using C10dGroup = c10d::ProcessGroup;
#endif

struct ProcessGroup::Impl {
  LaunchEnv env;
  std::string backend;
  std::chrono::milliseconds timeout{0}, rank0_timeout{0};
  c10::intrusive_ptr<c10d::Store> store;
  int64_t exchanges = 0;  // store exchanges so far: every rank makes the same ones, in the same order
  c10::intrusive_ptr<C10dGroup> group;
  bool failed = false;  // a collective failed: the group is left as it is (tearing it down may block)

  [[noreturn]] void fail(const std::string& what, const std::exception& e) {
    failed = true;
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + ": " + what + " failed: " +
                message_of(e) + " (another rank died, or stalled for longer than the timeout of " +
                std::to_string(timeout.count() / 1000) + " s, --dist-timeout)");
  }

  // A fresh store key for the next exchange, the same on every rank.
  std::string next_key(const std::string& kind) { return "luminars/" + kind + "/" + std::to_string(++exchanges); }

  void set(const std::string& key, const std::string& value, const std::string& what) {
    try {
      store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }
  std::string get(const std::string& key, const std::string& what) {
    try {
      const auto v = store->get(key);
      return std::string(v.begin(), v.end());
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }

  // NCCL reduces GPU tensors only: CPU ones (a loss, a step count) go to this rank's GPU first.
  at::Tensor on_backend_device(const at::Tensor& t) const {
    if (backend == "nccl" && !t.is_cuda()) return t.to(torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank)));
    return t;
  }

  template <class Work>
  void wait(Work& work, const std::string& what) {
    try {
      work->wait();
    } catch (const std::exception& e) {
      fail(what, e);
    }
  }

  // Runs `collective` (an all-reduce, a broadcast) once per dtype and device over `tensors`
  // flattened end to end (c10d reads a list of tensors as replicas on several devices, not as
  // several tensors), then copies the result back into them when `write_back`.
  template <class Collective>
  void flattened(const std::vector<at::Tensor>& tensors, bool write_back, Collective collective, const std::string& what) {
    std::map<std::pair<int, std::string>, std::vector<std::size_t>> groups;
    for (std::size_t i = 0; i < tensors.size(); ++i)
      groups[{static_cast<int>(tensors[i].scalar_type()), tensors[i].device().str()}].push_back(i);
    torch::NoGradGuard no_grad;
    for (const auto& [key, members] : groups) {
      std::vector<at::Tensor> flat_parts;
      for (auto i : members) flat_parts.push_back(tensors[i].detach().reshape({-1}));
      std::vector<at::Tensor> flat{on_backend_device(torch::cat(flat_parts))};
      auto work = collective(flat);
      wait(work, what);
      if (!write_back) continue;
      int64_t offset = 0;
      for (auto i : members) {
        const int64_t n = tensors[i].numel();
        auto target = tensors[i].detach();
        target.copy_(flat[0].narrow(0, offset, n).view(tensors[i].sizes()));
        offset += n;
      }
    }
  }
};

namespace {

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

class PendingWork : public ProcessGroup::Pending {
 public:
  PendingWork(c10::intrusive_ptr<c10d::Work> work, std::function<void(c10::intrusive_ptr<c10d::Work>&)> wait)
      : work_(std::move(work)), wait_(std::move(wait)) {}
  void wait() override {
    if (work_) wait_(work_);
    work_.reset();
  }

 private:
  c10::intrusive_ptr<c10d::Work> work_;
  std::function<void(c10::intrusive_ptr<c10d::Work>&)> wait_;
};

}  // namespace

ProcessGroup::ProcessGroup(const LaunchEnv& env, const DistributedOptions& options, bool cuda) : impl_(std::make_unique<Impl>()) {
  auto& s = *impl_;
  s.env = env;
  s.timeout = options.timeout;
  s.rank0_timeout = options.rank0_timeout;
  s.backend = options.backend == "auto" ? (cuda ? "nccl" : "gloo") : options.backend;
  if (s.backend != "gloo" && s.backend != "nccl") throw Error("--dist-backend must be auto, gloo or nccl, got '" + options.backend + "'");
  if (s.backend == "nccl" && !nccl_available())
    throw Error("--dist-backend nccl: this build of luminars has no NCCL (its LibTorch was built without it, or nccl.h was "
                "not found at configure time); use --dist-backend gloo, or build against PyTorch's CUDA LibTorch");
  if (s.backend == "nccl" && !cuda) throw Error("NCCL reduces CUDA tensors: train with --device cuda, or use --dist-backend gloo");
  if (s.backend == "gloo" && !gloo_available())
    throw Error("this build of luminars has no Gloo process group (gloo's headers were not found at configure time: "
                "install libgloo-dev and reconfigure)");
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<std::size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = options.timeout;
    s.store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + ": rendezvous at " + where +
                " (MASTER_ADDR:MASTER_PORT) failed: " + message_of(e) +
                (env.rank == 0 ? std::string(" (is the port free, and did every rank start") : std::string(" (did rank 0 start, is the address reachable")) +
                " within the timeout of " + std::to_string(options.timeout.count() / 1000) + " s, --dist-timeout?)");
  }
  try {
#ifdef LUMINARS_HAVE_NCCL
    if (s.backend == "nccl") {
      c10::cuda::set_device(static_cast<c10::DeviceIndex>(env.local_rank));
      auto o = c10d::ProcessGroupNCCL::Options::create();
      o->timeout = options.timeout;
      s.group = c10::make_intrusive<c10d::ProcessGroupNCCL>(s.store, env.rank, env.world_size, o);
    }
#endif
#ifdef LUMINARS_HAVE_GLOO
    if (s.backend == "gloo") {
      auto o = c10d::ProcessGroupGloo::Options::create(options.timeout);
      // GLOO_SOCKET_IFNAME names the network interface, as for PyTorch; a loopback MASTER_ADDR
      // means every rank is on this machine; otherwise the address this host's name resolves to.
      const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
      if (ifname && *ifname)
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (is_loopback(env.master_addr))
        o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
      else
        o->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      s.group = c10::make_intrusive<c10d::ProcessGroupGloo>(s.store, env.rank, env.world_size, o);
    }
#endif
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) + ": forming the " + s.backend +
                " process group through " + where + " failed: " + message_of(e) + " (did every rank join within the timeout of " +
                std::to_string(options.timeout.count() / 1000) + " s, --dist-timeout?)");
  }
  if (!s.group) throw Error("no " + s.backend + " process group in this build");
}

ProcessGroup::~ProcessGroup() {
  if (impl_ && impl_->failed) {
    // A peer is gone: c10d's destructors may wait on it. The process is about to exit anyway.
    (void)impl_->group.release();
    (void)impl_->store.release();
  }
}

void ProcessGroup::all_reduce_sum(std::vector<at::Tensor>& tensors, const std::string& what) {
  impl_->flattened(tensors, true, [&](std::vector<at::Tensor>& flat) { return impl_->group->allreduce(flat); }, what);
}

void ProcessGroup::broadcast(const std::vector<at::Tensor>& tensors, const std::string& what) {
  impl_->flattened(tensors, rank() != 0, [&](std::vector<at::Tensor>& flat) { return impl_->group->broadcast(flat); }, what);
}

std::unique_ptr<ProcessGroup::Pending> ProcessGroup::start_all_reduce_sum(at::Tensor& tensor, const std::string& what) {
  TORCH_CHECK(tensor.is_contiguous(), "start_all_reduce_sum: the tensor must be contiguous");
  std::vector<at::Tensor> one{tensor};
  c10::intrusive_ptr<c10d::Work> work = impl_->group->allreduce(one);
  Impl* impl = impl_.get();
  return std::make_unique<PendingWork>(std::move(work), [impl, what](c10::intrusive_ptr<c10d::Work>& w) { impl->wait(w, what); });
}

std::vector<std::string> ProcessGroup::gather_text(const std::string& text, const std::string& what) {
  auto& s = *impl_;
  const std::string key = s.next_key("gather");
  s.set(key + "/" + std::to_string(rank()), text, what);
  std::vector<std::string> all;
  if (rank() != 0) return all;
  for (int r = 0; r < size(); ++r) all.push_back(s.get(key + "/" + std::to_string(r), what));
  return all;
}

std::string ProcessGroup::broadcast_text(const std::string& text, const std::string& what) {
  auto& s = *impl_;
  const std::string key = s.next_key("broadcast");
  std::string value = text;
  if (rank() == 0)
    s.set(key, text, what);
  else
    value = s.get(key, what);
  // Ends together: rank 0, which serves the store, leaves only once every rank has read the value.
  std::vector<at::Tensor> done{torch::zeros({1}, torch::kInt32)};
  all_reduce_sum(done, what);
  return value;
}

void ProcessGroup::rank0_section(const std::string& what, const std::function<void()>& work) {
  auto& s = *impl_;
  const std::string key = s.next_key("rank0");
  const std::string me = "rank " + std::to_string(rank()) + " of " + std::to_string(size());
  // Rank 0 posts its outcome under `key` ("done", or the error); the others wait for it in the
  // store with the long timeout. One small all-reduce then ends the section together, so that no
  // rank leaves (and rank 0, which serves the store, does not exit) before every rank has it.
  std::string failure;
  if (rank() == 0) {
    try {
      work();
    } catch (const std::exception& e) {
      failure = e.what();
    }
    s.set(key, failure.empty() ? std::string("done") : failure, what);
  } else {
    try {
      s.store->wait({key}, s.rank0_timeout);
    } catch (const std::exception& e) {
      s.failed = true;
      throw Error(me + ": waiting for rank 0 (" + what + ") failed: " + message_of(e) +
                  " (rank 0 died, or took longer than the timeout of " + std::to_string(s.rank0_timeout.count() / 1000) +
                  " s, --dist-rank0-timeout)");
    }
  }
  std::vector<at::Tensor> outcome{torch::tensor({failure.empty() ? 0 : 1}, torch::kInt32)};
  all_reduce_sum(outcome, "ending rank 0's " + what);
  if (outcome[0].item<int>() == 0) return;
  if (rank() == 0) {
    // Rank 0 waits (no longer than the collectives' timeout) until the others have read its error.
    std::vector<std::string> acks;
    for (int r = 1; r < size(); ++r) acks.push_back(key + "/read-by/" + std::to_string(r));
    try {
      s.store->wait(acks, s.timeout);
    } catch (const std::exception&) {
    }
    throw Error(failure);
  }
  const std::string error = s.get(key, what);
  s.set(key + "/read-by/" + std::to_string(rank()), "", what);
  throw Error(me + ": rank 0 failed while " + what + ": " + error);
}

int ProcessGroup::rank() const { return impl_->env.rank; }
int ProcessGroup::size() const { return impl_->env.world_size; }
int ProcessGroup::local_rank() const { return impl_->env.local_rank; }
const std::string& ProcessGroup::backend() const { return impl_->backend; }
std::chrono::milliseconds ProcessGroup::timeout() const { return impl_->timeout; }
std::chrono::milliseconds ProcessGroup::rank0_timeout() const { return impl_->rank0_timeout; }

#else  // no c10d process group in this build

struct ProcessGroup::Impl {
  LaunchEnv env;
  std::string backend;
  std::chrono::milliseconds timeout{0}, rank0_timeout{0};
};

ProcessGroup::ProcessGroup(const LaunchEnv& env, const DistributedOptions&, bool) {
  throw Error("this build of luminars has no distributed training (neither Gloo's headers nor NCCL were found at configure "
              "time: install libgloo-dev and reconfigure); asked to run as rank " + std::to_string(env.rank) + " of " +
              std::to_string(env.world_size));
}
ProcessGroup::~ProcessGroup() = default;
void ProcessGroup::all_reduce_sum(std::vector<at::Tensor>&, const std::string&) {}
void ProcessGroup::broadcast(const std::vector<at::Tensor>&, const std::string&) {}
std::unique_ptr<ProcessGroup::Pending> ProcessGroup::start_all_reduce_sum(at::Tensor&, const std::string&) { return nullptr; }
std::vector<std::string> ProcessGroup::gather_text(const std::string& text, const std::string&) { return {text}; }
std::string ProcessGroup::broadcast_text(const std::string& text, const std::string&) { return text; }
void ProcessGroup::rank0_section(const std::string&, const std::function<void()>& work) { work(); }
int ProcessGroup::rank() const { return impl_->env.rank; }
int ProcessGroup::size() const { return impl_->env.world_size; }
int ProcessGroup::local_rank() const { return impl_->env.local_rank; }
const std::string& ProcessGroup::backend() const { return impl_->backend; }
std::chrono::milliseconds ProcessGroup::timeout() const { return impl_->timeout; }
std::chrono::milliseconds ProcessGroup::rank0_timeout() const { return impl_->rank0_timeout; }

#endif

}  // namespace luminars
