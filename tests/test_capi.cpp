// The C API (include/luminars.h, libluminars.so) on the shipped model: the pictures of the C++
// pipeline and of `luminars generate`, bit for bit; batches, image-to-image, inpainting, progress
// and cancellation; bad arguments refused with a status and a line naming them; nothing but the
// luminars_* functions exported.
#include <luminars.h>

#include <filesystem>
#include <sstream>
#include <vector>

#include "core/image.h"
#include "pipeline/pipeline.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kModel = test::shipped_model_dir();

// A model loaded through the C API, in float32 on the CPU (the same pictures on every CPU).
class CApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    luminars_model_params p;
    luminars_model_params_defaults(&p);
    p.device = "cpu";
    p.precision = LUMINARS_PRECISION_FLOAT32;
    ASSERT_EQ(luminars_model_load(kModel.c_str(), &p, &model_), LUMINARS_OK) << luminars_last_error();
    PipelineOptions o;
    o.model_dir = kModel;
    o.bf16 = false;
    reference_ = new Pipeline(o);
  }
  static void TearDownTestSuite() {
    luminars_model_free(model_);
    delete reference_;
  }
  static luminars_model* model_;
  static Pipeline* reference_;
};
luminars_model* CApiTest::model_ = nullptr;
Pipeline* CApiTest::reference_ = nullptr;

struct Buffer {
  std::vector<uint8_t> bytes;
  luminars_image image;
  Buffer(int w, int h) : bytes(static_cast<size_t>(w) * h * 3), image{bytes.data(), w, h} {}
};

luminars_generate_params apple(uint64_t seed = 3) {
  luminars_generate_params p;
  luminars_generate_params_defaults(&p);
  p.prompt = "a green apple";
  p.seed = seed;
  p.steps = 6;
  return p;
}

GenerationRequest apple_request(uint64_t seed = 3) {
  GenerationRequest r;
  r.prompt = "a green apple";
  r.seed = seed;
  r.steps = 6;
  return r;
}

luminars_image view(Image& image) { return {image.rgb.data(), image.width, image.height}; }

TEST_F(CApiTest, DrawsThePipelinesPicturesBitForBit) {
  EXPECT_EQ(luminars_model_resolution(model_), 64);
  EXPECT_EQ(luminars_model_size_multiple(model_), 32);
  Buffer out(64, 64);
  auto p = apple();
  ASSERT_EQ(luminars_generate(model_, &p, &out.image, 1), LUMINARS_OK) << luminars_last_error();
  const auto ref = reference_->generate(apple_request());
  EXPECT_EQ(out.bytes, ref.images[0].rgb);

  // A batch of two: seeds 3 and 4, the pipeline's batch bit for bit; the second the picture seed 4
  // draws alone (batched products may round differently).
  Buffer a(64, 64), b(64, 64);
  luminars_image batch[2] = {a.image, b.image};
  ASSERT_EQ(luminars_generate(model_, &p, batch, 2), LUMINARS_OK) << luminars_last_error();
  auto r = apple_request();
  r.batch = 2;
  const auto ref_batch = reference_->generate(r);
  EXPECT_EQ(a.bytes, ref_batch.images[0].rgb);
  EXPECT_EQ(b.bytes, ref_batch.images[1].rgb);
  Image second{64, 64, b.bytes};
  EXPECT_LE(test::mean_abs_difference(second, reference_->generate(apple_request(4)).images[0]), 0.05);
  EXPECT_GT(test::mean_abs_difference(second, Image{64, 64, a.bytes}), 5.0);
}

TEST_F(CApiTest, ImageToImageAndInpaintingAsThePipeline) {
  Image init = test::gradient_image(64, 64);
  Image mask = init;
  for (int y = 0; y < 64; ++y)
    for (int x = 0; x < 64; ++x)
      for (int c = 0; c < 3; ++c) mask.rgb[(static_cast<size_t>(y) * 64 + x) * 3 + c] = y < 32 ? 255 : 0;
  luminars_image init_view = view(init), mask_view = view(mask);

  auto p = apple();
  p.init_image = &init_view;
  p.strength = 0.5;
  Buffer i2i(64, 64);
  ASSERT_EQ(luminars_generate(model_, &p, &i2i.image, 1), LUMINARS_OK) << luminars_last_error();
  auto r = apple_request();
  r.init_image = init;
  r.strength = 0.5;
  EXPECT_EQ(i2i.bytes, reference_->generate(r).images[0].rgb);

  // Inpainting: strength 0 means 1 here, as `luminars generate --mask` does.
  p.mask = &mask_view;
  p.strength = 0;
  Buffer inpainted(64, 64);
  ASSERT_EQ(luminars_generate(model_, &p, &inpainted.image, 1), LUMINARS_OK) << luminars_last_error();
  r.mask = mask;
  r.strength = 1.0;
  const auto ref = reference_->generate(r).images[0];
  EXPECT_EQ(inpainted.bytes, ref.rgb);
  // The kept (black) half, away from the soft edge, is the init picture's.
  Image kept{64, 64, inpainted.bytes};
  EXPECT_EQ(test::mean_abs_difference(crop(kept, 0, 41, 64, 23), crop(init, 0, 41, 64, 23)), 0.0);
  EXPECT_GT(test::mean_abs_difference(crop(kept, 0, 0, 64, 24), crop(init, 0, 0, 64, 24)), 5.0);
}

