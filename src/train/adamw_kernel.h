// AdamW's update of one float32 tensor in one pass over memory (CPU): each element of the weight,
// its gradient and the two moments read once and written once, where the multi-tensor form makes
// about nine passes. The same formula as AdamW::step's:
//   p = p·decay;  m = β1·m + (1−β1)·g;  v = β2·v + (1−β2)·g²;  p += step · m / (√v / √bc2 + ε)
#pragma once
#include <cstdint>

namespace luminars {

struct AdamWCoefficients {
  float decay;         // 1 − lr·weight_decay
  float beta1, one_minus_beta1;
  float beta2, one_minus_beta2;
  float sqrt_bc2;      // √(1 − β2^t)
  float eps;
  float step;          // −lr / (1 − β1^t)
};

// Over n elements, split across LibTorch's intra-op threads.
void adamw_update(float* p, const float* g, float* m, float* v, int64_t n, const AdamWCoefficients& c);

}  // namespace luminars
