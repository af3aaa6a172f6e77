// The published VAE layouts, built without weights, against fixtures/published_manifests.json:
// every tensor name and shape in diffusers' order, and the parameter counts (encoder_params counts
// encoder.* only, decoder_params decoder.* only; params adds the quant convs).
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/module_state.h"
#include "test_support.h"
#include "vae/autoencoder_kl.h"

namespace luminars {
namespace {

struct Published {
  const char* preset;
  const char* manifest_key;
};
void PrintTo(const Published& p, std::ostream* os) { *os << p.preset << " (" << p.manifest_key << ")"; }

struct VaePublished : ::testing::TestWithParam<Published> {
  void SetUp() override {
    LUMINARS_REQUIRE_FIXTURES();
    auto all = nlohmann::ordered_json::parse(read_file(test::fixtures_dir() + "/published_manifests.json"));
    manifest = all.at(GetParam().manifest_key);
  }
  nlohmann::ordered_json manifest;
};

TEST_P(VaePublished, NamesShapesAndCounts) {
  torch::NoGradGuard no_grad;
  AutoencoderKL vae(VaeConfig::preset(GetParam().preset));
  auto state = module_state(*vae);
  const auto& keys = manifest.at("keys");
  ASSERT_EQ(state.size(), keys.size());
  std::size_t i = 0;
  for (auto it = keys.begin(); it != keys.end(); ++it, ++i) {
    EXPECT_EQ(state[i].first, it.key()) << "tensor #" << i;
    EXPECT_EQ(state[i].second.sizes().vec(), it.value().get<std::vector<int64_t>>()) << it.key();
  }
  EXPECT_EQ(vae->total_parameters(), manifest.at("params").get<int64_t>());
  EXPECT_EQ(vae->encoder_parameters(), manifest.at("encoder_params").get<int64_t>());
  EXPECT_EQ(vae->decoder_parameters(), manifest.at("decoder_params").get<int64_t>());
  EXPECT_EQ(vae->downscale_factor(), 8);
}

TEST_P(VaePublished, DecoderOnlyHoldsTheDecoderAndPostQuantConv) {
  torch::NoGradGuard no_grad;
  AutoencoderKL vae(VaeConfig::preset(GetParam().preset), VaePart::Decoder);
  auto state = module_state(*vae);
  std::size_t expected = 0;
  for (const auto& [name, shape] : manifest.at("keys").items())
    if (name.rfind("decoder.", 0) == 0 || name.rfind("post_quant_conv.", 0) == 0) ++expected;
  EXPECT_EQ(state.size(), expected);
  const int64_t post = vae->config().use_post_quant_conv ? vae->config().latent_channels * (vae->config().latent_channels + 1) : 0;
  EXPECT_EQ(vae->total_parameters(), manifest.at("decoder_params").get<int64_t>() + post);
}

TEST_P(VaePublished, EncoderOnlyHoldsTheEncoderAndQuantConv) {
  torch::NoGradGuard no_grad;
  AutoencoderKL vae(VaeConfig::preset(GetParam().preset), VaePart::Encoder);
  auto state = module_state(*vae);
  std::size_t expected = 0;
  for (const auto& [name, shape] : manifest.at("keys").items())
    if (name.rfind("encoder.", 0) == 0 || name.rfind("quant_conv.", 0) == 0) ++expected;
  EXPECT_EQ(state.size(), expected);
  const int64_t L2 = 2 * vae->config().latent_channels;
  const int64_t quant = vae->config().use_quant_conv ? L2 * (L2 + 1) : 0;
  EXPECT_EQ(vae->total_parameters(), manifest.at("encoder_params").get<int64_t>() + quant);
}

INSTANTIATE_TEST_SUITE_P(Manifests, VaePublished,
                         ::testing::Values(Published{"sd3", "sd3_flux_vae_16ch"}, Published{"flux", "sd3_flux_vae_16ch"},
                                           Published{"sd", "sd_vae_4ch"}),
                         [](const auto& info) { return std::string(info.param.preset); });

TEST(VaePresets, ScalingAndShift) {
  auto sd3 = VaeConfig::preset("sd3"), flux = VaeConfig::preset("flux"), sd = VaeConfig::preset("sd");
  EXPECT_DOUBLE_EQ(sd3.scaling_factor, 1.5305);
  EXPECT_DOUBLE_EQ(sd3.shift_factor, 0.0609);
  EXPECT_DOUBLE_EQ(flux.scaling_factor, 0.3611);
  EXPECT_DOUBLE_EQ(flux.shift_factor, 0.1159);
  EXPECT_DOUBLE_EQ(sd.scaling_factor, 0.18215);
  EXPECT_DOUBLE_EQ(sd.shift_factor, 0.0);
  EXPECT_EQ(sd3.latent_channels, 16);
  EXPECT_EQ(sd.latent_channels, 4);
  EXPECT_THROW(VaeConfig::preset("sdxl-turbo"), Error);
}

}  // namespace
}  // namespace luminars
