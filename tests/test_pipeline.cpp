// The Pipeline on the shipped model (models/emoji): a loaded pipeline draws what the low-memory
// one draws; image-to-image and inpainting keep what they must; per-image seeds; cancellation;
// checked requests.
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

#include "core/image.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"
#include "pipeline/pipeline.h"
#include "test_support.h"
#include "vae/autoencoder_kl.h"
#include "vae/vae_image.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kModel = test::shipped_model_dir();
const std::string kHeart = (fs::path(LUMINARS_SOURCE_DIR) / "docs" / "emoji" / "reference-red-heart-noto-seed1.png").string();

double mad(const Image& a, const Image& b, int x0 = 0, int x1 = -1) { return test::mean_abs_difference(a, b, x0, x1); }

PipelineOptions options(bool keep_loaded) {
  PipelineOptions o;
  o.model_dir = kModel;
  o.bf16 = false;  // float32: the same pictures on every CPU
  o.keep_loaded = keep_loaded;
  return o;
}

GenerationRequest heart(uint64_t seed = 1) {
  GenerationRequest r;
  r.prompt = "a red heart, noto style";
  r.seed = seed;
  return r;
}

// A picture that is not the model's own: blue left, yellow right, a soft gradient down.
Image two_colours() {
  Image img;
  img.width = img.height = 64;
  img.rgb.resize(64 * 64 * 3);
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x) {
      uint8_t* p = &img.rgb[(static_cast<std::size_t>(y) * 64 + x) * 3];
      p[0] = x < 32 ? 40 : 240;
      p[1] = x < 32 ? 80 : 220;
      p[2] = static_cast<uint8_t>(x < 32 ? 200 + y / 2 : 40 + y);
    }
  return img;
}

class PipelineTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { loaded_ = new Pipeline(options(true)); }
  static void TearDownTestSuite() { delete loaded_; }
  static Pipeline* loaded_;
};
Pipeline* PipelineTest::loaded_ = nullptr;

TEST_F(PipelineTest, LoadedAndLowMemoryDrawTheSamePictureWithItsParameters) {
  auto a = loaded_->generate(heart());
  Pipeline low(options(false));
  auto b = low.generate(heart());
  ASSERT_EQ(a.images.size(), 1u);
  EXPECT_EQ(a.images[0].rgb, b.images[0].rgb);
  EXPECT_LE(mad(a.images[0], load_image(kHeart)), 2.0);  // the CI reference picture
  const auto& p = a.parameters[0];
  EXPECT_EQ(p.prompt, "a red heart, noto style");
  EXPECT_EQ(p.seed, 1u);
  EXPECT_EQ(p.steps, 12);
  EXPECT_EQ(p.width, 64);
  EXPECT_EQ(p.height, 64);
  EXPECT_EQ(p.model, "emoji");
  EXPECT_FALSE(p.strength.has_value());
  EXPECT_EQ(loaded_->size_multiple(), 8 * 4);
  EXPECT_EQ(loaded_->resolution(), 64);
}

TEST_F(PipelineTest, ImageIOfABatchUsesSeedPlusI) {
  auto r = heart(7);
  r.batch = 2;
  r.steps = 4;
  auto batch = loaded_->generate(r);
  ASSERT_EQ(batch.images.size(), 2u);
  EXPECT_EQ(batch.parameters[1].seed, 8u);
  auto one = heart(8);
  one.steps = 4;
  auto single = loaded_->generate(one);
  EXPECT_LE(mad(batch.images[1], single.images[0]), 0.05);  // batched products may round differently
  EXPECT_GT(mad(batch.images[0], batch.images[1]), 5.0);
}

TEST_F(PipelineTest, ImageToImageSpansInitImageToTextToImage) {
  const Image init = two_colours();
  // Strength → 0: no step is left; the picture is the init image through the VAE and back.
  auto r = heart();
  r.init_image = init;
  r.strength = 1e-6;
  auto kept = loaded_->generate(r);
  AutoencoderKL vae = AutoencoderKL::from_dir(kModel + "/vae");
  const Image roundtrip = vae_roundtrip(vae, init);
  EXPECT_LE(mad(kept.images[0], roundtrip), 0.5);
  EXPECT_LE(mad(kept.images[0], init), mad(roundtrip, init) + 0.5);
  EXPECT_LT(mad(kept.images[0], init), 30.0);  // this VAE, trained on emoji, round-trips the synthetic picture at 19
  ASSERT_TRUE(kept.parameters[0].strength.has_value());
  EXPECT_DOUBLE_EQ(*kept.parameters[0].strength, 1e-6);

  // Strength 1 starts from pure noise: text-to-image exactly.
  r.strength = 1.0;
  auto full = loaded_->generate(r);
  auto txt = loaded_->generate(heart());
  EXPECT_EQ(full.images[0].rgb, txt.images[0].rgb);

  // In between: nearer the init image than text-to-image is, and not the init image.
  int64_t steps_seen = 0;
  r.strength = 0.5;
  r.on_step = [&](int64_t, int64_t n) { steps_seen = n; };
  auto half = loaded_->generate(r);
  EXPECT_EQ(steps_seen, 6);  // the second half of 12 steps
  EXPECT_LT(mad(half.images[0], init), mad(txt.images[0], init));
  EXPECT_GT(mad(half.images[0], kept.images[0]), 2.0);
}

