// The denoiser on a CUDA device: float32 parity with the reference fixtures, and bf16 autocast
// training (the path `luminars train --device cuda` takes). Skipped where no GPU is present.
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"

#include "core/tensor_io.h"
#include "one_batch.h"
#include "test_support.h"
#include "train/adamw.h"
#include "core/autocast.h"
#include "flow/captured_sampling.h"
#include "model/bf16_weights.h"

namespace luminars {
namespace {

#define LUMINARS_REQUIRE_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device"

// Full float32 on the GPU for the parity checks (cuDNN and cuBLAS default to TF32 for float32).
struct NoTf32 {
  bool cudnn = at::globalContext().allowTF32CuDNN(), cublas = at::globalContext().allowTF32CuBLAS();
  NoTf32() {
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  ~NoTf32() {
    at::globalContext().setAllowTF32CuDNN(cudnn);
    at::globalContext().setAllowTF32CuBLAS(cublas);
  }
};

// Reduction order differs between the CPU and the GPU: float32 agrees to about 1e-6 relative,
// so 1e-4 still fails on any real difference in what is computed.
constexpr double kGpuTol = 1e-4;

TEST(Cuda, DenoiserMatchesReferenceFixtures) {
  LUMINARS_REQUIRE_CUDA();
  LUMINARS_REQUIRE_FIXTURES();
  NoTf32 no_tf32;
  const torch::Device cuda(torch::kCUDA);
  const std::string dir = test::fixtures_dir() + "/luminars_tiny";
  auto model = load_denoiser(dir + "/model.safetensors", cuda);
  model->eval();
  auto ex = load_tensors(dir + "/expected.safetensors");
  auto e = [&](const std::string& name) { return ex.at(name).to(cuda); };
  torch::NoGradGuard no_grad;

  auto v = model->forward(e("x"), e("t"), e("ctx"), e("pooled"));
  EXPECT_TRUE(v.is_cuda());
  EXPECT_LE(test::rel_error(v.cpu(), ex.at("velocity")), kGpuTol);
  ForwardOptions masked;
  masked.mask = e("mask").to(torch::kBool);
  EXPECT_LE(test::rel_error(model->forward(e("x"), e("t"), e("ctx"), e("pooled"), masked).cpu(), ex.at("velocity_masked")), kGpuTol);
  auto loss = flow_matching_loss(model, e("clean"), e("noise"), e("t"), e("ctx"), e("pooled"));
  EXPECT_LE(test::rel_error(loss.reshape({1}).cpu(), ex.at("loss")), kGpuTol);

  SampleOptions so;
  so.steps = 4;
  so.guidance.scale = 3.0;
  so.guidance.null_ctx = e("null_ctx");
  so.guidance.null_pooled = e("null_pooled");
  auto x = sample_flow(model, e("noise"), e("ctx"), e("pooled"), so);
  EXPECT_LE(test::rel_error(x.cpu(), ex.at("sample_euler_4_cfg3")), kGpuTol);
}

TEST(Cuda, Bf16AutocastLossIsCloseToFloat32) {
  LUMINARS_REQUIRE_CUDA();
  LUMINARS_REQUIRE_FIXTURES();
  const torch::Device cuda(torch::kCUDA);
  const std::string dir = test::fixtures_dir() + "/luminars_tiny";
  auto model = load_denoiser(dir + "/model.safetensors", cuda);
  auto ex = load_tensors(dir + "/expected.safetensors");
  auto e = [&](const std::string& name) { return ex.at(name).to(cuda); };
  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  {
    AutocastGuard autocast(/*bf16=*/true, cuda);
    auto v = model->forward(e("x"), e("t"), e("ctx"), e("pooled"));
    EXPECT_EQ(v.scalar_type(), torch::kBFloat16);  // autocast is really on
    loss = flow_matching_loss(model, e("clean"), e("noise"), e("t"), e("ctx"), e("pooled"));
  }
  EXPECT_FALSE(AutocastGuard::enabled_on_cuda());  // the guard restored the previous state
  // bf16 keeps 8 bits of mantissa: a few parts in a thousand, never a different function.
  const double err = test::rel_error(loss.reshape({1}).to(torch::kFloat32).cpu(), ex.at("loss"));
  EXPECT_LE(err, 3e-2);
  EXPECT_GT(err, 0.0);  // a bit-identical result would mean bf16 was not used
}

TEST(Cuda, Bf16AutocastTrainingOverfitsOneBatch) {
  LUMINARS_REQUIRE_CUDA();
  const torch::Device cuda(torch::kCUDA);
  torch::manual_seed(0);
  Config cfg = Config::preset("tiny");
  LuminaRS model(cfg);
  model->to(cuda);
  model->train();
  auto b = test::make_one_batch(cfg, cuda);
  NamedTensors params;
  for (const auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
  AdamW opt(params, {2e-3, 0.9, 0.999, 1e-8, 0.0});
  auto r = test::overfit([&] {
    opt.zero_grad();
    torch::Tensor loss;
    {
      AutocastGuard autocast(/*bf16=*/true, cuda);
      loss = flow_matching_loss(model, b.clean, b.noise, b.t, b.ctx, b.pooled);
    }
    loss.backward();
    opt.step();
    return loss.item<float>();
  });
  EXPECT_LT(r.last, r.first / 10) << "first " << r.first << " last " << r.last << " after " << r.steps << " steps";
  for (const auto& p : model->parameters()) {  // master weights stay float32 on the device
    EXPECT_EQ(p.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(p.is_cuda());
  }
}

// A guided 4-step run captured in a CUDA graph gives what the same run gives eagerly, for two
// different noises through the same static buffers; then with bf16 weights under autocast.
TEST(Cuda, CapturedSamplingMatchesEagerSampling) {
  LUMINARS_REQUIRE_CUDA();
  ASSERT_TRUE(CapturedSampling::available());
  NoTf32 no_tf32;
  const torch::Device cuda(torch::kCUDA);
  torch::manual_seed(5);
  LuminaRS model(Config::preset("tiny"));
  {
    torch::NoGradGuard no_grad;
    for (auto& p : model->parameters())
      if (p.abs().max().item<float>() == 0.f) p.normal_(0, 0.05);
  }
  model->to(cuda);
  model->eval();
  const auto& cfg = model->config();
  auto ctx = torch::randn({1, 9, cfg.text_dim}).to(cuda), pooled = torch::randn({1, cfg.text_dim}).to(cuda);
  Guidance g;
  g.scale = 3.0;
  g.null_ctx = torch::zeros_like(ctx);
  g.null_pooled = torch::zeros_like(pooled);
  const auto times = sample_times(4);
  auto noise_a = torch::randn({1, cfg.latent_channels, 16, 16}).to(cuda), noise_b = torch::randn_like(noise_a);
  torch::NoGradGuard no_grad;
  auto velocity = guided_velocity(model, ctx, pooled, g);
  CapturedSampling captured(velocity, noise_a, times);
  for (const auto& noise : {noise_a, noise_b}) {
    auto eager = integrate_over(velocity, noise, times);
    EXPECT_LE(test::rel_error(captured.run(noise).cpu(), eager.cpu()), 1e-5);
  }
  EXPECT_NE(test::error_of([&] { captured.run(torch::randn({2, cfg.latent_channels, 16, 16}).to(cuda)); }), "(no error)");

  // bf16: the autocast run with float32 weights, and the captured run with weights cast once.
  torch::Tensor eager_bf16;
  {
    AutocastGuard autocast(/*bf16=*/true, cuda);
    eager_bf16 = integrate_over(guided_velocity(model, ctx, pooled, g), noise_a, times).to(torch::kFloat32);
  }
  EXPECT_GT(cast_matmul_weights(model), 0);
  AutocastGuard autocast(/*bf16=*/true, cuda);
  CapturedSampling captured_bf16(guided_velocity(model, ctx, pooled, g), noise_a, times);
  EXPECT_LE(test::rel_error(captured_bf16.run(noise_a).to(torch::kFloat32).cpu(), eager_bf16.cpu()), 1e-2);
}

}  // namespace
}  // namespace luminars
