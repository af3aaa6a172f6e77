// End to end, as a user runs it: captioned PNGs -> `luminars prepare` with the fixture VAE and
// text encoder -> `luminars train --stage all` -> `luminars generate` -> a PNG. Once on the CPU,
// and once on CUDA (bf16 autocast training) where a GPU is present.
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/image.h"
#include "core/safetensors.h"
#include "test_support.h"
#include "model/checkpoint.h"
#include "train/heldout_loss.h"
#include "train/latent_cache.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

// Simple pictures: a coloured disc or square on a tinted background, 48×40 (cropped to 32²).
void write_pictures(const std::string& dir, int n) {
  fs::create_directories(dir);
  const char* colours[] = {"red", "green", "blue", "yellow"};
  for (int i = 0; i < n; ++i) {
    Image img;
    img.width = 48;
    img.height = 40;
    img.rgb.resize(48 * 40 * 3);
    const int c = i % 4;
    const bool disc = i % 2 == 0;
    for (int y = 0; y < 40; ++y)
      for (int x = 0; x < 48; ++x) {
        const bool in = disc ? (x - 24) * (x - 24) + (y - 20) * (y - 20) < 120 : std::abs(x - 24) < 10 && std::abs(y - 20) < 10;
        uint8_t* p = &img.rgb[(static_cast<std::size_t>(y) * 48 + x) * 3];
        p[0] = in ? (c == 0 || c == 3 ? 230 : 20) : 240;
        p[1] = in ? (c == 1 || c == 3 ? 200 : 30) : 235;
        p[2] = in ? (c == 2 ? 220 : 40) : 225;
      }
    const std::string stem = dir + "/pic" + std::to_string(i);
    save_png(stem + ".png", img);
    test::write_text(stem + ".txt", std::string("a ") + colours[c] + (disc ? " disc" : " square") + "\nsimple " +
                                        (disc ? "circle" : "box") + " drawing\n");
  }
  test::write_text(dir + "/broken.png", "this is not a png");
  test::write_text(dir + "/broken.txt", "a broken file");
}

class EndToEnd : public ::testing::TestWithParam<std::string> {};