TEST_F(PipelineTest, InpaintingKeepsTheUnmaskedRegion) {
  const Image init = two_colours();
  Image mask = init;  // white (repaint) on the left half, black (keep) on the right
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) mask.rgb[(static_cast<std::size_t>(y) * 64 + x) * 3 + c] = x < 32 ? 255 : 0;
  auto r = heart(3);
  r.init_image = init;
  r.mask = mask;
  r.strength = 1.0;
  r.mask_blur = 2;  // two passes of radius 2: the edge spreads 4 pixels
  auto out = loaded_->generate(r);
  EXPECT_EQ(mad(out.images[0], init, 36, 64), 0.0);  // kept, exactly
  EXPECT_GT(mad(out.images[0], init, 0, 28), 10.0);  // repainted
  // Without the final composite the kept half would be the VAE's round trip of it: the latent
  // blending keeps it there too, so the seam is smooth.
}

TEST_F(PipelineTest, CancelStopsAfterTheStepItWasAskedIn) {
  auto r = heart();
  int64_t last = 0;
  r.on_step = [&](int64_t i, int64_t) { last = i; };
  r.cancelled = [&] { return last >= 2; };
  EXPECT_THROW(loaded_->generate(r), Cancelled);
  EXPECT_EQ(last, 2);
}

// `img` averaged 2×2 down to half its size.
Image half_size(const Image& img) {
  Image out;
  out.width = img.width / 2;
  out.height = img.height / 2;
  out.rgb.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  for (int y = 0; y < out.height; ++y)
    for (int x = 0; x < out.width; ++x)
      for (int c = 0; c < 3; ++c) {
        int sum = 0;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx) sum += img.rgb[((static_cast<std::size_t>(2 * y + dy)) * img.width + 2 * x + dx) * 3 + c];
        out.rgb[(static_cast<std::size_t>(y) * out.width + x) * 3 + c] = static_cast<uint8_t>((sum + 2) / 4);
      }
  return out;
}

