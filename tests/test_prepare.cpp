// `prepare` keeps what training must know and reuses only shards made from the same inputs: the
// penultimate-layer choice reaches the cache and the exported model folder, and a changed caption,
// image, tokenizer or option remakes the shards it touches.
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "core/image.h"
#include "pipeline/model_folder.h"
#include "pipeline/prepare.h"
#include "test_support.h"
#include "tiny_prepare.h"
#include "train/latent_cache.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

void write_folder(const std::string& dir, int n) {
  fs::create_directories(dir);
  for (int i = 0; i < n; ++i) {
    save_png(dir + "/img" + std::to_string(i) + ".png", test::gradient_image(24 + i, 24));
    test::write_text(dir + "/img" + std::to_string(i) + ".txt", "picture number " + std::to_string(i) + "\n");
  }
}

PrepareOptions options(const test::TempDir& dir) {
  PrepareOptions o = test::tiny_prepare_options(dir);
  o.tokenizer = dir.file("tokenizer");
  return o;
}

TEST(Prepare, ShardsAreKeyedByEverythingTheyAreMadeFrom) {
  LUMINARS_REQUIRE_FIXTURES();
  test::TempDir dir;
  write_folder(dir.file("data"), 6);
  fs::copy(test::fixtures_dir() + "/clip_tokenizer", dir.file("tokenizer"));
  auto o = options(dir);
  auto s = prepare(o);
  EXPECT_EQ(s.images, 6);
  EXPECT_EQ(s.shards_reused, 0);
  const auto key = CacheInfo::load(o.out_dir).key;
  EXPECT_EQ(key.size(), 16u);

  // The same inputs: every shard is reused, the index is the same.
  EXPECT_EQ(prepare(o).shards_reused, 3);
  EXPECT_EQ(CacheInfo::load(o.out_dir).key, key);

  // A changed caption remakes only its shard.
  test::write_text(dir.file("data/img3.txt"), "a different caption\n");
  EXPECT_EQ(prepare(o).shards_reused, 2);

  // A rewritten image (other size) remakes only its shard.
  save_png(dir.file("data/img4.png"), test::gradient_image(40, 30));
  EXPECT_EQ(prepare(o).shards_reused, 2);

  // Another caption column, tokenizer file or option remakes everything, and the index changes.
  test::write_text(dir.file("tokenizer/merges.txt"), read_file(dir.file("tokenizer/merges.txt")) + "\n");
  EXPECT_EQ(prepare(o).shards_reused, 0);
  const auto key2 = CacheInfo::load(o.out_dir).key;
  EXPECT_NE(key2, key);
  o.flip = true;
  EXPECT_EQ(prepare(o).shards_reused, 0);
  EXPECT_NE(CacheInfo::load(o.out_dir).key, key2);

  // Fewer images than before: the earlier run's extra shard does not stay behind.
  fs::remove(dir.file("data/img5.png"));
  fs::remove(dir.file("data/img4.png"));
  prepare(o);
  EXPECT_EQ(CacheInfo::load(o.out_dir).shards.size(), 2u);
  EXPECT_FALSE(fs::exists(dir.file("cache/shard-00002.safetensors")));
}

TEST(Prepare, PenultimateReachesTheCacheAndTheModelFolder) {
  LUMINARS_REQUIRE_FIXTURES();
  test::TempDir dir;
  write_folder(dir.file("data"), 3);
  fs::copy(test::fixtures_dir() + "/clip_tokenizer", dir.file("tokenizer"));
  auto o = options(dir);
  o.penultimate = true;
  prepare(o);
  EXPECT_TRUE(CacheInfo::load(o.out_dir).penultimate);
  auto r = test::run_cli("train --cache " + o.out_dir + " --out " + dir.file("run") +
                         " --preset tiny --steps 1 --batch 2 --warmup 0 --sample-every 0 --validate-every 0 --device cpu");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(ModelFolder::load(dir.file("run/model")).penultimate);
  o.penultimate = false;
  EXPECT_EQ(prepare(o).shards_reused, 0);  // other embeddings: nothing is reused
  EXPECT_FALSE(CacheInfo::load(o.out_dir).penultimate);
}

}  // namespace
}  // namespace luminars
