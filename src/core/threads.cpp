#include "core/threads.h"

#include <dlfcn.h>
#include <sched.h>

#include <thread>
#include <torch/torch.h>

namespace luminars {

int available_cores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned n = std::thread::hardware_concurrency();
  return n > 0 ? static_cast<int>(n) : 1;
}

void quiet_blas_threads() {
  // Debian's LibTorch calls OpenBLAS (pthread build) for matrix products. OpenBLAS keeps a thread
  // pool of its own whose workers spin after each call, taking the cores from LibTorch's OpenMP
  // workers (oneDNN convolutions, element-wise ops): measured here, the denoiser ran twice as
  // slowly with both pools at full width. One BLAS thread, many OpenMP threads is the fast mix.
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(1);
}

int configure_threads(int requested) {
  int n = requested > 0 ? requested : available_cores();
  torch::set_num_threads(n);
  quiet_blas_threads();
  return n;
}

}  // namespace luminars
