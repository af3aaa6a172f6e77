#include "core/blas_kernels.h"

#include <dlfcn.h>
#include <strings.h>
#include <unistd.h>

#include <array>
#include <cstdlib>

namespace luminars {

std::string better_blas_kernels(const std::string& chosen, bool avx2_fma, bool avx512) {
  // OpenBLAS's x86-64 kernel sets from before AVX2 (its fallbacks for CPUs it does not know).
  static constexpr std::array<const char*, 7> kOld = {"Prescott", "Core2", "Penryn", "Dunnington", "Nehalem", "Atom", "Sandybridge"};
  bool old = false;
  for (const char* name : kOld) old = old || strcasecmp(chosen.c_str(), name) == 0;
  if (!old) return {};
  if (avx512) return "SkylakeX";
  if (avx2_fma) return "Haswell";
  return {};
}

std::string blas_kernels() {
  using CoreName = char* (*)();
  auto name = reinterpret_cast<CoreName>(dlsym(RTLD_DEFAULT, "openblas_get_corename"));
  const char* s = name ? name() : nullptr;
  return s ? std::string(s) : std::string();
}

std::string better_blas_kernels_for_this_cpu(const std::string& chosen) {
#if defined(__x86_64__)
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  const bool avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return better_blas_kernels(chosen, avx2_fma, avx512);
#else
  (void)chosen;
  return {};
#endif
}

void reexec_with_better_blas_kernels(char** argv) {
#if defined(__x86_64__)
  if (std::getenv("OPENBLAS_CORETYPE") != nullptr) return;  // named already (by the user, or by us before)
  const std::string better = better_blas_kernels_for_this_cpu(blas_kernels());
  if (better.empty()) return;
  if (setenv("OPENBLAS_CORETYPE", better.c_str(), 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: go on with the kernels loaded
#else
  (void)argv;
#endif
}

}  // namespace luminars
