// `luminars vae roundtrip` and `luminars vae info` on the fixture VAEs, and their errors.
#include <stb_image_write.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/image.h"
#include "core/safetensors.h"
#include "core/error.h"
#include "test_support.h"
#include "data/dataset.h"
#include "train/image_set.h"
#include "train/vae_trainer.h"
#include "vae/autoencoder_kl.h"
#include "vae/vae_image.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;
using test::gradient_image;

std::string sq(const std::string& s) { return "'" + s + "'"; }

int lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

struct VaeCli : ::testing::Test {
  void SetUp() override {
    LUMINARS_REQUIRE_FIXTURES();
    vae4 = test::fixtures_dir() + "/vae_tiny_4ch";
    vae16 = test::fixtures_dir() + "/vae_tiny_16ch";
  }
  std::string vae4, vae16;
  test::TempDir tmp;
};

TEST_F(VaeCli, RoundtripPngCropsToTheFactorAndMatchesTheLibrary) {
  const Image in = gradient_image(37, 30);  // factor 4: centre crop to 36×28
  save_png(tmp.file("in.png"), in);
  auto r = test::run_cli("vae roundtrip --vae " + sq(vae4) + " " + sq(tmp.file("in.png")) + " " +
                         sq(tmp.file("out.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Image out = load_image(tmp.file("out.png"));
  EXPECT_EQ(out.width, 36);
  EXPECT_EQ(out.height, 28);
  EXPECT_NE(r.output.find("(36x28, latents 4x7x9)"), std::string::npos) << r.output;

  auto vae = AutoencoderKL::from_dir(vae4);
  const Image expected = vae_roundtrip(vae, in);
  ASSERT_EQ(expected.rgb.size(), out.rgb.size());
  int max_diff = 0;
  for (std::size_t i = 0; i < out.rgb.size(); ++i) max_diff = std::max(max_diff, std::abs(out.rgb[i] - expected.rgb[i]));
  EXPECT_LE(max_diff, 1);  // the CLI's thread count may round one value differently
}

TEST_F(VaeCli, CropToMultipleIsCentred) {
  const Image in = gradient_image(11, 6);
  const Image c = crop_to_multiple(in, 4);
  ASSERT_EQ(c.width, 8);
  ASSERT_EQ(c.height, 4);
  EXPECT_EQ(c.rgb[0], in.rgb[(1 * 11 + 1) * 3]);  // offset (1, 1)
  EXPECT_THROW(crop_to_multiple(gradient_image(3, 9), 4, "tiny.png"), Error);
}

TEST_F(VaeCli, RoundtripJpegInput) {
  const Image in = gradient_image(33, 21);  // factor 2: 32×20
  ASSERT_TRUE(stbi_write_jpg(tmp.file("in.jpg").c_str(), in.width, in.height, 3, in.rgb.data(), 90));
  auto r = test::run_cli("vae roundtrip --vae " + sq(vae16) + " " + sq(tmp.file("in.jpg")) + " " +
                         sq(tmp.file("out.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Image out = load_image(tmp.file("out.png"));
  EXPECT_EQ(out.width, 32);
  EXPECT_EQ(out.height, 20);
}

TEST_F(VaeCli, MissingInputIsOneLineNamingTheFile) {
  auto r = test::run_cli("vae roundtrip --vae " + sq(vae4) + " " + sq(tmp.file("nope.png")) + " " +
                         sq(tmp.file("out.png")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find(tmp.file("nope.png")), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("out.png")));
}

TEST_F(VaeCli, GarbagePngIsOneLineNamingTheFile) {
  test::write_text(tmp.file("bad.png"), "this is not a PNG at all");
  auto r = test::run_cli("vae roundtrip --vae " + sq(vae4) + " " + sq(tmp.file("bad.png")) + " " +
                         sq(tmp.file("out.png")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find(tmp.file("bad.png")), std::string::npos) << r.output;
  EXPECT_FALSE(std::filesystem::exists(tmp.file("out.png")));
}

TEST_F(VaeCli, ImageSmallerThanTheFactorAndBadVaeFolderAreErrors) {
  save_png(tmp.file("tiny.png"), gradient_image(3, 8));
  auto r = test::run_cli("vae roundtrip --vae " + sq(vae4) + " " + sq(tmp.file("tiny.png")) + " " +
                         sq(tmp.file("out.png")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find(tmp.file("tiny.png") + " is 3x8, smaller than the VAE's size multiple 4"), std::string::npos)
      << r.output;

  save_png(tmp.file("in.png"), gradient_image(8, 8));
  r = test::run_cli("vae roundtrip --vae " + sq(tmp.file("novae")) + " " + sq(tmp.file("in.png")) + " " +
                    sq(tmp.file("out.png")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find(tmp.file("novae")), std::string::npos) << r.output;

  r = test::run_cli("vae roundtrip --vae " + sq(vae4) + " " + sq(tmp.file("in.png")) + " " +
                    sq(tmp.file("out.jpg")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("must be a .png"), std::string::npos) << r.output;
}

TEST_F(VaeCli, InfoPrintsConfigAndCounts) {
  auto r = test::run_cli("vae info --vae " + sq(vae4));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto vae = AutoencoderKL::from_dir(vae4);
  for (const auto& [label, n] : {std::pair<std::string, int64_t>{"encoder", vae->encoder_parameters()},
                                 {"decoder", vae->decoder_parameters()},
                                 {"total", vae->total_parameters()}}) {
    const auto pos = r.output.find("\n" + label + " ");
    ASSERT_NE(pos, std::string::npos) << label << "\n" << r.output;
    const auto line = r.output.substr(pos + 1, r.output.find('\n', pos + 1) - pos - 1);
    EXPECT_NE(line.find(" " + std::to_string(n) + " "), std::string::npos) << line;
  }
  EXPECT_NE(r.output.find("\"block_out_channels\":[32,32,64]"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("image side = 4 x latent side"), std::string::npos) << r.output;
  safetensors::Reader file(vae4 + "/diffusion_pytorch_model.safetensors");
  EXPECT_NE(r.output.find("(" + std::to_string(file.tensors().size()) + " tensors, F32,"), std::string::npos) << r.output;
}

TEST_F(VaeCli, RoundtripLatentNoiseChangesThePictureDeterministically) {
  save_png(tmp.file("in.png"), gradient_image(16, 16));
  auto vae = AutoencoderKL::from_dir(vae4);
  const Image in = load_image(tmp.file("in.png"));
  const Image clean = vae_roundtrip(vae, in), noisy = vae_roundtrip(vae, in, "in", 0.5, 7),
              again = vae_roundtrip(vae, in, "in", 0.5, 7), other = vae_roundtrip(vae, in, "in", 0.5, 8);
  EXPECT_EQ(noisy.rgb, again.rgb);
  EXPECT_NE(noisy.rgb, clean.rgb);
  EXPECT_NE(noisy.rgb, other.rgb);
  auto r = test::run_cli("vae roundtrip --vae " + sq(vae4) + " --latent-noise 0.5 --seed 7 " + sq(tmp.file("in.png")) +
                         " " + sq(tmp.file("out.png")));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Image out = load_image(tmp.file("out.png"));
  int max_diff = 0;
  for (std::size_t i = 0; i < out.rgb.size(); ++i) max_diff = std::max(max_diff, std::abs(out.rgb[i] - noisy.rgb[i]));
  EXPECT_LE(max_diff, 1);
}

TEST_F(VaeCli, PsnrOverAFolderMatchesTheLibrary) {
  fs::create_directories(tmp.file("pics"));
  for (int i = 0; i < 3; ++i) save_png(tmp.file("pics/p" + std::to_string(i) + ".png"), gradient_image(20 + 4 * i, 16));
  auto r = test::run_cli("vae psnr --vae " + sq(vae4) + " --data " + sq(tmp.file("pics")) + " --resolution 16 --batch 2 --json");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
  EXPECT_EQ(j.at("images").get<int>(), 3);

  DatasetOptions scan;
  scan.captions_required = false;
  const ImageSet images = ImageSet::load(Dataset::scan(tmp.file("pics"), scan), 16, false);
  auto vae = AutoencoderKL::from_dir(vae4);
  torch::NoGradGuard no_grad;
  auto x = images.batch({0, 1, 2});
  const double want = mean_psnr(vae->decode(vae->encode(x).mean), x);
  EXPECT_NEAR(j.at("psnr_db").get<double>(), want, 1e-3 * want);
  EXPECT_GT(want, 3.0);
  EXPECT_LT(want, 60.0);
  EXPECT_NEAR(mean_psnr(x, x), 100.0, 1e-9);  // identical pictures: the 1e-10 MSE floor

  r = test::run_cli("vae psnr --vae " + sq(vae4) + " --data " + sq(tmp.file("pics")) + " --resolution 18");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find("--resolution 18 is not a multiple of the VAE's factor 4"), std::string::npos) << r.output;
  r = test::run_cli("vae psnr --vae " + sq(vae4) + " --data " + sq(tmp.file("none")));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(lines(r.output), 1) << r.output;
  EXPECT_NE(r.output.find(tmp.file("none")), std::string::npos) << r.output;
}

}  // namespace
}  // namespace luminars
