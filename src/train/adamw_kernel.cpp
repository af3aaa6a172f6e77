// Compiled on its own with -fno-math-errno (CMakeLists.txt), so the square roots vectorize.
#include "train/adamw_kernel.h"

#include <ATen/Parallel.h>

#include <cmath>

namespace luminars {
namespace {

// x86-64: an AVX2 copy (eight floats a vector instead of SSE2's four) chosen at load time where the
// CPU has it; AVX2 alone brings no FMA, so both copies round alike.
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target_clones("avx2", "default")))
#endif
void update_range(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end, const AdamWCoefficients& c) {
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * c.decay + c.step * mi / (std::sqrt(vi) / c.sqrt_bc2 + c.eps);
  }
}

}  // namespace

void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamWCoefficients& c) {
  at::parallel_for(0, n, 1 << 15, [&](int64_t begin, int64_t end) { update_range(p, g, m, v, begin, end, c); });
}

}  // namespace luminars
