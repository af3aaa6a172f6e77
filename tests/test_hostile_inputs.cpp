// Hostile inputs found in review, each refused with a clear error naming the file and field, or —
// inside a data set — skipped and counted while the rest of the work is kept.
#include <zlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/files.h"
#include "core/image.h"
#include "core/json_fields.h"
#include "core/tensor_io.h"
#include "model/config.h"
#include "pipeline/model_folder.h"
#include "sanitizer.h"
#include "test_support.h"
#include "text/clip_text_model.h"
#include "text/clip_tokenizer.h"
#include "train/latent_cache.h"
#include "vae/vae_config.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kModel = test::shipped_model_dir();

std::string nested_array(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

// A copy of the shipped model folder whose parts can be spoiled one at a time.
void copy_model(const std::string& to) { fs::copy(kModel, to, fs::copy_options::recursive); }

TEST(HostileInputs, ConfigNestedDeeplyIsAClearError) {
  test::TempDir dir;
  copy_model(dir.file("model"));
  test::write_text(dir.file("model/vae/config.json"), "{\"_class_name\": " + nested_array(100000) + "}");
  auto r = test::run_cli("vae info --vae " + dir.file("model/vae"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find(dir.file("model/vae/config.json") + ": VAE config: JSON nested deeper than 64 levels"), std::string::npos)
      << r.output;
  r = test::run_cli("generate --model " + dir.file("model") + " --prompt x --quiet --out " + dir.file("x.png"));
  EXPECT_EQ(r.exit_code, 1) << r.output;
  EXPECT_NE(r.output.find("nested deeper than 64 levels"), std::string::npos) << r.output;
  // A _class_name that is a (shallow) list is named without printing it.
  test::write_text(dir.file("model/vae/config.json"), "{\"_class_name\": [[1, 2]]}");
  r = test::run_cli("vae info --vae " + dir.file("model/vae"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("_class_name is a list, expected \"AutoencoderKL\""), std::string::npos) << r.output;
  EXPECT_NE(test::error_of([] { Config::from_json("{\"widths\": " + nested_array(1000) + "}"); }).find("nested deeper than 64"),
            std::string::npos);
  EXPECT_EQ(json_fields::brief(nlohmann::json::parse("[[1]]")), "a list");
  EXPECT_EQ(json_fields::brief(nlohmann::json(std::string(100, 'a'))).size(), 2 + 60 + std::string("…").size());
}

TEST(HostileInputs, ConfigsHaveUpperBoundsNamingTheField) {
  EXPECT_NE(test::error_of([] { Config::from_json(R"({"widths": [1099511627776, 128, 256], "depths": [1, 1, 1]})"); })
                .find("widths[0] = 1099511627776 is above the limit of 16384"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { Config::from_json(R"({"embed_dim": 1000000})"); }).find("embed_dim = 1000000 is above the limit"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { VaeConfig::from_json(R"({"block_out_channels": [64, 1099511627776], "norm_num_groups": 32})"); })
                .find("block_out_channels[1] = 1099511627776 is above the limit of 16384"),
            std::string::npos);
  EXPECT_NE(test::error_of([] { VaeConfig::from_json(R"({"layers_per_block": 100000})"); }).find("layers_per_block = 100000"),
            std::string::npos);
  EXPECT_NE(test::error_of([] {
              ClipTextConfig::from_json(R"({"vocab_size": 49408, "hidden_size": 1048576, "intermediate_size": 3072,
                 "num_hidden_layers": 12, "num_attention_heads": 8, "max_position_embeddings": 77})");
            }).find("hidden_size = 1048576 is above the limit of 16384"),
            std::string::npos);
  // The published sizes pass.
  EXPECT_EQ(test::error_of([] { Config::preset("default").validate(); }), "(no error)");
  EXPECT_EQ(test::error_of([] { VaeConfig::preset("sd3").validate(); }), "(no error)");
  EXPECT_EQ(test::error_of([] { ClipTextConfig::vit_h14().validate(); }), "(no error)");
}

TEST(HostileInputs, PrepareSkipsItemsThatAreNotUtf8AndKeepsTheRest) {
  test::TempDir dir;
  fs::create_directories(dir.file("data"));
  const Image img = test::gradient_image(64, 64);
  for (int i = 0; i < 3; ++i) {
    save_png(dir.file("data/good" + std::to_string(i) + ".png"), img);
    test::write_text(dir.file("data/good" + std::to_string(i) + ".txt"), "a red heart, noto style");
  }
  save_png(dir.file("data/latin1.png"), img);
  test::write_text(dir.file("data/latin1.txt"), "un caf\xe9 cr\xe8me");  // Latin-1, not UTF-8
  save_png(dir.file("data/bad\xff name.png"), img);                       // a file name that is not UTF-8
  test::write_text(dir.file("data/bad\xff name.txt"), "a blue heart");
  const std::string parts = " --vae " + kModel + "/vae --text-encoder " + kModel + "/text_encoder --tokenizer " + kModel + "/tokenizer";
  auto r = test::run_cli("prepare --data " + dir.file("data") + parts + " --resolution 64 --out " + dir.file("cache"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("prepared 3 images and 3 captions"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("2 skipped (file name or caption not UTF-8)"), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(dir.file("cache/cache.json")));
}

// Peak resident memory (kB) of this process since the last reset_peak().
long peak_kb() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}
bool reset_peak() { return static_cast<bool>(std::ofstream("/proc/self/clear_refs") << "5"); }

TEST(HostileInputs, AVeryLongPictureIsCroppedBeforeItIsResized) {
  Image tall;
  tall.width = 64;
  tall.height = 200000;
  tall.rgb.assign(static_cast<std::size_t>(64) * 200000 * 3, 0);
  for (std::size_t i = 0; i < tall.rgb.size(); i += 3) tall.rgb[i] = static_cast<uint8_t>(i / (64 * 3));  // red stripes
  if (!reset_peak()) GTEST_SKIP() << "/proc/self/clear_refs is not writable here";
  const long before = peak_kb();
  const Image out = resize_and_crop(tall, 256);
  const long grew = peak_kb() - before;
  EXPECT_EQ(out.width, 256);
  EXPECT_EQ(out.height, 256);
  // Resizing the whole picture first would take 256 × 800,000 × 3 bytes (614 MB) and more.
  if (!test::kAddressSanitizer) {
    EXPECT_LT(grew, 64 * 1024) << "peak memory grew by " << grew << " kB";
  }
  // The middle 64×64 of the picture, enlarged: the same as cropping it by hand and resizing.
  EXPECT_EQ(out.rgb, resize(crop(tall, 0, (200000 - 64) / 2, 64, 64), 256, 256).rgb);
}

// PNG bytes whose header claims a w×h picture (valid signature and IHDR, no pixel data).
std::string png_header(uint32_t w, uint32_t h) {
  std::string ihdr = "IHDR";
  for (uint32_t v : {w, h})
    for (int s = 24; s >= 0; s -= 8) ihdr.push_back(static_cast<char>((v >> s) & 0xff));
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  std::string png("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d", 12);
  png += ihdr;
  const uint32_t crc = static_cast<uint32_t>(crc32(0, reinterpret_cast<const Bytef*>(ihdr.data()), static_cast<uInt>(ihdr.size())));
  for (int s = 24; s >= 0; s -= 8) png.push_back(static_cast<char>((crc >> s) & 0xff));
  return png;
}

TEST(HostileInputs, HugePicturesAreRefusedFromTheirHeader) {
  test::TempDir dir;
  std::ofstream(dir.file("huge.png"), std::ios::binary) << png_header(60000, 60000);
  auto r = test::run_cli("vae roundtrip --vae " + kModel + "/vae " + dir.file("huge.png") + " " + dir.file("out.png"));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.output.find("image " + dir.file("huge.png") + " is too large: 60000x60000"), std::string::npos) << r.output;
  EXPECT_FALSE(fs::exists(dir.file("out.png")));
  EXPECT_NE(test::error_of([&] { load_image(dir.file("huge.png")); }).find("is too large"), std::string::npos);
}

TEST(HostileInputs, ALongCaptionWithoutSpacesIsTruncatedBeforeBpe) {
  const auto tok = ClipTokenizer::from_dir(kModel + "/tokenizer");
  const std::string caption(100000, 'q');
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = tok.encode(caption);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ASSERT_EQ(static_cast<int64_t>(ids.size()), tok.context_length);
  EXPECT_EQ(ids.back(), tok.eos_id);
  // The kept ids are those of the caption's start, tokenized whole.
  EXPECT_EQ(ids, tok.encode(caption.substr(0, 2000)));
  // A guard against the quadratic merge loop over 100 kB (minutes), not a benchmark.
  EXPECT_LT(seconds, 5.0);
  // Many words: tokenizing stops once the context is full.
  std::string words;
  for (int i = 0; i < 20000; ++i) words += "heart ";
  EXPECT_EQ(tok.encode(words), tok.encode(words.substr(0, 600)));
}


TEST(HostileInputs, ATruncatedPnmIsRefusedAndAWholeOneDecodes) {
  // 2x2 RGB: red, green / blue, white, with a comment in the header.
  const std::string header = "P6 2 # width\n2 255\n";
  const std::string pixels("\xff\x00\x00\x00\xff\x00\x00\x00\xff\xff\xff\xff", 12);
  const Image whole = decode_image(header + pixels, "whole.ppm");
  ASSERT_EQ(whole.width, 2);
  ASSERT_EQ(whole.height, 2);
  EXPECT_EQ(std::vector<uint8_t>(whole.rgb.begin(), whole.rgb.end()),
            std::vector<uint8_t>(pixels.begin(), pixels.end()));
  EXPECT_EQ(test::error_of([&] { decode_image(header + pixels.substr(0, 7), "short.ppm"); }),
            "cannot decode image short.ppm: its pixel data is truncated (7 of 12 bytes)");
  EXPECT_EQ(test::error_of([] { decode_image("P5\n3 3\n255\n\x01\x02", "grey.pgm"); }),
            "cannot decode image grey.pgm: its pixel data is truncated (2 of 9 bytes)");
}

TEST(HostileInputs, ModelFolderValuesOutOfRangeNameTheField) {
  test::TempDir dir;
  copy_model(dir.file("model"));
  const std::string file = dir.file("model/luminars.json");
  const std::string original = read_file(file);
  auto with = [&](const std::string& from, const std::string& to) {
    std::string text = original;
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    test::write_text(file, text.replace(at, from.size(), to));
    return test::error_of([&] { ModelFolder::load(dir.file("model")); });
  };
  EXPECT_EQ(with("\"resolution\": 64", "\"resolution\": -64"),
            file + ": field 'resolution' must be between 8 and 16384 pixels");
  EXPECT_EQ(with("\"steps\": 12", "\"steps\": 0"), file + ": field 'sampler.steps' must be between 1 and 1000");
  EXPECT_EQ(with("\"cfg_scale\": 4.0", "\"cfg_scale\": -1"), file + ": field 'sampler.cfg_scale' must be between 0 and 100");
  EXPECT_EQ(with("\"shift\": 1.0", "\"shift\": 0"), file + ": field 'sampler.shift' must be above 0 and at most 100");
  test::write_text(file, original);
  EXPECT_EQ(test::error_of([&] { ModelFolder::load(dir.file("model")); }), "(no error)");
}

TEST(HostileInputs, AHugeVocabularyIdIsRefusedBeforeItsTableIsMade) {
  test::TempDir dir;
  fs::copy(kModel + "/tokenizer", dir.file("tok"), fs::copy_options::recursive);
  test::write_text(dir.file("tok/vocab.json"), R"({"a</w>": 0, "b</w>": 16000000})");
  EXPECT_EQ(test::error_of([&] { ClipTokenizer::from_dir(dir.file("tok")); }),
            dir.file("tok/vocab.json") + ": id of token 'b</w>' is not an integer in [0, 65538) (the number of entries plus 65536)");
  test::write_text(dir.file("tok/vocab.json"), "{\"a</w>\": " + nested_array(100000) + "}");
  EXPECT_EQ(test::error_of([&] { ClipTokenizer::from_dir(dir.file("tok")); }),
            dir.file("tok/vocab.json") + ": JSON nested deeper than 64 levels");
}

TEST(HostileInputs, CacheIndexAndShardMetadataErrorsNameTheFile) {
  test::TempDir dir;
  EXPECT_EQ(test::error_of([] { CacheInfo::from_json(nested_array(100000), "cache.json"); }),
            "cache.json: JSON nested deeper than 64 levels");
  EXPECT_NE(test::error_of([] { CacheInfo::from_json(R"({"resolution": "big"})", "cache.json"); })
                .rfind("cache.json: invalid cache index: ", 0),
            std::string::npos);
  // A one-image cache whose shard's 'paths' metadata is a list of numbers.
  CacheInfo info;
  info.resolution = 16;
  info.latent_channels = 4;
  info.latent_size = 2;
  info.text_dim = 8;
  info.context_length = 3;
  info.shards = {shard_name(0)};
  info.items = info.captions = 1;
  const std::string cache = dir.file("cache");
  fs::create_directories(cache);
  const std::string shard = (fs::path(cache) / shard_name(0)).string();
  auto write_shard = [&](const std::string& paths) {
    save_tensors(shard,
                 {{"mean", torch::zeros({1, 4, 2, 2})}, {"std", torch::ones({1, 4, 2, 2})},
                  {"ctx", torch::zeros({1, 3, 8}, torch::kFloat16)}, {"pooled", torch::zeros({1, 8}, torch::kFloat16)},
                  {"caption_item", torch::zeros({1}, torch::kInt64)}},
                 {{"paths", paths}});
  };
  write_shard("[1, 2]");
  write_cache_prompts(dir.file("cache/empty.safetensors"), torch::zeros({1, 3, 8}), torch::zeros({1, 8}), {""});
  write_cache_index(cache, info);
  EXPECT_EQ(test::error_of([&] { LatentCache::load(cache); }), shard + ": metadata 'paths' must be a list of strings");
  write_shard(nested_array(100));
  EXPECT_EQ(test::error_of([&] { LatentCache::load(cache); }), shard + ": metadata 'paths': JSON nested deeper than 64 levels");
  write_shard("[\"a.png\"]");
  const LatentCache loaded = LatentCache::load(cache);
  ASSERT_EQ(loaded.paths.size(), 1u);
  EXPECT_EQ(loaded.paths[0], "a.png");
}

}  // namespace
}  // namespace luminars