TEST_F(PipelineTest, HiresFixDrawsTheSmallPictureLargerInTwoPasses) {
  // A prompt the shipped model draws well at 64 and badly in one pass at 128.
  auto rocket = [](int64_t side) {
    GenerationRequest r;
    r.prompt = "a rocket, noto style";
    r.seed = 2;
    r.width = r.height = side;
    r.hires_from = 0;
    return r;
  };
  const auto small = loaded_->generate(rocket(64));
  const auto one = loaded_->generate(rocket(128));
  auto r = rocket(128);
  r.hires_from = 64;
  r.hires_strength = 0.4;
  int64_t last = 0, total = 0;
  r.on_step = [&](int64_t i, int64_t n) { last = i, total = n; };
  const auto two = loaded_->generate(r);
  EXPECT_EQ(total, 12 + 4);  // every step at 64, then the times from 0.6 on (the last 4 of 12) at 128
  EXPECT_EQ(last, total);
  ASSERT_EQ(two.images[0].width, 128);
  // Averaged down to 64, the two-pass picture is the 64-pixel picture of its seed redrawn finer;
  // the one-pass picture at 128 is another picture.
  const double two_vs_small = mad(half_size(two.images[0]), small.images[0]);
  const double one_vs_small = mad(half_size(one.images[0]), small.images[0]);
  EXPECT_LT(two_vs_small, 8.0);
  EXPECT_GT(one_vs_small, 3 * two_vs_small);
  EXPECT_GT(mad(two.images[0], one.images[0]), 10.0);
  const auto& p = two.parameters[0];
  EXPECT_EQ(p.width, 128);
  EXPECT_EQ(p.first_width, 64);
  EXPECT_EQ(p.first_height, 64);
  EXPECT_EQ(p.strength, 0.4);

  // A folder's sampler.hires_fix is the default; a request's hires_from 0 draws one pass.
  test::TempDir dir;
  ModelFolder folder = ModelFolder::load(kModel);
  folder.dir = dir.file("hires");
  for (auto* part : {&folder.denoiser, &folder.text_encoder, &folder.tokenizer, &folder.vae})
    *part = (fs::path(kModel) / *part).string();
  folder.sampler.hires_from = 64;
  folder.sampler.hires_strength = 0.4;
  folder.save();
  PipelineOptions o = options(true);
  o.model_dir = folder.dir;
  Pipeline defaults(o);
  auto d = rocket(128);
  d.hires_from.reset();
  EXPECT_EQ(defaults.generate(d).images[0].rgb, two.images[0].rgb);
  EXPECT_EQ(defaults.generate(rocket(128)).images[0].rgb, one.images[0].rgb);
  // The folder's default passes over sizes it has no trained first pass for (128 × 64 would start
  // at 64 × 32) and pictures from an init image; a request's own hires_from is refused there.
  d.height = 64;
  EXPECT_EQ(defaults.generate(d).parameters[0].first_width, 0);
  d.hires_from = 64;
  EXPECT_NE(test::error_of([&] { defaults.generate(d); }).find("hires fix: the first pass's height 32 is not a size the model was trained at (64, 128)"),
            std::string::npos);
  // ... unless it may start at any size (--any-size): then 64 × 32 first; the folder's default
  // keeps to trained sizes all the same.
  d.hires_any_size = true;
  const auto untrained_first = defaults.generate(d).parameters[0];
  EXPECT_EQ(untrained_first.first_width, 64);
  EXPECT_EQ(untrained_first.first_height, 32);
  d.hires_from.reset();
  EXPECT_EQ(defaults.generate(d).parameters[0].first_width, 0);
  // A LoRA trained at 32 × 64 and 64 × 32 makes 32 a trained side of its requests, first passes included.
  d.hires_any_size = false;
  const int64_t c0 = safetensors::Reader(folder.denoiser).at("unet.out.weight").shape.at(0);
  const auto wide = dir.file("wide.safetensors");
  save_tensors(wide, {{"unet.out.lora_A.weight", torch::zeros({2, c0})}, {"unet.out.lora_B.weight", torch::zeros({c0, 2})}},
               {{"r", "2"}, {"training_data", R"({"images": 8, "resolution": 64, "buckets": [[32, 64], [64, 32]]})"}});
  d.loras = {{wide, 1.0, "wide"}};
  const auto widened = defaults.generate(d).parameters[0];
  EXPECT_EQ(widened.first_width, 64);
  EXPECT_EQ(widened.first_height, 32);
  d = rocket(64);
  d.init_image = two_colours();
  d.hires_from = 64;
  EXPECT_NE(test::error_of([&] { defaults.generate(d); }).find("hires fix draws text-to-image pictures"), std::string::npos);
  d.hires_from = 0;
  d.hires_strength = 1.5;
  EXPECT_NE(test::error_of([&] { defaults.generate(d); }).find("hires fix: strength must be in (0, 1], got 1.5"), std::string::npos);
}

TEST_F(PipelineTest, RequestsAreCheckedBeforeAnythingRuns) {
  auto r = heart();
  r.width = 48;
  EXPECT_NE(test::error_of([&] { loaded_->generate(r); }).find("width 48: must be a multiple of 32 from 32 to 4096; nearest: 32 or 64"), std::string::npos);
  r = heart();
  r.mask = two_colours();
  EXPECT_NE(test::error_of([&] { loaded_->generate(r); }).find("a mask needs an init image"), std::string::npos);
  r.init_image = Image{};
  r.init_image->width = 32;
  r.init_image->height = 32;
  r.init_image->rgb.assign(32 * 32 * 3, 0);
  EXPECT_NE(test::error_of([&] { loaded_->generate(r); }).find("the mask is 64x64 but the init image is 32x32"), std::string::npos);
  r = heart();
  r.init_image = two_colours();
  r.strength = 0;
  EXPECT_NE(test::error_of([&] { loaded_->generate(r); }).find("strength must be in (0, 1], got 0"), std::string::npos);
  r = heart();
  r.steps = 0;
  EXPECT_NE(test::error_of([&] { loaded_->generate(r); }).find("steps must be between 1 and 1000, got 0"), std::string::npos);
  r = heart();
  r.sampler = "ddim";
  EXPECT_NE(test::error_of([&] { loaded_->generate(r); }).find("unknown sampler 'ddim'"), std::string::npos);
  PipelineOptions o = options(true);
  o.model_dir = "/nonexistent/model";
  EXPECT_NE(test::error_of([&] { Pipeline p(o); }).find("model folder not found: /nonexistent/model"), std::string::npos);
}

}  // namespace
}  // namespace luminars
