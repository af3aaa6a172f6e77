// The sizes a model can draw and was trained at: nearest valid sizes, the wording of refusals, and
// luminars.json's trained_sizes (written, read, and the fallback of folders without it).
#include <gtest/gtest.h>

#include <filesystem>

#include "core/error.h"
#include "core/files.h"
#include "pipeline/image_sizes.h"
#include "pipeline/model_folder.h"
#include "test_support.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

TEST(ImageSizes, NearestValidSizes) {
  const SizeRule rule{32, 4096, {64}};
  EXPECT_EQ(nearest_sizes(60, rule), (std::vector<int64_t>{64}));
  EXPECT_EQ(nearest_sizes(70, rule), (std::vector<int64_t>{64}));
  EXPECT_EQ(nearest_sizes(80, rule), (std::vector<int64_t>{64, 96}));  // halfway: both
  EXPECT_EQ(nearest_sizes(1, rule), (std::vector<int64_t>{32}));
  EXPECT_EQ(nearest_sizes(5000, rule), (std::vector<int64_t>{4096}));
  EXPECT_EQ(nearest_sizes(4090, SizeRule{48, 4096, {}}), (std::vector<int64_t>{4080}));  // the largest multiple under max
  EXPECT_EQ(nearest_sizes(96, rule), (std::vector<int64_t>{96}));
}

TEST(ImageSizes, ErrorsStateTheRuleAndTheNearest) {
  const SizeRule rule{32, 4096, {64}};
  EXPECT_EQ(size_error("--size", 64, rule), "");
  EXPECT_EQ(size_error("--size", 60, rule), "--size 60: must be a multiple of 32 from 32 to 4096; nearest: 64");
  EXPECT_EQ(size_error("width", 80, rule), "width 80: must be a multiple of 32 from 32 to 4096; nearest: 64 or 96");
  EXPECT_EQ(size_error("height", 8192, rule), "height 8192: must be a multiple of 32 from 32 to 4096; nearest: 4096");
  EXPECT_EQ(untrained_size_error("--size", 64, rule, "pass --any-size"), "");
  EXPECT_EQ(untrained_size_error("--size", 128, rule, "pass --any-size"),
            "--size 128: the model was trained at 64 (other sizes draw repeated, broken patterns); pass --any-size");
  EXPECT_EQ(untrained_size_error("width", 96, SizeRule{32, 4096, {64, 128}}, "x"),
            "width 96: the model was trained at 64, 128 (other sizes draw repeated, broken patterns); x");
  EXPECT_TRUE(is_trained_size(96, SizeRule{32, 4096, {}}));  // not known: every size
}

TEST(ImageSizes, ModelFolderTrainedSizes) {
  test::TempDir dir;
  // Written by save() from the training resolution, read back.
  ModelFolder m;
  m.dir = dir.file("a");
  m.resolution = 32;
  m.save();
  EXPECT_NE(read_file(dir.file("a/luminars.json")).find("\"trained_sizes\""), std::string::npos);
  EXPECT_EQ(ModelFolder::load(dir.file("a")).trained_sizes, (std::vector<int64_t>{32}));
  m.trained_sizes = {32, 64};
  m.save();
  EXPECT_EQ(ModelFolder::load(dir.file("a")).trained_sizes, (std::vector<int64_t>{32, 64}));

  // A folder written before the field: its resolution.
  fs::create_directories(dir.file("old"));
  test::write_text(dir.file("old/luminars.json"), R"({"resolution": 48})");
  EXPECT_EQ(ModelFolder::load(dir.file("old")).trained_sizes, (std::vector<int64_t>{48}));

  // The shipped model says it.
  EXPECT_EQ(ModelFolder::load(test::shipped_model_dir()).trained_sizes,
            (std::vector<int64_t>{64, 128}));

  // Bad values are named.
  for (const char* bad : {R"({"trained_sizes": []})", R"({"trained_sizes": 64})", R"({"trained_sizes": [64, "x"]})",
                          R"({"trained_sizes": [4]})"}) {
    test::write_text(dir.file("old/luminars.json"), bad);
    EXPECT_NE(test::error_of([&] { ModelFolder::load(dir.file("old")); }).find("field 'trained_sizes'"), std::string::npos) << bad;
  }
}

TEST(ImageSizes, ModelFolderHiresFix) {
  test::TempDir dir;
  ModelFolder m;
  m.dir = dir.file("a");
  m.resolution = 64;
  m.save();
  EXPECT_EQ(read_file(dir.file("a/luminars.json")).find("hires_fix"), std::string::npos);  // off: not written
  EXPECT_EQ(ModelFolder::load(dir.file("a")).sampler.hires_from, 0);
  m.sampler.hires_from = 64;
  m.sampler.hires_strength = 0.35;
  m.save();
  const ModelFolder back = ModelFolder::load(dir.file("a"));
  EXPECT_EQ(back.sampler.hires_from, 64);
  EXPECT_EQ(back.sampler.hires_strength, 0.35);
  // The shipped model draws 128 from its 64-pixel pictures (docs/emoji/ablations.md).
  const ModelFolder shipped = ModelFolder::load(test::shipped_model_dir());
  EXPECT_EQ(shipped.sampler.hires_from, 64);
  EXPECT_EQ(shipped.sampler.hires_strength, 0.5);

  fs::create_directories(dir.file("bad"));
  for (const char* bad : {R"({"sampler": {"hires_fix": 64}})", R"({"sampler": {"hires_fix": {"from": -1}}})", R"({"sampler": {"hires_fix": {"from": 8192}}})",
                          R"({"sampler": {"hires_fix": {"from": 64.5}}})", R"({"sampler": {"hires_fix": {"from": 64, "strength": 0}}})",
                          R"({"sampler": {"hires_fix": {"from": 64, "strength": "high"}}})"}) {
    test::write_text(dir.file("bad/luminars.json"), bad);
    EXPECT_NE(test::error_of([&] { ModelFolder::load(dir.file("bad")); }).find("hires_fix"), std::string::npos) << bad;
  }
}

}  // namespace
}  // namespace luminars
