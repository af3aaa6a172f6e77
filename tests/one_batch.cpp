#include "one_batch.h"

#include <gtest/gtest.h>

#include <cmath>

#include "flow/flow_matching.h"

namespace luminars::test {

OneBatch make_one_batch(const Config& cfg, torch::Device device, int64_t batch) {
  auto gen = make_generator(1234);
  OneBatch b;
  b.clean = torch::randn({batch, cfg.latent_channels, 8, 8}, gen).to(device);
  b.noise = torch::randn({batch, cfg.latent_channels, 8, 8}, gen).to(device);
  b.ctx = torch::randn({batch, 7, cfg.text_dim}, gen).to(device);
  b.pooled = torch::randn({batch, cfg.text_dim}, gen).to(device);
  b.t = sample_training_times(batch, TimeSampling::LogitNormal, gen).to(device);
  return b;
}

OverfitResult overfit(const std::function<float()>& step, int max_steps) {
  OverfitResult r;
  for (; r.steps < max_steps; ++r.steps) {
    r.last = step();
    if (r.steps == 0) r.first = r.last;
    if (!std::isfinite(r.last)) {
      ADD_FAILURE() << "loss " << r.last << " at step " << r.steps;
      break;
    }
    if (r.last < r.first / 20) break;
  }
  return r;
}

}  // namespace luminars::test
