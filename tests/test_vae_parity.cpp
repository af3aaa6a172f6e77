// Parity of the VAE with diffusers' AutoencoderKL on the tiny fixtures (fixtures/vae_tiny_16ch:
// no quant convs, shift 0.0609; fixtures/vae_tiny_4ch: quant convs, three levels, shift null).
#include "core/error.h"
#include "core/tensor_io.h"
#include "test_support.h"
#include "vae/autoencoder_kl.h"

namespace luminars {
namespace {

constexpr double kTol = 1e-5;

struct VaeParity : ::testing::TestWithParam<std::string> {
  void SetUp() override {
    LUMINARS_REQUIRE_FIXTURES();
    dir = test::fixtures_dir() + "/" + GetParam();
    ex = load_tensors(dir + "/expected.safetensors");
  }
  torch::Tensor e(const std::string& name) { return ex.at(name); }
  std::string dir;
  std::map<std::string, torch::Tensor> ex;
};

TEST_P(VaeParity, EncodeMeanAndLogvar) {
  auto vae = AutoencoderKL::from_dir(dir);
  auto posterior = vae->encode(e("image"));
  EXPECT_LE(test::rel_error(posterior.mean, e("latent_mean")), kTol);
  EXPECT_LE(test::rel_error(posterior.logvar, e("latent_logvar")), kTol);
}

TEST_P(VaeParity, DecodeOfTheMean) {
  auto vae = AutoencoderKL::from_dir(dir);
  auto images = vae->decode(e("latent_mean"));
  EXPECT_EQ(images.sizes(), e("image").sizes());
  EXPECT_LE(test::rel_error(images, e("decoded")), kTol);
}

TEST_P(VaeParity, DecoderOnlyDecodesTheSameAndCannotEncode) {
  auto vae = AutoencoderKL::from_dir(dir, {.part = VaePart::Decoder});
  EXPECT_FALSE(vae->has_encoder());
  EXPECT_EQ(vae->encoder_parameters(), 0);
  for (const auto& p : vae->named_parameters()) {
    const auto& name = p.key();
    EXPECT_TRUE(name.rfind("decoder.", 0) == 0 || name.rfind("post_quant_conv.", 0) == 0) << name;
  }
  EXPECT_LE(test::rel_error(vae->decode(e("latent_mean")), e("decoded")), kTol);
  try {
    vae->encode(e("image"));
    FAIL() << "encode() of a decoder-only VAE must throw";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("without its encoder"), std::string::npos) << err.what();
  }
}

TEST_P(VaeParity, EncoderOnlyEncodesTheSameAndCannotDecode) {
  auto vae = AutoencoderKL::from_dir(dir, {.part = VaePart::Encoder});
  EXPECT_TRUE(vae->has_encoder());
  EXPECT_FALSE(vae->has_decoder());
  EXPECT_EQ(vae->decoder_parameters(), 0);
  EXPECT_GT(vae->encoder_parameters(), 0);
  for (const auto& p : vae->named_parameters()) {
    const auto& name = p.key();
    EXPECT_TRUE(name.rfind("encoder.", 0) == 0 || name.rfind("quant_conv.", 0) == 0) << name;
  }
  auto posterior = vae->encode(e("image"));
  EXPECT_LE(test::rel_error(posterior.mean, e("latent_mean")), kTol);
  EXPECT_LE(test::rel_error(posterior.logvar, e("latent_logvar")), kTol);
  auto msg = test::error_of([&] { vae->decode(e("latent_mean")); });
  EXPECT_NE(msg.find("without its decoder"), std::string::npos) << msg;
}

TEST_P(VaeParity, ParametersAreFrozenAndNoGraphIsBuilt) {
  auto vae = AutoencoderKL::from_dir(dir);
  for (const auto& p : vae->parameters()) EXPECT_FALSE(p.requires_grad());
  auto image = e("image").clone().requires_grad_(true);
  EXPECT_FALSE(vae->encode(image).mean.requires_grad());
}

TEST_P(VaeParity, DenoiserScalingRoundTrips) {
  auto vae = AutoencoderKL::from_dir(dir, {.part = VaePart::Decoder});
  const auto& cfg = vae->config();
  auto z = e("latent_mean");
  auto x = vae->to_denoiser(z);
  EXPECT_LE(test::rel_error(x, (z - cfg.shift_factor) * cfg.scaling_factor), 1e-7);
  EXPECT_LE(test::rel_error(vae->from_denoiser(x), z), 1e-6);
}

// The modules themselves stay differentiable (SiLU in place only without autograd): gradients
// reach the latents through the frozen decoder, and the output is the same.
TEST_P(VaeParity, DecoderModuleWithAutograd) {
  auto vae = AutoencoderKL::from_dir(dir, {.part = VaePart::Decoder});
  auto z = e("latent_mean").clone().requires_grad_(true);
  auto h = vae->post_quant_conv ? vae->post_quant_conv(z) : z;
  auto images = vae->decoder(h);
  EXPECT_LE(test::rel_error(images, e("decoded")), kTol);
  images.square().sum().backward();
  ASSERT_TRUE(z.grad().defined());
  EXPECT_GT(z.grad().abs().sum().item<double>(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, VaeParity, ::testing::Values("vae_tiny_16ch", "vae_tiny_4ch"));

TEST(VaeFixtureConfig, FieldsAsPublished) {
  LUMINARS_REQUIRE_FIXTURES();
  auto c16 = VaeConfig::from_file(test::fixtures_dir() + "/vae_tiny_16ch/config.json");
  EXPECT_EQ(c16.block_out_channels, (std::vector<int64_t>{32, 64}));
  EXPECT_EQ(c16.latent_channels, 16);
  EXPECT_EQ(c16.layers_per_block, 1);
  EXPECT_EQ(c16.norm_num_groups, 8);
  EXPECT_FALSE(c16.use_quant_conv);
  EXPECT_FALSE(c16.use_post_quant_conv);
  EXPECT_DOUBLE_EQ(c16.scaling_factor, 1.5305);
  EXPECT_DOUBLE_EQ(c16.shift_factor, 0.0609);
  EXPECT_EQ(c16.downscale_factor(), 2);

  auto c4 = VaeConfig::from_file(test::fixtures_dir() + "/vae_tiny_4ch/config.json");
  EXPECT_EQ(c4.block_out_channels, (std::vector<int64_t>{32, 32, 64}));
  EXPECT_EQ(c4.latent_channels, 4);
  EXPECT_TRUE(c4.use_quant_conv);
  EXPECT_TRUE(c4.use_post_quant_conv);
  EXPECT_DOUBLE_EQ(c4.scaling_factor, 0.18215);
  EXPECT_DOUBLE_EQ(c4.shift_factor, 0.0);  // null
  EXPECT_EQ(c4.downscale_factor(), 4);
  EXPECT_EQ(VaeConfig::from_json(c4.to_json()), c4);
}

}  // namespace
}  // namespace luminars
