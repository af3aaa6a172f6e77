// Training datasets: both caption layouts, list captions, the image loader with its skips
// (alpha, JPEG, BMP, truncated, garbage, tiny), caption choice and the train/validation split.
#include <stb_image_write.h>

#include <filesystem>
#include <map>
#include <set>

#include "core/error.h"
#include "core/image.h"
#include "test_support.h"
#include "data/dataset.h"

namespace luminars {
namespace {

namespace fs = std::filesystem;

using test::gradient_image;

void write_jpg(const std::string& path, const Image& img) {
  ASSERT_TRUE(stbi_write_jpg(path.c_str(), img.width, img.height, 3, img.rgb.data(), 95));
}

void write_bmp(const std::string& path, const Image& img) {
  ASSERT_TRUE(stbi_write_bmp(path.c_str(), img.width, img.height, 3, img.rgb.data()));
}

const uint8_t* px(const Image& img, int x, int y) { return &img.rgb[(static_cast<std::size_t>(y) * img.width + x) * 3]; }

std::string rel(const test::TempDir& dir, const std::string& path) {
  return fs::path(path).lexically_relative(dir.path).generic_string();
}

std::vector<std::string> rel_paths(const test::TempDir& dir, const Dataset& d) {
  std::vector<std::string> out;
  for (const auto& i : d.items) out.push_back(rel(dir, i.path));
  return out;
}

TEST(Dataset, SidecarCaptionsRecursiveCaseInsensitive) {
  test::TempDir dir;
  fs::create_directories(dir.path / "sub");
  fs::create_directories(dir.path / ".cache");
  save_png(dir.file("a.png"), gradient_image(16, 16));
  test::write_text(dir.file("a.txt"), "a red square\n\n  a crimson block  \r\n");
  write_jpg(dir.file("sub/B.JPG"), gradient_image(16, 16));
  test::write_text(dir.file("sub/B.txt"), "\xEF\xBB\xBF" "a blue thing");
  write_bmp(dir.file("c.bmp"), gradient_image(16, 16));  // no caption
  write_jpg(dir.file("d.jpeg"), gradient_image(16, 16));
  test::write_text(dir.file("d.txt"), "  \n");  // empty caption file
  test::write_text(dir.file("notes.md"), "not an image");
  save_png(dir.file(".cache/x.png"), gradient_image(16, 16));  // hidden: ignored
  test::write_text(dir.file(".cache/x.txt"), "hidden");

  Dataset d = Dataset::scan(dir.path.string());
  EXPECT_EQ(d.layout, DatasetLayout::Sidecar);
  ASSERT_EQ(rel_paths(dir, d), (std::vector<std::string>{"a.png", "c.bmp", "d.jpeg", "sub/B.JPG"}));
  EXPECT_EQ(d.items[0].captions, (std::vector<std::string>{"a red square", "a crimson block"}));
  EXPECT_TRUE(d.items[1].captions.empty());
  EXPECT_TRUE(d.items[2].captions.empty());
  EXPECT_EQ(d.items[3].captions, (std::vector<std::string>{"a blue thing"}));
  EXPECT_EQ(d.uncaptioned, 2u);
  const std::string s = d.summary();
  EXPECT_NE(s.find("4 images (.txt captions), 3 captions, 2 without caption"), std::string::npos) << s;
}

TEST(Dataset, ImageFolderMetadataWithListCaptions) {
  test::TempDir dir;
  fs::create_directories(dir.path / "sub");
  for (const char* f : {"x.png", "y.png", "sub/z.png", "w.png"}) save_png(dir.file(f), gradient_image(8, 8));
  test::write_text(dir.file("x.txt"), "sidecars are ignored when metadata.jsonl exists");
  test::write_text(dir.file("metadata.jsonl"),
                   "{\"file_name\": \"y.png\", \"text\": [\"two\", \"deux\", \"  \"], \"extra\": 1}\n"
                   "\n"
                   "{\"file_name\": \"x.png\", \"text\": \" one \"}\n"
                   "{\"file_name\": \"sub/z.png\", \"text\": null}\n"
                   "{\"file_name\": \"gone.png\", \"text\": \"missing file\"}\n"
                   "{\"file_name\": \"x.png\", \"text\": \"uno\"}");  // no final newline; merges with x
  Dataset d = Dataset::scan(dir.path.string());
  EXPECT_EQ(d.layout, DatasetLayout::ImageFolder);
  ASSERT_EQ(rel_paths(dir, d), (std::vector<std::string>{"sub/z.png", "x.png", "y.png"}));
  EXPECT_TRUE(d.items[0].captions.empty());
  EXPECT_EQ(d.items[1].captions, (std::vector<std::string>{"one", "uno"}));
  EXPECT_EQ(d.items[2].captions, (std::vector<std::string>{"two", "deux"}));
  EXPECT_EQ(d.uncaptioned, 1u);
  EXPECT_EQ(d.missing, 1u);
  EXPECT_EQ(d.unlisted, 1u);  // w.png
  const std::string s = d.summary();
  EXPECT_NE(s.find("3 images (metadata.jsonl), 4 captions, 1 without caption"), std::string::npos) << s;
  EXPECT_NE(s.find("1 listed files missing, 1 images not in metadata.jsonl ignored"), std::string::npos) << s;
}

TEST(Dataset, ImageFolderCustomColumnAndNestedMetadata) {
  test::TempDir dir;
  fs::create_directories(dir.path / "train" / "part2");
  save_png(dir.file("train/a.png"), gradient_image(8, 8));
  save_png(dir.file("train/part2/b.png"), gradient_image(8, 8));
  test::write_text(dir.file("train/metadata.jsonl"), "{\"file_name\": \"a.png\", \"caption\": \"first\"}\n");
  test::write_text(dir.file("train/part2/metadata.jsonl"), "{\"file_name\": \"b.png\", \"caption\": [\"second\"]}\n");
  DatasetOptions o;
  o.caption_column = "caption";
  Dataset d = Dataset::scan(dir.path.string(), o);
  ASSERT_EQ(rel_paths(dir, d), (std::vector<std::string>{"train/a.png", "train/part2/b.png"}));
  EXPECT_EQ(d.items[0].captions, (std::vector<std::string>{"first"}));
  EXPECT_EQ(d.items[1].captions, (std::vector<std::string>{"second"}));
}

using test::error_of;

TEST(Dataset, ScanErrorsNameTheProblem) {
  test::TempDir dir;
  EXPECT_NE(error_of([&] { Dataset::scan(dir.file("nope")); }).find("dataset folder not found: "), std::string::npos);
  test::write_text(dir.file("file"), "x");
  EXPECT_NE(error_of([&] { Dataset::scan(dir.file("file")); }).find("is not a folder"), std::string::npos);
  fs::create_directories(dir.path / "empty");
  EXPECT_NE(error_of([&] { Dataset::scan(dir.file("empty")); }).find("no images"), std::string::npos);
  fs::create_directories(dir.path / "bare");
  save_png(dir.file("bare/a.png"), gradient_image(8, 8));
  save_png(dir.file("bare/b.png"), gradient_image(8, 8));
  const std::string bare = error_of([&] { Dataset::scan(dir.file("bare")); });
  EXPECT_NE(bare.find("has 2 images but no captions"), std::string::npos) << bare;
  EXPECT_NE(bare.find("metadata.jsonl"), std::string::npos) << bare;
}

TEST(Dataset, MetadataErrorsNameFileAndLine) {
  test::TempDir dir;
  save_png(dir.file("a.png"), gradient_image(8, 8));
  auto scan_with = [&](const std::string& metadata) {
    test::write_text(dir.file("metadata.jsonl"), metadata);
    return error_of([&] { Dataset::scan(dir.path.string()); });
  };
  const std::string ok = "{\"file_name\": \"a.png\", \"text\": \"fine\"}\n";
  std::string e = scan_with(ok + "{\"file_name\": \"a.png\", \"text\": \n");
  EXPECT_NE(e.find("metadata.jsonl line 2: invalid JSON"), std::string::npos) << e;
  e = scan_with(ok + "[1, 2]\n");
  EXPECT_NE(e.find("line 2: expected a JSON object, got array"), std::string::npos) << e;
  e = scan_with("{\"text\": \"no file\"}\n");
  EXPECT_NE(e.find("line 1: missing \"file_name\""), std::string::npos) << e;
  e = scan_with(ok + "{\"file_name\": \"a.png\", \"text\": 3}\n");
  EXPECT_NE(e.find("line 2: column \"text\" must be a string or a list of strings, got number"), std::string::npos) << e;
  e = scan_with("{\"file_name\": \"a.png\", \"text\": [\"ok\", 4]}\n");
  EXPECT_NE(e.find("line 1: column \"text\" holds a list with a number"), std::string::npos) << e;
  e = scan_with("{\"file_name\": \"a.png\", \"caption\": \"x\"}\n");
  EXPECT_NE(e.find("no row has the caption column \"text\" (columns: caption, file_name)"), std::string::npos) << e;
  e = scan_with("{\"file_name\": \"gone.png\", \"text\": \"x\"}\n");
  EXPECT_NE(e.find("none of the 1 files listed in metadata.jsonl exists"), std::string::npos) << e;
  e = scan_with("\n\n");
  EXPECT_NE(e.find("has no rows"), std::string::npos) << e;
}

TEST(Dataset, TransparentPixelsBecomeWhite) {
  test::TempDir dir;
  // 64×48 RGBA: left half fully transparent red, right half opaque blue.
  const int w = 64, h = 48;
  std::vector<uint8_t> rgba(static_cast<std::size_t>(w) * h * 4);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* p = &rgba[(static_cast<std::size_t>(y) * w + x) * 4];
      const bool left = x < w / 2;
      p[0] = left ? 255 : 0;
      p[1] = 0;
      p[2] = left ? 0 : 255;
      p[3] = left ? 0 : 255;
    }
  ASSERT_TRUE(stbi_write_png(dir.file("rgba.png").c_str(), w, h, 4, rgba.data(), w * 4));
  std::mt19937_64 rng(1);
  SkipSummary skips;
  auto img = load_training_image(dir.file("rgba.png"), 32, /*random_crop=*/false, /*flip=*/false, rng, &skips);
  ASSERT_TRUE(img.has_value());
  EXPECT_EQ(img->width, 32);
  EXPECT_EQ(img->height, 32);
  // Resized to 43×32, centre crop from x = 6: the transparent half ends near x = 15.
  for (int y : {0, 16, 31}) {
    EXPECT_EQ(px(*img, 2, y)[0], 255);
    EXPECT_EQ(px(*img, 2, y)[1], 255);
    EXPECT_EQ(px(*img, 2, y)[2], 255);
    EXPECT_LE(px(*img, 29, y)[0], 2);
    EXPECT_GE(px(*img, 29, y)[2], 253);
  }
  EXPECT_EQ(skips.loaded(), 1u);
  EXPECT_EQ(skips.summary(), "");
}

TEST(Dataset, LoadsJpegAndBmpAndFlips) {
  test::TempDir dir;
  write_jpg(dir.file("g.jpg"), gradient_image(80, 60));
  write_bmp(dir.file("g.bmp"), gradient_image(60, 60));
  std::mt19937_64 rng(3);
  auto jpg = load_training_image(dir.file("g.jpg"), 30, false, false, rng);
  ASSERT_TRUE(jpg.has_value());
  EXPECT_EQ(jpg->width, 30);
  EXPECT_EQ(jpg->height, 30);
  EXPECT_LT(px(*jpg, 1, 15)[0], px(*jpg, 28, 15)[0]);  // red rises to the right
  auto bmp = load_training_image(dir.file("g.bmp"), 60, false, false, rng);
  ASSERT_TRUE(bmp.has_value());
  EXPECT_EQ(bmp->rgb, gradient_image(60, 60).rgb);  // BMP is lossless and needs no resize
  // With flip on, about half the draws mirror the image; with it off, none.
  int flipped = 0;
  for (uint64_t seed = 0; seed < 40; ++seed) {
    std::mt19937_64 r(seed);
    auto img = load_training_image(dir.file("g.bmp"), 60, false, true, r);
    ASSERT_TRUE(img.has_value());
    if (img->rgb == flip_horizontal(*bmp).rgb) ++flipped;
    else EXPECT_EQ(img->rgb, bmp->rgb);
  }
  EXPECT_GT(flipped, 8);
  EXPECT_LT(flipped, 32);
}

TEST(Dataset, RandomCropIsSeededAndDrawsThreeNumbers) {
  test::TempDir dir;
  save_png(dir.file("wide.png"), gradient_image(96, 32));
  std::vector<std::vector<uint8_t>> crops;
  for (uint64_t seed = 0; seed < 8; ++seed) {
    std::mt19937_64 a(seed), b(seed), c(seed);
    auto x = load_training_image(dir.file("wide.png"), 32, true, true, a);
    auto y = load_training_image(dir.file("wide.png"), 32, true, true, b);
    ASSERT_TRUE(x && y);
    EXPECT_EQ(x->rgb, y->rgb);
    if (std::find(crops.begin(), crops.end(), x->rgb) == crops.end()) crops.push_back(x->rgb);
    c.discard(3);
    EXPECT_EQ(a(), c());
  }
  EXPECT_GE(crops.size(), 4u);
  // A skipped file draws the same three numbers.
  std::mt19937_64 a(9), c(9);
  EXPECT_FALSE(load_training_image(dir.file("absent.png"), 32, true, true, a).has_value());
  c.discard(3);
  EXPECT_EQ(a(), c());
}

TEST(Dataset, BadFilesAreSkippedAndCounted) {
  test::TempDir dir;
  // A sidecar dataset holding good and bad images.
  save_png(dir.file("good.png"), gradient_image(64, 64));
  Image noise = gradient_image(64, 64);
  for (std::size_t i = 0; i < noise.rgb.size(); ++i) noise.rgb[i] = static_cast<uint8_t>(i * 2654435761u >> 7);
  save_png(dir.file("truncated.png"), noise);
  fs::resize_file(dir.file("truncated.png"), fs::file_size(dir.file("truncated.png")) / 2);
  test::write_text(dir.file("garbage.png"), "this is not a PNG file at all");
  save_png(dir.file("tiny.png"), gradient_image(8, 8));
  for (const char* stem : {"good", "truncated", "garbage", "tiny"}) test::write_text(dir.file(std::string(stem) + ".txt"), stem);

  Dataset d = Dataset::scan(dir.path.string());
  ASSERT_EQ(d.size(), 4u);
  SkipSummary skips;
  std::mt19937_64 rng(0);
  std::vector<std::string> kept;
  for (const auto& item : d.items)
    if (load_training_image(item.path, 64, false, false, rng, &skips)) kept.push_back(rel(dir, item.path));
  EXPECT_EQ(kept, (std::vector<std::string>{"good.png"}));
  EXPECT_EQ(skips.count(SkipReason::Unreadable), 2u);
  EXPECT_EQ(skips.count(SkipReason::TooSmall), 1u);
  EXPECT_EQ(skips.count(SkipReason::Missing), 0u);
  EXPECT_EQ(skips.skipped(), 3u);
  EXPECT_EQ(skips.loaded(), 1u);
  const std::string s = skips.summary();
  EXPECT_EQ(s.rfind("Skipped 3 of 4 images: 2 unreadable (", 0), 0u) << s;
  EXPECT_NE(s.find("garbage.png"), std::string::npos) << s;
  EXPECT_NE(s.find("truncated.png"), std::string::npos) << s;
  EXPECT_NE(s.find("1 too small (" + dir.file("tiny.png") + ": 8x8, shorter side under 16)"), std::string::npos) << s;
  EXPECT_NE(s.find("left out of training"), std::string::npos) << s;

  // The size limit is an option; missing files are their own reason; merge adds counts.
  TrainingImageOptions lenient;
  lenient.min_side_fraction = 0.1;
  SkipSummary more;
  auto tiny = load_training_image(dir.file("tiny.png"), 64, false, false, rng, &more, lenient);
  ASSERT_TRUE(tiny.has_value());
  EXPECT_EQ(tiny->width, 64);
  EXPECT_FALSE(load_training_image(dir.file("gone.png"), 64, false, false, rng, &more).has_value());
  EXPECT_EQ(more.count(SkipReason::Missing), 1u);
  EXPECT_EQ(more.last_detail(), dir.file("gone.png") + ": not found");
  TrainingImageOptions strict;
  strict.max_pixels = 1000;
  EXPECT_FALSE(load_training_image(dir.file("good.png"), 64, false, false, rng, &more, strict).has_value());
  EXPECT_EQ(more.count(SkipReason::TooLarge), 1u);
  skips.merge(more);
  EXPECT_EQ(skips.skipped(), 5u);
  EXPECT_EQ(skips.loaded(), 2u);
  EXPECT_THROW(load_training_image(dir.file("good.png"), 0, false, false, rng), Error);
}

TEST(Dataset, CaptionChoiceIsSeededAndUniform) {
  DatasetItem item{"a.png", {"one", "two", "three"}};
  std::mt19937_64 a(7), b(7);
  std::map<std::string, int> seen;
  for (int i = 0; i < 300; ++i) {
    const std::string c = choose_caption(item, a);
    EXPECT_EQ(c, choose_caption(item, b));
    ++seen[c];
  }
  ASSERT_EQ(seen.size(), 3u);
  for (const auto& [c, n] : seen) EXPECT_GT(n, 60) << c;
  // No caption: the empty prompt, and still one draw.
  std::mt19937_64 r(5), s(5);
  EXPECT_EQ(choose_caption(DatasetItem{"b.png", {}}, r), "");
  s.discard(1);
  EXPECT_EQ(r(), s());
}

Dataset numbered(int n) {
  Dataset d;
  for (int i = 0; i < n; ++i) d.items.push_back({"img" + std::to_string(100 + i) + ".png", {"c"}});
  return d;
}

std::vector<std::string> paths(const Dataset& d) {
  std::vector<std::string> out;
  for (const auto& i : d.items) out.push_back(i.path);
  return out;
}

TEST(Dataset, SplitIsDeterministicDisjointAndSorted) {
  const Dataset d = numbered(10);
  auto s = d.split(0.2, 42);
  EXPECT_EQ(s.validation.size(), 2u);
  EXPECT_EQ(s.train.size(), 8u);
  auto t = paths(s.train), v = paths(s.validation);
  EXPECT_TRUE(std::is_sorted(t.begin(), t.end()));
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));
  std::set<std::string> all(t.begin(), t.end());
  all.insert(v.begin(), v.end());
  EXPECT_EQ(all.size(), 10u);
  EXPECT_EQ(paths(d.split(0.2, 42).validation), v);
  bool differs = false;
  for (uint64_t seed = 0; seed < 10 && !differs; ++seed) differs = paths(d.split(0.2, seed).validation) != v;
  EXPECT_TRUE(differs);
}

TEST(Dataset, SplitSizes) {
  EXPECT_EQ(numbered(10).split(0.01, 1).validation.size(), 1u);  // rounds to 0, at least 1
  EXPECT_EQ(numbered(2).split(0.9, 1).validation.size(), 1u);    // at most size - 1
  EXPECT_EQ(numbered(1).split(0.5, 1).validation.size(), 0u);    // one item stays for training
  EXPECT_EQ(numbered(10).split(0.0, 1).validation.size(), 0u);
  EXPECT_EQ(numbered(1000).split(0.05, 1).validation.size(), 50u);
  EXPECT_THROW(numbered(10).split(1.0, 1), Error);
  EXPECT_THROW(numbered(10).split(-0.1, 1), Error);
}

}  // namespace
}  // namespace luminars