TEST_P(EndToEnd, PrepareTrainGenerate) {
  LUMINARS_REQUIRE_FIXTURES();
  const std::string device = GetParam();
  if (device == "cuda" && !torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const std::string fx = test::fixtures_dir();
  const std::string vae = fx + "/vae_tiny_16ch", te = fx + "/clip_text_tiny", tok = fx + "/clip_tokenizer";
  test::TempDir dir;
  write_pictures(dir.file("data"), 6);

  // 1. Prepare: 6 pictures + 1 unreadable file, shards of 2.
  const std::string prepare = "prepare --data " + dir.file("data") + " --vae " + vae + " --text-encoder " + te +
                              " --tokenizer " + tok + " --resolution 32 --shard-size 2 --device " + device + " --out " + dir.file("cache");
  auto r = test::run_cli(prepare);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("prepared 6 images and 12 captions in 4 shards (0 reused"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("1 unreadable"), std::string::npos) << r.output;
  {
    safetensors::Reader shard(dir.file("cache/shard-00001.safetensors"));
    EXPECT_EQ(shard.at("mean").shape, (std::vector<int64_t>{2, 16, 16, 16}));
    EXPECT_EQ(shard.at("ctx").shape, (std::vector<int64_t>{4, 77, 32}));
  }

  // A prepare killed before it finished (index and one shard gone) resumes with the other shards.
  fs::remove(dir.file("cache/cache.json"));
  fs::remove(dir.file("cache/shard-00002.safetensors"));
  r = test::run_cli(prepare);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("in 4 shards (3 reused"), std::string::npos) << r.output;

  // 2. Train every stage a few steps (the tiny preset; text and latent sizes come from the cache).
  r = test::run_cli("train --cache " + dir.file("cache") + " --out " + dir.file("run") +
                    " --preset tiny --stage all --steps 3 --batch 2 --warmup 1 --checkpoint-every 2 --validate-every 3"
                    " --sample-every 9 --val-fraction 0.2 --device " + device);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("trained 9 steps"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir.file("run/model/luminars.json")));
  EXPECT_TRUE(fs::exists(dir.file("run/model/denoiser/model.safetensors")));
  EXPECT_TRUE(fs::exists(dir.file("run/checkpoints/step-0000009/optimizer.safetensors")));
  EXPECT_TRUE(fs::exists(dir.file("run/loss.png")));
  auto grid = load_image(dir.file("run/samples/step-0000009.png"));
  EXPECT_EQ(grid.width, 2 * 32 + 2);  // 4 sample prompts: a 2×2 grid of 32² images

  // Held-out loss of the trained model on the cache: the CLI and the library agree; T matters.
  r = test::run_cli("evaluate --model " + dir.file("run/model") + " --cache " + dir.file("cache") + " --batch 4 --json --device " + device);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  {
    const auto j = nlohmann::json::parse(r.output.substr(r.output.find('{')));
    EXPECT_EQ(j.at("images").get<int>(), 6);
    const auto dev = torch::Device(device);
    auto model = load_denoiser(dir.file("run/model/denoiser/model.safetensors"), dev);
    model->eval();
    const auto cache = LatentCache::load(dir.file("cache"));
    const double want = heldout_flow_loss(model, cache, {}, 4, dev);
    EXPECT_GT(want, 0.1);
    EXPECT_NEAR(j.at("heldout_loss").get<double>(), want, 1e-4 * want);
    EXPECT_NE(heldout_flow_loss(model, cache, {}, 4, dev, 1), want);
    r = test::run_cli("evaluate --model " + dir.file("run/model") + " --cache " + dir.file("nocache"));
    EXPECT_EQ(r.exit_code, 1);
    EXPECT_NE(r.output.find("no training cache at"), std::string::npos) << r.output;
  }

  // 3. Generate with the trained model folder: one image, then a batch as a grid.
  r = test::run_cli("generate --model " + dir.file("run/model") + " --prompt 'a red disc' --steps 4 --seed 1 --quiet --device " + device + " --out " +
                    dir.file("out/one.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto one = load_image(dir.file("out/one.png"));
  EXPECT_EQ(one.width, 32);
  EXPECT_EQ(one.height, 32);
  r = test::run_cli("generate --model " + dir.file("run/model") +
                    " --prompt 'a blue square' --negative 'red' --sampler heun --cfg 3 --batch 4 --size 64 --any-size --quiet --out " +
                    dir.file("out/grid.png"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto g4 = load_image(dir.file("out/grid.png"));
  EXPECT_EQ(g4.width, 2 * 64 + 2);
  EXPECT_EQ(g4.height, 2 * 64 + 2);
  // VAE decoding in tiles: the same size of picture, near the whole decode (this tiny VAE's
  // GroupNorms see each tile alone, so not equal).
  for (const char* tile : {"0", "32"}) {
    r = test::run_cli("generate --model " + dir.file("run/model") + " --prompt 'a red disc' --size 64 --any-size --seed 2 --quiet --vae-tile " +
                      tile + " --out " + dir.file(std::string("out/tile-") + tile + ".png"));
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  auto whole = load_image(dir.file("out/tile-0.png")), tiled = load_image(dir.file("out/tile-32.png"));
  ASSERT_EQ(tiled.width, 64);
  ASSERT_EQ(tiled.rgb.size(), whole.rgb.size());
  double mad = 0;
  for (std::size_t i = 0; i < whole.rgb.size(); ++i) mad += std::abs(int(whole.rgb[i]) - int(tiled.rgb[i]));
  EXPECT_LT(mad / static_cast<double>(whole.rgb.size()), 40.0);
  r = test::run_cli("generate --model " + dir.file("run/model") + " --prompt x --vae-tile 4 --quiet --out " + dir.file("x.png"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("VAE tile of 4 pixels"), std::string::npos) << r.output;

  // Bad input: clear one-line errors.
  r = test::run_cli("generate --model " + dir.file("nope") + " --prompt x --out " + dir.file("x.png"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("model folder not found: " + dir.file("nope")), std::string::npos) << r.output;
  r = test::run_cli("generate --model " + dir.file("run/model") + " --prompt x --size 34 --quiet --out " + dir.file("x.png"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--size 34: must be a multiple of 4 from 4 to 4096; nearest: 32 or 36"), std::string::npos) << r.output;
  // The model was trained at 32: other sizes need --any-size.
  r = test::run_cli("generate --model " + dir.file("run/model") + " --prompt x --size 64 --quiet --out " + dir.file("x.png"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("--size 64: the model was trained at 32"), std::string::npos) << r.output;
  r = test::run_cli("train --cache " + dir.file("nocache") + " --out " + dir.file("run2") + " --device cpu");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("no training cache at"), std::string::npos) << r.output;
}

INSTANTIATE_TEST_SUITE_P(Device, EndToEnd, ::testing::Values("cpu", "cuda"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace luminars
