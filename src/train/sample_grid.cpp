#include "train/sample_grid.h"

#include "train/batch_sampler.h"

namespace luminars {

bool has_sample_prompts(const LatentCache& cache) { return cache.sample_ctx.defined() && cache.sample_ctx.size(0) > 0; }

SampleGridInputs sample_grid_inputs(const LatentCache& cache, const torch::Device& device) {
  const int64_t k = cache.sample_ctx.size(0), s = cache.info.latent_size;
  auto gen = seeded_generator({0x5A3B1E});
  SampleGridInputs in;
  in.noise = torch::randn({k, cache.info.latent_channels, s, s}, gen).to(device);
  in.ctx = cache.sample_ctx.to(device);
  in.pooled = cache.sample_pooled.to(device);
  in.options.steps = 12;
  in.options.guidance.scale = 4.0;
  in.options.guidance.null_ctx = cache.empty_ctx.expand({k, -1, -1}).contiguous().to(device);
  in.options.guidance.null_pooled = cache.empty_pooled.expand({k, -1}).contiguous().to(device);
  return in;
}

}  // namespace luminars
