#include "distributed_flags.h"

#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <thread>

#include "core/error.h"
#include "core/threads.h"

extern char** environ;

namespace luminars::cli {

void add_distributed_flags(CLI::App* cmd, DistFlags& f) {
  const char* group = "Data-parallel training (README: Training on several GPUs or machines)";
  cmd->add_option("--nproc-per-node", f.nproc_per_node,
                  "ranks to start on this machine (one per GPU; on the CPU each gets its share of the cores)")
      ->check(CLI::Range(1, 1024))
      ->group(group);
  cmd->add_option("--nnodes", f.nnodes, "machines in the run, each started with the same command and its --node-rank")
      ->check(CLI::Range(1, 65536))
      ->group(group);
  cmd->add_option("--node-rank", f.node_rank, "this machine's number, 0 to nnodes-1 (rank 0 runs on node 0, at MASTER_ADDR)")
      ->check(CLI::Range(0, 65535))
      ->group(group);
  cmd->add_option("--dist-backend", f.backend, "auto (NCCL on CUDA, Gloo on the CPU), gloo or nccl")->capture_default_str()->group(group);
  cmd->add_option("--dist-timeout", f.timeout_s, "seconds a rank waits for the others (rendezvous, each collective) before failing")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 86400.0))
      ->group(group);
  cmd->add_option("--dist-rank0-timeout", f.rank0_timeout_s,
                  "seconds the other ranks wait while rank 0 alone validates, draws samples or writes a checkpoint")
      ->capture_default_str()
      ->check(CLI::Range(1.0, 7 * 86400.0))
      ->group(group);
}

namespace {

// A TCP port free at the moment (the kernel's pick), for a run on this machine alone.
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw Error(std::string("cannot pick a port for the ranks: ") + std::strerror(errno));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  ::close(fd);
  if (!ok) throw Error(std::string("cannot pick a port for the ranks: ") + std::strerror(errno));
  return ntohs(a.sin_port);
}

// The command line without the launcher's own flags (the ranks must not launch again).
std::vector<std::string> rank_command_line(const std::vector<std::string>& argv) {
  const char* launcher_flags[] = {"--nproc-per-node", "--nnodes", "--node-rank"};
  std::vector<std::string> out;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    bool skip = false;
    for (const char* flag : launcher_flags) {
      if (argv[i] == flag) {
        skip = true;
        ++i;  // and its value
        break;
      }
      if (argv[i].rfind(std::string(flag) + "=", 0) == 0) {
        skip = true;
        break;
      }
    }
    if (!skip) out.push_back(argv[i]);
  }
  return out;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sigabbrev_np(sig);
    return "was killed by signal " + std::to_string(sig) + (name ? std::string(" (SIG") + name + ")" : std::string());
  }
  return "ended with status " + std::to_string(status);
}

volatile std::sig_atomic_t g_forward_signal = 0;
void remember_signal(int sig) { g_forward_signal = sig; }

}  // namespace

