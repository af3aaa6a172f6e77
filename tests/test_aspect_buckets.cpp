// Aspect-ratio buckets (data/aspect_buckets.h): the bucket set, which bucket a picture goes to,
// `prepare --buckets` writing one bucket per shard, batches that stay within one bucket and cover
// every picture, training on such a cache, and a LoRA trained so letting generation draw its shapes.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>
#include <set>

#include "core/files.h"
#include "core/image.h"
#include "core/safetensors.h"
#include "data/aspect_buckets.h"
#include "pipeline/prepare.h"
#include "test_support.h"
#include "tiny_prepare.h"
#include "train/batch_sampler.h"
#include "train/latent_cache.h"
#include "train/trainer.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

std::vector<std::string> names(const std::vector<BucketSize>& buckets) {
  std::vector<std::string> out;
  for (const auto& b : buckets) out.push_back(std::to_string(b.width) + "x" + std::to_string(b.height));
  return out;
}

TEST(AspectBuckets, SetsOfAboutTheSameAreaWithTheSquare) {
  EXPECT_EQ(names(aspect_buckets(64, 32)), (std::vector<std::string>{"32x128", "32x96", "64x64", "96x32", "128x32"}));
  const auto b = aspect_buckets(256, 32);
  EXPECT_NE(std::find(b.begin(), b.end(), BucketSize{256, 256}), b.end());
  for (std::size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b[i].width % 32, 0);
    EXPECT_EQ(b[i].height % 32, 0);
    EXPECT_LE(b[i].width * b[i].height, 256 * 256);
    EXPECT_GE(b[i].width * b[i].height, 256 * 256 * 5 / 8) << names(b)[i];  // no sliver far below the area
    EXPECT_GE(std::min(b[i].width, b[i].height), 128);
    EXPECT_LE(std::max(b[i].width, b[i].height), 512);
    EXPECT_NE(std::find(b.begin(), b.end(), BucketSize{b[i].height, b[i].width}), b.end()) << "both orientations";
    if (i > 0) {
      EXPECT_LT(b[i - 1].width * b[i].height, b[i].width * b[i - 1].height) << "ordered by ratio";
    }
  }
  EXPECT_NE(test::error_of([] { aspect_buckets(64, 48); }).find("multiple of the bucket step 48"), std::string::npos);
}

TEST(AspectBuckets, EachPictureGoesToTheNearestRatio) {
  const auto b = aspect_buckets(64, 32);
  auto at = [&](int64_t w, int64_t h) { return names(b)[nearest_bucket(b, w, h)]; };
  EXPECT_EQ(at(500, 500), "64x64");
  EXPECT_EQ(at(160, 60), "96x32");   // 2.67: log-nearest 3 (not 4)
  EXPECT_EQ(at(50, 150), "32x96");
  EXPECT_EQ(at(1000, 100), "128x32");
  EXPECT_EQ(at(640, 400), "64x64");  // 1.6: nearer 1 than 3 by log ratio
}

PrepareOptions bucket_prepare(const test::TempDir& dir) {
  PrepareOptions o = test::tiny_prepare_options(dir);  // VAE factor 2, 16 px
  o.buckets = true;
  o.bucket_step = 8;  // buckets 8x32, 8x24, 16x16, 24x8, 32x8
  return o;
}

void write_shapes(const std::string& dir) {
  fs::create_directories(dir);
  const std::vector<std::pair<int, int>> sizes{{40, 12}, {12, 40}, {20, 20}, {60, 12}, {13, 41}, {30, 30}, {44, 14}};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    save_png(dir + "/p" + std::to_string(i) + ".png", test::gradient_image(sizes[i].first, sizes[i].second));
    test::write_text(dir + "/p" + std::to_string(i) + ".txt", "picture " + std::to_string(i) + "\n");
  }
}

