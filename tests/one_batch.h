// One fixed training batch and a loop that overfits it, shared by the CPU and CUDA training tests.
#pragma once
#include <torch/torch.h>

#include <functional>

#include "model/config.h"

namespace luminars::test {

struct OneBatch {
  torch::Tensor clean, noise, ctx, pooled, t;
};
// `batch` seeded random latents of 8×8, 7-token text and logit-normal t, on `device`.
OneBatch make_one_batch(const Config& cfg, torch::Device device, int64_t batch = 4);

struct OverfitResult {
  float first = 0, last = 0;  // loss of the first and the last step
  int steps = 0;
};
// Calls `step` (one optimizer step, returning its loss) until the loss is 20× below the first or
// `max_steps` have run; a non-finite loss fails the test and stops.
OverfitResult overfit(const std::function<float()>& step, int max_steps = 400);

}  // namespace luminars::test
