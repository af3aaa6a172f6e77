// One fixed batch, AdamW: the tiny preset must overfit it (loss down at least 10×).
#include <luminars/luminars.h>

#include "test_support.h"

namespace luminars {
namespace {

TEST(TrainStep, TinyPresetOverfitsOneBatch) {
  torch::manual_seed(0);
  Config cfg = Config::preset("tiny");
  LuminaRS model(cfg);
  model->train();
  auto gen = make_generator(1234);
  const int64_t B = 4;
  auto clean = torch::randn({B, cfg.latent_channels, 8, 8}, gen);
  auto noise = torch::randn({B, cfg.latent_channels, 8, 8}, gen);
  auto ctx = torch::randn({B, 7, cfg.text_dim}, gen);
  auto pooled = torch::randn({B, cfg.text_dim}, gen);
  auto t = sample_training_times(B, TimeSampling::LogitNormal, gen);

  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0.0));
  float first = 0, last = 0;
  int steps = 0;
  for (; steps < 400; ++steps) {
    opt.zero_grad();
    auto loss = flow_matching_loss(model, clean, noise, t, ctx, pooled);
    loss.backward();
    opt.step();
    last = loss.item<float>();
    if (steps == 0) first = last;
    ASSERT_TRUE(std::isfinite(last)) << "step " << steps;
    if (last < first / 20) break;
  }
  EXPECT_LT(last, first / 10) << "first " << first << " last " << last << " after " << steps << " steps";
  // Parameters that start at zero (ada, unet.out) must have moved: the whole network learns.
  EXPECT_GT(model->unet->out->weight.abs().max().item<float>(), 0.f);
}

}  // namespace
}  // namespace luminars