TEST(AspectBuckets, PrepareWritesOneBucketPerShardAndTheCacheSaysWhich) {
  LUMINARS_REQUIRE_FIXTURES();
  test::TempDir dir;
  write_shapes(dir.file("data"));
  const auto summary = prepare(bucket_prepare(dir));
  EXPECT_EQ(summary.images, 7);
  EXPECT_NE(summary.text.find("8x24 (2), 16x16 (2), 24x8 (2), 32x8 (1)"), std::string::npos) << summary.text;
  const auto index = nlohmann::json::parse(read_file(dir.file("cache/cache.json")));
  EXPECT_EQ(index["format_version"], 2);
  EXPECT_EQ(index["buckets"].size(), 5u);

  const auto cache = LatentCache::load(dir.file("cache"));
  ASSERT_EQ(cache.size(), 7);
  std::map<std::string, std::vector<int64_t>> shape_of;  // source picture -> latent row shape
  for (int64_t i = 0; i < cache.size(); ++i) {
    const auto& b = cache.info.buckets[static_cast<std::size_t>(cache.bucket_of[static_cast<std::size_t>(i)])];
    const auto shape = cache.mean.row(i).sizes().vec();
    EXPECT_EQ(shape, (std::vector<int64_t>{16, b.height / 2, b.width / 2})) << cache.paths[static_cast<std::size_t>(i)];
    shape_of[fs::path(cache.paths[static_cast<std::size_t>(i)]).filename().string()] = shape;
  }
  EXPECT_EQ(shape_of["p0.png"], (std::vector<int64_t>{16, 4, 12}));  // 40x12 -> 24x8
  EXPECT_EQ(shape_of["p1.png"], (std::vector<int64_t>{16, 12, 4}));  // 12x40 -> 8x24
  EXPECT_EQ(shape_of["p2.png"], (std::vector<int64_t>{16, 8, 8}));
  EXPECT_EQ(shape_of["p3.png"], (std::vector<int64_t>{16, 4, 16}));  // 60x12 -> 32x8

  // A rerun reuses every shard; a cache index from a newer format is refused naming it.
  EXPECT_EQ(prepare(bucket_prepare(dir)).shards_reused, 4);
  auto newer = index;
  newer["format_version"] = 3;
  test::write_text(dir.file("cache/cache.json"), newer.dump());
  const auto msg = test::error_of([&] { CacheInfo::load(dir.file("cache")); });
  EXPECT_NE(msg.find("format version 3 is newer than this build of LuminaRS reads (2)"), std::string::npos) << msg;
}

TEST(AspectBuckets, BatchesStayInOneBucketAndAnEpochCoversEveryPicture) {
  LUMINARS_REQUIRE_FIXTURES();
  test::TempDir dir;
  write_shapes(dir.file("data"));
  prepare(bucket_prepare(dir));
  const auto cache = LatentCache::load(dir.file("cache"));
  std::vector<int64_t> all(static_cast<std::size_t>(cache.size()));
  std::iota(all.begin(), all.end(), int64_t{0});
  BatchSampler sampler(cache, all, 3, 0.1, {});
  // Buckets of 2, 2, 2 and 1 pictures in batches of 2: 4 batches an epoch (the lone one repeated).
  std::set<int64_t> seen;
  for (int64_t index = 0; index < 4; ++index) {
    const Batch b = sampler.sample(index, 2);
    ASSERT_EQ(b.images.size(), 2u);
    EXPECT_EQ(cache.bucket_of[static_cast<std::size_t>(b.images[0])], cache.bucket_of[static_cast<std::size_t>(b.images[1])]);
    EXPECT_EQ(b.x_clean.sizes(), b.noise.sizes());
    seen.insert(b.images.begin(), b.images.end());
  }
  EXPECT_EQ(seen.size(), 7u);
  // The same batch again (a resumed run draws it bit-exactly).
  BatchSampler again(cache, all, 3, 0.1, {});
  EXPECT_TRUE(torch::equal(again.sample(2, 2).x_clean, sampler.sample(2, 2).x_clean));
}

