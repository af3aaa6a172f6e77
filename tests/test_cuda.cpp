// The denoiser on a CUDA device: float32 parity with the reference fixtures, and bf16 autocast
// training (the path `luminars train --device cuda` takes). Skipped where no GPU is present.
#include <luminars/luminars.h>

#include "core/tensor_io.h"
#include "test_support.h"
#include "train/adamw.h"
#include "train/autocast.h"

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
  auto gen = make_generator(1234);
  const int64_t B = 4;
  auto clean = torch::randn({B, cfg.latent_channels, 8, 8}, gen).to(cuda);
  auto noise = torch::randn({B, cfg.latent_channels, 8, 8}, gen).to(cuda);
  auto ctx = torch::randn({B, 7, cfg.text_dim}, gen).to(cuda);
  auto pooled = torch::randn({B, cfg.text_dim}, gen).to(cuda);
  auto t = sample_training_times(B, TimeSampling::LogitNormal, gen).to(cuda);
  NamedTensors params;
  for (const auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
  AdamW opt(params, {2e-3, 0.9, 0.999, 1e-8, 0.0});
  float first = 0, last = 0;
  int steps = 0;
  for (; steps < 400; ++steps) {
    opt.zero_grad();
    torch::Tensor loss;
    {
      AutocastGuard autocast(/*bf16=*/true, cuda);
      loss = flow_matching_loss(model, clean, noise, t, ctx, pooled);
    }
    loss.backward();
    opt.step();
    last = loss.item<float>();
    if (steps == 0) first = last;
    ASSERT_TRUE(std::isfinite(last)) << "step " << steps;
    if (last < first / 20) break;
  }
  EXPECT_LT(last, first / 10) << "first " << first << " last " << last << " after " << steps << " steps";
  for (const auto& p : model->parameters()) {  // master weights stay float32 on the device
    EXPECT_EQ(p.scalar_type(), torch::kFloat32);
    EXPECT_TRUE(p.is_cuda());
  }
}

}  // namespace
}  // namespace luminars
