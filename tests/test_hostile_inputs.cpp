// Hostile inputs found in review, each refused with a clear error naming the file and field, or —
// inside a data set — skipped and counted while the rest of the work is kept.
#include <zlib.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "core/image.h"
#include "core/json_fields.h"
#include "model/config.h"
#include "test_support.h"
#include "text/clip_text_model.h"
#include "text/clip_tokenizer.h"
#include "vae/vae_config.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

const std::string kModel = (fs::path(LUMINARS_SOURCE_DIR) / "models" / "emoji").string();

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
  EXPECT_LT(grew, 64 * 1024) << "peak memory grew by " << grew << " kB";
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

}  // namespace
}  // namespace luminars
