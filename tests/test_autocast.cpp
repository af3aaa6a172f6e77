// bf16 autocast on the CPU: on only where allowed and the processor has native bf16 (or
// LUMINARS_CPU_BF16=1 says so), restored afterwards; convolutions then compute in bf16.
#include <torch/torch.h>

#include <cstdlib>

#include "core/autocast.h"
#include "vae/autoencoder_kl.h"
#include "test_support.h"

namespace luminars {
namespace {

struct EnvOverride {
  explicit EnvOverride(const char* value) { setenv("LUMINARS_CPU_BF16", value, 1); }
  ~EnvOverride() { unsetenv("LUMINARS_CPU_BF16"); }
};

torch::Tensor conv(const torch::Tensor& x) { return torch::conv2d(x, torch::randn({4, 3, 1, 1})); }

TEST(Autocast, CpuBf16OnlyWhereAllowedAndSupported) {
  auto x = torch::randn({1, 3, 4, 4});
  {
    EnvOverride on("1");
    EXPECT_TRUE(cpu_has_fast_bf16());
    {
      AutocastGuard g(/*bf16=*/true, torch::kCPU, /*allow_cpu=*/true);
      EXPECT_TRUE(AutocastGuard::enabled_on_cpu());
      EXPECT_EQ(conv(x).scalar_type(), torch::kBFloat16);
    }
    EXPECT_FALSE(AutocastGuard::enabled_on_cpu());  // restored
    {
      AutocastGuard g(/*bf16=*/true, torch::kCPU);  // training: the CPU is not allowed
      EXPECT_FALSE(AutocastGuard::enabled_on_cpu());
      EXPECT_EQ(conv(x).scalar_type(), torch::kFloat32);
    }
    {
      AutocastGuard g(/*bf16=*/false, torch::kCPU, true);
      EXPECT_FALSE(AutocastGuard::enabled_on_cpu());
    }
  }
  EnvOverride off("0");
  EXPECT_FALSE(cpu_has_fast_bf16());
  AutocastGuard g(/*bf16=*/true, torch::kCPU, /*allow_cpu=*/true);
  EXPECT_FALSE(AutocastGuard::enabled_on_cpu());
  EXPECT_EQ(conv(x).scalar_type(), torch::kFloat32);
}

TEST(Autocast, VaeRunsUnderCpuBf16) {
  unsetenv("LUMINARS_CPU_BF16");
  // bf16 kernels exist on every CPU, but only native ones (AVX-512 BF16, AMX) keep float32's
  // precision in their sums: LibTorch 1.13's kernels for other CPUs, which only LUMINARS_CPU_BF16=1
  // selects there, lose more (a 256-term product of random values: 1.9% relative error on a Zen 3).
  const double tolerance = cpu_has_fast_bf16() ? 3e-2 : 1e-1;
  EnvOverride on("1");
  VaeConfig cfg;
  cfg.block_out_channels = {16, 32};
  cfg.norm_num_groups = 8;
  torch::manual_seed(5);
  AutoencoderKL vae(cfg);
  torch::NoGradGuard no_grad;
  auto images = torch::rand({1, 3, 16, 16}) * 2 - 1;
  auto mean = vae->encode(images).mean;
  auto decoded = vae->decode(mean);
  AutocastGuard g(/*bf16=*/true, torch::kCPU, /*allow_cpu=*/true);
  auto mean_bf16 = vae->encode(images).mean;  // GroupNorms take the convolutions' bf16 output
  auto decoded_bf16 = vae->decode(mean);
  EXPECT_LE(test::rel_error(mean_bf16.to(torch::kFloat32), mean), tolerance);
  EXPECT_LE(test::rel_error(decoded_bf16.to(torch::kFloat32), decoded), tolerance);
  EXPECT_GT(test::rel_error(decoded_bf16.to(torch::kFloat32), decoded), 0.0);
}

}  // namespace
}  // namespace luminars
