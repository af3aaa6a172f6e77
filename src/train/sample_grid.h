// The fixed inputs of a training run's sample grids: the cache's sample prompts, seeded noise (the
// same at every grid of a run, so grids show progress), 12 Euler steps with guidance 4 against the
// cache's empty prompt. Shared by the denoiser and LoRA trainers.
#pragma once
#include <torch/torch.h>

#include "flow/sampler.h"
#include "train/latent_cache.h"

namespace luminars {

struct SampleGridInputs {
  torch::Tensor noise, ctx, pooled;  // [k,C,s,s], [k,L,D], [k,D] on the device
  SampleOptions options;
};

// False when the cache holds no sample prompts (no grid to draw).
bool has_sample_prompts(const LatentCache& cache);
SampleGridInputs sample_grid_inputs(const LatentCache& cache, const torch::Device& device);

}  // namespace luminars
