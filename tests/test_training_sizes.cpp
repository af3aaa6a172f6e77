// One denoiser trained at several sizes: `prepare --extra-sizes` caching every picture at each
// square size (one size per shard, each a bucket of the cache), the held-out split keeping a
// picture's sizes together, and the trained model folder listing every size it was trained at.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>

#include "core/files.h"
#include "core/image.h"
#include "data/dataset.h"
#include "pipeline/prepare.h"
#include "test_support.h"
#include "tiny_prepare.h"
#include "train/latent_cache.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

PrepareOptions sizes_prepare(const test::TempDir& dir) {
  PrepareOptions o = test::tiny_prepare_options(dir);  // VAE factor 2, 16 px, 2 pictures a shard
  o.extra_sizes = {32};
  return o;
}

void write_pictures(const std::string& dir, int count) {
  fs::create_directories(dir);
  for (int i = 0; i < count; ++i) {
    save_png(dir + "/p" + std::to_string(i) + ".png", test::gradient_image(40 + i, 40));
    test::write_text(dir + "/p" + std::to_string(i) + ".txt", "picture " + std::to_string(i) + "\n");
  }
}

TEST(TrainingSizes, PrepareCachesEveryPictureAtEachSize) {
  LUMINARS_REQUIRE_FIXTURES();
  test::TempDir dir;
  write_pictures(dir.file("data"), 3);
  const auto summary = prepare(sizes_prepare(dir));
  EXPECT_EQ(summary.images, 6);
  EXPECT_EQ(summary.captions, 6);
  EXPECT_NE(summary.text.find("sizes (pictures): 16x16 (3), 32x32 (3)"), std::string::npos) << summary.text;
  const auto index = nlohmann::json::parse(read_file(dir.file("cache/cache.json")));
  EXPECT_EQ(index["resolution"], 16);
  EXPECT_EQ(index["buckets"], nlohmann::json::parse("[[16,16],[32,32]]"));

  const auto cache = LatentCache::load(dir.file("cache"));
  ASSERT_EQ(cache.size(), 6);
  std::map<std::string, std::set<int64_t>> sides_of;  // source picture -> latent sides it was cached at
  for (int64_t i = 0; i < cache.size(); ++i) {
    const auto row = cache.mean.row(i).sizes().vec();
    const auto& b = cache.info.buckets[static_cast<std::size_t>(cache.bucket_of[static_cast<std::size_t>(i)])];
    EXPECT_EQ(row, (std::vector<int64_t>{16, b.height / 2, b.width / 2}));
    sides_of[fs::path(cache.paths[static_cast<std::size_t>(i)]).filename().string()].insert(row[1]);
    EXPECT_EQ(cache.captions_of[static_cast<std::size_t>(i)].size(), 1u);
  }
  for (const auto& name : {"p0.png", "p1.png", "p2.png"}) EXPECT_EQ(sides_of[name], (std::set<int64_t>{8, 16})) << name;
  // The same picture's latents at the two sizes agree in their mean colour (a downscaled 32x32
  // picture encodes near its 16x16 version): the sizes hold the same pictures, not shuffled ones.
  const auto small = cache.mean.row(0).mean({1, 2}), large = cache.mean.row(3).mean({1, 2});
  EXPECT_EQ(cache.paths[0], cache.paths[3]);
  EXPECT_LT((small - large).norm().item<double>(), 0.25 * large.norm().item<double>());

  // A rerun reuses every shard (2 sizes x 2 shards of at most 2 pictures).
  EXPECT_EQ(prepare(sizes_prepare(dir)).shards_reused, 4);
}

TEST(TrainingSizes, BadExtraSizesAreNamed) {
  LUMINARS_REQUIRE_FIXTURES();
  test::TempDir dir;
  write_pictures(dir.file("data"), 1);
  auto o = sizes_prepare(dir);
  o.extra_sizes = {33};
  EXPECT_NE(test::error_of([&] { prepare(o); }).find("extra size 33 is not a multiple of the VAE's factor 2"), std::string::npos);
  o.extra_sizes = {32, 32};
  EXPECT_NE(test::error_of([&] { prepare(o); }).find("extra size 32 is given twice"), std::string::npos);
  o.extra_sizes = {16};
  EXPECT_NE(test::error_of([&] { prepare(o); }).find("extra size 16 is given twice (or equals the resolution)"), std::string::npos);
  o.extra_sizes = {32};
  o.buckets = true;
  o.bucket_step = 8;
  EXPECT_NE(test::error_of([&] { prepare(o); }).find("aspect-ratio buckets and extra sizes cannot be combined"), std::string::npos);
  EXPECT_FALSE(fs::exists(dir.file("cache/cache.json")));
}

TEST(TrainingSizes, HeldOutSplitKeepsAPicturesCopiesTogether) {
  // Distinct keys: exactly split_indices, so caches of distinct pictures keep their old split.
  std::vector<std::string> distinct;
  for (int i = 0; i < 40; ++i) distinct.push_back("img" + std::to_string(i));
  const auto plain = split_indices(40, 0.1, 3), grouped = split_groups(distinct, 0.1, 3);
  EXPECT_EQ(grouped.train, plain.train);
  EXPECT_EQ(grouped.validation, plain.validation);

  // Each of 20 pictures twice (two sizes, as prepare --extra-sizes writes them): a picture's rows
  // are both held out or both trained, and 10% of the pictures are held out.
  std::vector<std::string> twice = distinct;
  twice.resize(20);
  twice.insert(twice.end(), twice.begin(), twice.end());
  const auto s = split_groups(twice, 0.1, 3);
  ASSERT_EQ(s.validation.size(), 4u);
  EXPECT_EQ(s.train.size(), 36u);
  std::set<std::string> held, trained;
  for (auto i : s.validation) held.insert(twice[static_cast<std::size_t>(i)]);
  for (auto i : s.train) trained.insert(twice[static_cast<std::size_t>(i)]);
  EXPECT_EQ(held.size(), 2u);
  for (const auto& k : held) EXPECT_EQ(trained.count(k), 0u) << k << " is on both sides";
}

TEST(TrainingSizes, TheDenoiserTrainsAtBothSizesAndTheModelFolderListsThem) {
  LUMINARS_REQUIRE_FIXTURES();
  test::TempDir dir;
  write_pictures(dir.file("data"), 4);
  prepare(sizes_prepare(dir));
  const auto r = test::run_cli("train --cache " + dir.file("cache") + " --out " + dir.file("run") +
                               " --preset tiny --stage all --steps 4 1 1 --batch 2 --validate-every 3 --val-fraction 0.25"
                               " --sample-every 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto folder = nlohmann::json::parse(read_file(dir.file("run/model/luminars.json")));
  EXPECT_EQ(folder["resolution"], 16);
  EXPECT_EQ(folder["trained_sizes"], (std::vector<int64_t>{16, 32}));

  // On the command line: --extra-sizes refuses --buckets, naming both.
  const auto both = test::run_cli("prepare --data " + dir.file("data") + " --vae " + test::fixtures_dir() + "/vae_tiny_16ch" +
                                  " --text-encoder " + test::fixtures_dir() + "/clip_text_tiny --tokenizer " +
                                  test::fixtures_dir() + "/clip_tokenizer --out " + dir.file("c2") +
                                  " --resolution 16 --extra-sizes 32 --buckets");
  EXPECT_NE(both.exit_code, 0);
  EXPECT_NE(both.output.find("--buckets excludes --extra-sizes"), std::string::npos) << both.output;
}

}  // namespace
}  // namespace luminars