TEST(AspectBuckets, TheDenoiserTrainsOnABucketedCacheAndTheModelFolderListsItsSides) {
  test::TempDir dir;
  // Two buckets of the tiny preset's 4-channel latents (factor 2): 16x16 and 32x8 pictures.
  const auto cache = dir.file("cache");
  fs::create_directories(cache);
  CacheInfo info;
  info.resolution = 16;
  info.latent_channels = 4;
  info.latent_size = 8;
  info.text_dim = 40;
  info.context_length = 7;
  info.buckets = {{16, 16}, {32, 8}};
  auto gen = make_generator(7);
  for (int64_t s = 0; s < 2; ++s) {
    CacheShard sh;
    const int64_t h = s == 0 ? 8 : 4, w = s == 0 ? 8 : 16;
    sh.mean = torch::randn({4, 4, h, w}, gen);
    sh.std = torch::rand({4, 4, h, w}, gen) * 0.1;
    sh.caption_item = torch::arange(4, torch::kInt64);
    sh.ctx = torch::randn({4, 7, 40}, gen);
    sh.pooled = torch::randn({4, 40}, gen);
    for (int64_t i = 0; i < 4; ++i) sh.paths.push_back("img" + std::to_string(s * 4 + i) + ".png");
    write_cache_shard(cache, s, sh);
    info.shards.push_back(shard_name(s));
    info.items += 4;
    info.captions += 4;
  }
  write_cache_prompts(cache + "/empty.safetensors", torch::randn({1, 7, 40}, gen), torch::randn({1, 40}, gen), {""});
  write_cache_index(cache, info);

  const auto r = test::run_cli("train --cache " + cache + " --out " + dir.file("run") +
                               " --preset tiny --stage all --steps 4 1 1 --batch 2 --validate-every 3 --val-fraction 0.25"
                               " --sample-every 0");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto folder = nlohmann::json::parse(read_file(dir.file("run/model/luminars.json")));
  EXPECT_EQ(folder["trained_sizes"], (std::vector<int64_t>{8, 16, 32}));

  // A bucket the denoiser cannot take (an odd latent side, 9, for 2 levels) is named.
  info.buckets.push_back({18, 16});
  write_cache_index(cache, info);
  Config tiny = Config::preset("tiny");
  const auto msg = test::error_of([&] { check_cache_latents(tiny, CacheInfo::load(cache)); });
  EXPECT_NE(msg.find("aspect-ratio bucket 18x16 of the cache"), std::string::npos) << msg;
}

TEST(AspectBuckets, ALoraTrainedInBucketsLetsGenerationDrawItsShapes) {
  test::TempDir dir;
  const std::string model = test::shipped_model_dir();
  fs::create_directories(dir.file("data"));
  const std::vector<std::pair<int, int>> sizes{{160, 60}, {150, 50}, {60, 160}, {80, 80}};
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    save_png(dir.file("data/p" + std::to_string(i) + ".png"), test::gradient_image(sizes[i].first, sizes[i].second));
    test::write_text(dir.file("data/p" + std::to_string(i) + ".txt"), "a gradient\n");
  }
  auto r = test::run_cli("train-lora --model " + model + " --data " + dir.file("data") + " --out " + dir.file("lora") +
                         " --buckets --steps 2 --batch 2 --quiet");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto lora = dir.file("lora/lora.safetensors");
  const auto data = nlohmann::json::parse(safetensors::Reader(lora).metadata().at("training_data"));
  EXPECT_EQ(data["buckets"].size(), 5u);  // 32x128 … 128x32 at 64 px
  r = test::run_cli("generate --model " + model + " --prompt \"a gradient\" --width 96 --height 32 --steps 2 --seed 1 --out " +
                    dir.file("wide.png"));
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--width 96: the model was trained at 64"), std::string::npos) << r.output;
  r = test::run_cli("generate --model " + model + " --lora " + lora + " --prompt \"a gradient\" --width 96 --height 32 --steps 2 --seed 1 --out " +
                    dir.file("wide.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const Image wide = load_image(dir.file("wide.png"));
  EXPECT_EQ(wide.width, 96);
  EXPECT_EQ(wide.height, 32);
}

}  // namespace
}  // namespace luminars
