// One fixed batch, AdamW: the tiny preset must overfit it (loss down at least 10×).
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"

#include "one_batch.h"
#include "test_support.h"

namespace luminars {
namespace {

TEST(TrainStep, TinyPresetOverfitsOneBatch) {
  torch::manual_seed(0);
  Config cfg = Config::preset("tiny");
  LuminaRS model(cfg);
  model->train();
  auto b = test::make_one_batch(cfg, torch::kCPU);
  torch::optim::AdamW opt(model->parameters(), torch::optim::AdamWOptions(2e-3).weight_decay(0.0));
  auto r = test::overfit([&] {
    opt.zero_grad();
    auto loss = flow_matching_loss(model, b.clean, b.noise, b.t, b.ctx, b.pooled);
    loss.backward();
    opt.step();
    return loss.item<float>();
  });
  EXPECT_LT(r.last, r.first / 10) << "first " << r.first << " last " << r.last << " after " << r.steps << " steps";
  // Parameters that start at zero (ada, unet.out) must have moved: the whole network learns.
  EXPECT_GT(model->unet->out->weight.abs().max().item<float>(), 0.f);
}

}  // namespace
}  // namespace luminars