TEST_F(CApiTest, TwoPassesAsThePipeline) {
  // At 128 the shipped folder draws in two passes from 64 (its sampler.hires_fix): hires_from -1
  // (the default) is that picture, 0 the one-pass picture, 64 at strength 0.3 the pipeline's too.
  auto p = apple();
  EXPECT_EQ(p.hires_from, -1);
  EXPECT_EQ(p.hires_strength, 0.0);
  auto r = apple_request();
  r.width = r.height = 128;
  Buffer folder_default(128, 128), one(128, 128), weaker(128, 128);
  ASSERT_EQ(luminars_generate(model_, &p, &folder_default.image, 1), LUMINARS_OK) << luminars_last_error();
  const auto two = reference_->generate(r);
  ASSERT_EQ(two.parameters[0].first_width, 64);
  EXPECT_EQ(folder_default.bytes, two.images[0].rgb);
  p.hires_from = 0;
  ASSERT_EQ(luminars_generate(model_, &p, &one.image, 1), LUMINARS_OK) << luminars_last_error();
  r.hires_from = 0;
  EXPECT_EQ(one.bytes, reference_->generate(r).images[0].rgb);
  EXPECT_NE(one.bytes, folder_default.bytes);
  p.hires_from = 64;
  p.hires_strength = 0.3;
  ASSERT_EQ(luminars_generate(model_, &p, &weaker.image, 1), LUMINARS_OK) << luminars_last_error();
  r.hires_from = 64;
  r.hires_strength = 0.3;
  EXPECT_EQ(weaker.bytes, reference_->generate(r).images[0].rgb);
  EXPECT_NE(weaker.bytes, folder_default.bytes);

  p.hires_from = -2;
  EXPECT_EQ(luminars_generate(model_, &p, &one.image, 1), LUMINARS_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(luminars_last_error(), "hires_from must be -1 (the folder's default), 0 (one pass) or a side up to 4096, got -2");
  p.hires_from = 64;
  p.hires_strength = 1.5;
  EXPECT_EQ(luminars_generate(model_, &p, &one.image, 1), LUMINARS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(luminars_last_error()).find("hires_strength must be 0"), std::string::npos) << luminars_last_error();
  p.hires_from = 96;  // a first pass the model was not trained at
  p.hires_strength = 0;
  EXPECT_EQ(luminars_generate(model_, &p, &one.image, 1), LUMINARS_ERROR_FAILED);
  EXPECT_NE(std::string(luminars_last_error()).find("not a size the model was trained at"), std::string::npos) << luminars_last_error();
}

struct Progress {
  std::vector<std::pair<int, int>> calls;
  int cancel_at = 0;
};

int record_progress(int step, int steps, void* user_data) {
  auto* progress = static_cast<Progress*>(user_data);
  progress->calls.emplace_back(step, steps);
  return step == progress->cancel_at;
}

TEST_F(CApiTest, ProgressReportsEveryStepAndCancels) {
  Progress progress;
  auto p = apple();
  p.progress = record_progress;
  p.progress_user_data = &progress;
  Buffer out(64, 64);
  ASSERT_EQ(luminars_generate(model_, &p, &out.image, 1), LUMINARS_OK) << luminars_last_error();
  EXPECT_EQ(progress.calls, (std::vector<std::pair<int, int>>{{1, 6}, {2, 6}, {3, 6}, {4, 6}, {5, 6}, {6, 6}}));

  progress = {};
  progress.cancel_at = 2;
  EXPECT_EQ(luminars_generate(model_, &p, &out.image, 1), LUMINARS_ERROR_CANCELLED);
  EXPECT_EQ(progress.calls.size(), 2u);
  EXPECT_STREQ(luminars_last_error(), "generation cancelled");
  EXPECT_STREQ(luminars_error_message(LUMINARS_ERROR_CANCELLED), "cancelled");
}

TEST_F(CApiTest, BadArgumentsAreRefusedWithALineNamingThem) {
  auto p = apple();
  Buffer out(64, 64), other(32, 64), odd(40, 64);
  EXPECT_EQ(luminars_generate(nullptr, &p, &out.image, 1), LUMINARS_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(luminars_last_error(), "luminars_generate: model is NULL");
  EXPECT_EQ(luminars_generate(model_, &p, &out.image, 0), LUMINARS_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(luminars_last_error(), "the number of images must be between 1 and 64, got 0");
  luminars_image mixed[2] = {out.image, other.image};
  EXPECT_EQ(luminars_generate(model_, &p, mixed, 2), LUMINARS_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(luminars_last_error(), "image 1 is 32x64 but image 0 is 64x64: a batch has one size");
  p.seed = 4294967295u;
  luminars_image two[2] = {out.image, out.image};
  EXPECT_EQ(luminars_generate(model_, &p, two, 2), LUMINARS_ERROR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(luminars_last_error()).find("seeds go from 0 to 4294967295"), std::string::npos);
  p = apple();
  p.sampler = "dpm";
  EXPECT_EQ(luminars_generate(model_, &p, &out.image, 1), LUMINARS_ERROR_FAILED);
  EXPECT_NE(std::string(luminars_last_error()).find("dpm"), std::string::npos) << luminars_last_error();
  p = apple();
  EXPECT_EQ(luminars_generate(model_, &p, &odd.image, 1), LUMINARS_ERROR_FAILED);
  EXPECT_NE(std::string(luminars_last_error()).find("40"), std::string::npos) << luminars_last_error();

  luminars_model* model = reinterpret_cast<luminars_model*>(&out);
  EXPECT_EQ(luminars_model_load("/nonexistent/model", nullptr, &model), LUMINARS_ERROR_FAILED);
  EXPECT_EQ(model, nullptr);
  EXPECT_NE(std::string(luminars_last_error()).find("/nonexistent/model"), std::string::npos) << luminars_last_error();
  luminars_model_params mp;
  luminars_model_params_defaults(&mp);
  mp.threads = -1;
  EXPECT_EQ(luminars_model_load(kModel.c_str(), &mp, &model), LUMINARS_ERROR_INVALID_ARGUMENT);
  EXPECT_STREQ(luminars_last_error(), "threads must be between 0 and 1024, got -1");
  luminars_model_free(nullptr);  // ignored
}

// ctest-labels: slow
TEST(CApiProgram, TheCExampleDrawsWhatLuminarsGenerateDraws) {
  test::TempDir dir;
  auto c = test::run(std::string(LUMINARS_GENERATE_C_PATH) + " " + kModel + " 'a green apple' 3 " + dir.file("c.png") + " 2>&1");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_NE(c.output.find("step 12/12"), std::string::npos) << c.output;
  auto cli = test::run_cli("generate --model " + kModel + " --quiet --prompt 'a green apple' --seed 3 --out " + dir.file("cli.png"));
  ASSERT_EQ(cli.exit_code, 0) << cli.output;
  const Image a = load_image(dir.file("c.png")), b = load_image(dir.file("cli.png"));
  EXPECT_EQ(a.width, 64);
  EXPECT_EQ(a.height, 64);
  EXPECT_EQ(a.rgb, b.rgb);

  auto bad = test::run(std::string(LUMINARS_GENERATE_C_PATH) + " " + dir.file("missing") + " x 1 " + dir.file("x.png") + " 2>&1");
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_NE(bad.output.find(dir.file("missing")), std::string::npos) << bad.output;
  EXPECT_FALSE(fs::exists(dir.file("x.png")));
  bad = test::run(std::string(LUMINARS_GENERATE_C_PATH) + " " + kModel + " x -1 " + dir.file("x.png") + " 2>&1");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.output.find("SEED must be"), std::string::npos) << bad.output;
}

TEST(CApiLibrary, ExportsOnlyTheCApi) {
  auto r = test::run("nm -D --defined-only --extern-only " + std::string(LUMINARS_LIBRARY_PATH) + " 2>&1");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  std::istringstream lines(r.output);
  std::string line;
  int exported = 0;
  while (std::getline(lines, line)) {
    const auto name = line.substr(line.rfind(' ') + 1);
    if (name.empty()) continue;
    EXPECT_EQ(name.rfind("luminars_", 0), 0u) << "exported: " << name;
    ++exported;
  }
  EXPECT_EQ(exported, 10);  // the functions of include/luminars.h
}

}  // namespace
}  // namespace luminars