bool launch_local_ranks(const DistFlags& f, const GlobalOptions& g) {
  if (f.nproc_per_node <= 1 && f.nnodes <= 1) return false;
  if (f.node_rank >= f.nnodes) throw Error("--node-rank " + std::to_string(f.node_rank) + " must be below --nnodes " + std::to_string(f.nnodes));
  if (std::getenv("RANK") || std::getenv("WORLD_SIZE"))
    throw Error("--nproc-per-node starts the ranks itself: do not combine it with a launcher that sets RANK/WORLD_SIZE (torchrun)");
  if (!gloo_available() && !nccl_available())
    throw Error("this build of luminars has no distributed training (neither Gloo's headers nor NCCL were found at configure "
                "time: install libgloo-dev and reconfigure)");
  if (g.argv.empty()) throw Error("--nproc-per-node: the command line is unknown");
  const char* addr_env = std::getenv("MASTER_ADDR");
  const char* port_env = std::getenv("MASTER_PORT");
  if (f.nnodes > 1 && !(addr_env && *addr_env))
    throw Error("--nnodes " + std::to_string(f.nnodes) + ": set MASTER_ADDR (and MASTER_PORT) to the address of node 0 on every node");
  const std::string master_addr = addr_env && *addr_env ? addr_env : "127.0.0.1";
  const std::string master_port = port_env && *port_env ? port_env : std::to_string(f.nnodes > 1 ? 29500 : free_port());
  const int n = f.nproc_per_node, world = n * f.nnodes;

  // Everything exec needs, made before fork (the child may only make async-signal-safe calls).
  const auto args = rank_command_line(g.argv);
  std::vector<char*> argv_c;
  for (const auto& a : args) argv_c.push_back(const_cast<char*>(a.c_str()));
  argv_c.push_back(nullptr);
  const char* overridden[] = {"RANK=", "WORLD_SIZE=", "LOCAL_RANK=", "LOCAL_WORLD_SIZE=", "MASTER_ADDR=", "MASTER_PORT="};
  std::vector<std::string> base_env;
  for (char** e = environ; *e; ++e) {
    const std::string v(*e);
    if (std::none_of(std::begin(overridden), std::end(overridden), [&](const char* p) { return v.rfind(p, 0) == 0; })) base_env.push_back(v);
  }
  std::vector<std::vector<std::string>> envs(static_cast<std::size_t>(n));
  std::vector<std::vector<char*>> envs_c(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto& e = envs[static_cast<std::size_t>(i)];
    e = base_env;
    e.push_back("RANK=" + std::to_string(f.node_rank * n + i));
    e.push_back("WORLD_SIZE=" + std::to_string(world));
    e.push_back("LOCAL_RANK=" + std::to_string(i));
    e.push_back("LOCAL_WORLD_SIZE=" + std::to_string(n));
    e.push_back("MASTER_ADDR=" + master_addr);
    e.push_back("MASTER_PORT=" + master_port);
    for (auto& s : e) envs_c[static_cast<std::size_t>(i)].push_back(s.data());
    envs_c[static_cast<std::size_t>(i)].push_back(nullptr);
  }

  // SIGINT/SIGTERM to this process reach every rank as SIGTERM: they stop together at the next
  // step with a checkpoint.
  struct sigaction sa {}, old_int {}, old_term {};
  sa.sa_handler = remember_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: waitpid returns to forward it
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  const pid_t parent = ::getpid();
  std::map<pid_t, int> running;  // pid -> rank
  for (int i = 0; i < n; ++i) {
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(std::string("cannot start rank ") + std::to_string(f.node_rank * n + i) + ": " + std::strerror(errno));
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the launcher gone: stop (with a checkpoint)
      if (::getppid() != parent) ::_exit(1);
      ::execve("/proc/self/exe", argv_c.data(), envs_c[static_cast<std::size_t>(i)].data());
      ::_exit(127);
    }
    running[pid] = f.node_rank * n + i;
  }
  std::cerr << "luminars: started ranks " << f.node_rank * n << "-" << f.node_rank * n + n - 1 << " of " << world << " (MASTER_ADDR "
            << master_addr << ", MASTER_PORT " << master_port << ")\n";

  // Wait for every rank; the first that fails stops the others.
  std::string failure;
  auto stop_the_rest = [&] {
    for (const auto& [pid, rank] : running) ::kill(pid, SIGTERM);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!running.empty() && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, WNOHANG);
      if (pid > 0)
        running.erase(pid);
      else
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    for (const auto& [pid, rank] : running) ::kill(pid, SIGKILL);
    while (!running.empty()) {
      int status = 0;
      const pid_t pid = ::waitpid(-1, &status, 0);
      if (pid > 0) running.erase(pid);
      else if (errno != EINTR) break;
    }
  };
  while (!running.empty()) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) {
        if (g_forward_signal)
          for (const auto& [p, rank] : running) ::kill(p, SIGTERM);
        g_forward_signal = 0;
        continue;
      }
      break;
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const int rank = it->second;
    running.erase(it);
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) continue;
    failure = "rank " + std::to_string(rank) + " of " + std::to_string(world) + " " + describe_status(status);
    if (!running.empty()) failure += "; the other ranks on this machine were stopped";
    stop_the_rest();
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (!failure.empty()) throw Error(failure);
  return true;
}

std::shared_ptr<ProcessGroup> join_run(const DistFlags& f, const GlobalOptions& g, torch::Device& device) {
  const LaunchEnv env = launch_env();
  if (!env.distributed()) return nullptr;
  configure_threads(g.threads > 0 ? g.threads : std::max(1, available_cores() / env.local_world_size));
  if (device.is_cuda() && !device.has_index()) device = torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
  DistributedOptions o;
  o.backend = f.backend;
  o.timeout = std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1000));
  o.rank0_timeout = std::chrono::milliseconds(static_cast<int64_t>(f.rank0_timeout_s * 1000));
  return std::make_shared<ProcessGroup>(env, o, device.is_cuda());
}

}  // namespace luminars::cli
