#include "core/threads.h"

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

int configure_threads(int requested) {
  int n = requested > 0 ? requested : available_cores();
  torch::set_num_threads(n);
  return n;
}

}  // namespace luminars
