// bf16 weights cast once (model/bf16_weights.h): under bf16 autocast the model stays as close to
// its float32 result as autocast with float32 weights, while float32-only parts stay float32. Checked on the CPU, whose
// autocast follows the same rules for these operations. Also: captured sampling is refused
// clearly by a LibTorch without CUDA.
#include "model/config.h"
#include "model/luminars.h"

#include <cstdlib>

#include "core/autocast.h"
#include "flow/captured_sampling.h"
#include "flow/flow_matching.h"
#include "model/bf16_weights.h"
#include "test_support.h"

namespace luminars {
namespace {

struct CpuBf16On {  // bf16 kernels exist on every CPU; only their speed needs native support
  CpuBf16On() { setenv("LUMINARS_CPU_BF16", "1", 1); }
  ~CpuBf16On() { unsetenv("LUMINARS_CPU_BF16"); }
};

LuminaRS random_tiny_model() {
  torch::manual_seed(3);
  LuminaRS model(Config::preset("tiny"));
  torch::NoGradGuard no_grad;
  for (auto& p : model->parameters())  // non-zero ada/out so every block does real work
    if (p.abs().max().item<float>() == 0.f) p.normal_(0, 0.05);
  model->eval();
  return model;
}

TEST(Bf16Weights, CastOnceIsAsCloseToFloat32AsAutocast) {
  CpuBf16On on;
  auto reference = random_tiny_model(), cast = random_tiny_model();
  const auto& cfg = reference->config();
  torch::manual_seed(4);
  auto x = torch::randn({2, cfg.latent_channels, 16, 16}), t = torch::tensor({0.3f, 0.8f});
  auto ctx = torch::randn({2, 7, cfg.text_dim}), pooled = torch::randn({2, cfg.text_dim});
  torch::NoGradGuard no_grad;
  const auto v32 = reference->forward(x, t, ctx, pooled);

  const int64_t n = cast_matmul_weights(cast);
  EXPECT_GT(n, 20);
  EXPECT_EQ(cast_matmul_weights(cast), 0);  // once: a second call finds nothing left to cast
  EXPECT_EQ(cast->stem->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(cast->time_embed->parameters()[0].scalar_type(), torch::kBFloat16);
  EXPECT_EQ(cast->unet->mid->attn->in_proj_weight.scalar_type(), torch::kBFloat16);
  const auto& block = cast->unet->down[0]->block_list[0];
  EXPECT_EQ(block->mlp_in->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(block->attn->q->weight.scalar_type(), torch::kBFloat16);
  EXPECT_EQ(block->dwconv->weight.scalar_type(), torch::kFloat32);        // outside autocast
  EXPECT_EQ(block->attn->norm->weight.scalar_type(), torch::kFloat32);    // LayerNorm
  EXPECT_EQ(cast->unet->upsample[0]->conv->weight.scalar_type(), torch::kFloat32);  // taps summed in float32
  EXPECT_EQ(cast->recursion_embed->weight.scalar_type(), torch::kFloat32);

  torch::Tensor v_autocast, v_cast;
  {
    AutocastGuard autocast(/*bf16=*/true, torch::kCPU, /*allow_cpu=*/true);
    ASSERT_TRUE(AutocastGuard::enabled_on_cpu());
    v_autocast = reference->forward(x, t, ctx, pooled).to(torch::kFloat32);
    v_cast = cast->forward(x, t, ctx, pooled).to(torch::kFloat32);
  }
  const double autocast_error = test::rel_error(v_autocast, v32), cast_error = test::rel_error(v_cast, v32);
  EXPECT_GT(autocast_error, 1e-4);  // bf16 really rounds
  // Not bit-identical on the CPU (measured 3.0e-3 apart with LibTorch 1.13; the operation that
  // differs is not identified yet), so the claim checked is: as close to float32 as autocast.
  EXPECT_LE(cast_error, 1.5 * autocast_error) << "autocast " << autocast_error << ", cast weights " << cast_error;
  EXPECT_LE(test::rel_error(v_cast, v_autocast), 1e-2);
}

TEST(CapturedSampling, RefusedClearlyWithoutCuda) {
  if (CapturedSampling::available()) GTEST_SKIP() << "a CUDA build: tests/test_cuda.cpp covers capture";
  auto model = random_tiny_model();
  auto v = [](const torch::Tensor& x, float) { return x; };
  const auto message = test::error_of([&] { CapturedSampling s(v, torch::zeros({1, 4, 8, 8}), sample_times(4)); });
  EXPECT_NE(message.find("CUDA build of LibTorch"), std::string::npos) << message;
}

}  // namespace
}  // namespace luminars
