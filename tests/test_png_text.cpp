// Images in memory and PNG text chunks: exact pixel round trips, tEXt/iTXt round trips, alpha on
// white, and clear errors (never out-of-bounds reads) on garbage, truncated or oversized input.
#include <gtest/gtest.h>
#include <stb_image_write.h>
#include <unistd.h>
#include <zlib.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/files.h"
#include "core/image.h"
#include "test_support.h"

namespace luminars {
namespace {

constexpr std::size_t kIhdrEnd = 33;  // signature (8) + IHDR chunk (4 + 4 + 13 + 4)

// A w×h picture whose every byte differs from its neighbours.
Image pattern(int w, int h) {
  Image img;
  img.width = w;
  img.height = h;
  for (int i = 0; i < w * h * 3; ++i) img.rgb.push_back(static_cast<uint8_t>((i * 37 + i / 3) % 256));
  return img;
}

using test::error_of;

void put_be32(std::string& bytes, std::size_t pos, uint32_t v) {
  for (int k = 0; k < 4; ++k) bytes[pos + k] = static_cast<char>((v >> (24 - 8 * k)) & 0xff);
}

uint32_t crc_of(std::string_view s) {
  return static_cast<uint32_t>(crc32(0L, reinterpret_cast<const Bytef*>(s.data()), static_cast<uInt>(s.size())));
}

// A whole chunk: length, type, data, CRC.
std::string chunk(const std::string& type, const std::string& data) {
  std::string out(4, '\0');
  put_be32(out, 0, static_cast<uint32_t>(data.size()));
  out += type + data + std::string(4, '\0');
  put_be32(out, out.size() - 4, crc_of(std::string_view(out).substr(4, 4 + data.size())));
  return out;
}

// A 1×1 PNG whose IHDR claims w×h (with a correct CRC), as a hostile upload would.
std::string png_claiming(uint32_t w, uint32_t h) {
  std::string png = encode_png(pattern(1, 1));
  put_be32(png, 16, w);
  put_be32(png, 20, h);
  put_be32(png, 29, crc_of(std::string_view(png).substr(12, 17)));
  return png;
}

class TempDir {
 public:
  TempDir() : path_(std::filesystem::temp_directory_path() / ("luminars_png_text_" + std::to_string(::getpid()))) {
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

TEST(PngText, PixelsRoundTripExactly) {
  for (auto [w, h] : std::vector<std::pair<int, int>>{{1, 1}, {7, 5}, {64, 3}}) {
    const Image in = pattern(w, h);
    const Image out = decode_image(encode_png(in), "pattern");
    EXPECT_EQ(out.width, w);
    EXPECT_EQ(out.height, h);
    EXPECT_EQ(out.rgb, in.rgb);
  }
}

TEST(PngText, TextChunksRoundTripUtf8AndMultiLine) {
  const std::string parameters =
      "un cœur rouge ❤, style noto\nNegative prompt: flou\nSteps: 12, Sampler: Euler, CFG scale: 4, Seed: 1";
  const std::vector<std::pair<std::string, std::string>> text = {
      {"parameters", parameters}, {"Software", "LuminaRS"}, {"Comment", "two\nlines\n"}, {"Title", ""},
      {"Auteur é", "café"}};
  const Image img = pattern(5, 4);
  const std::string png = encode_png(img, text);

  const auto chunks = png_text_chunks(png);
  ASSERT_EQ(chunks.size(), 5u);
  EXPECT_EQ(chunks.at("parameters"), parameters);
  EXPECT_EQ(chunks.at("Software"), "LuminaRS");
  EXPECT_EQ(chunks.at("Comment"), "two\nlines\n");
  EXPECT_EQ(chunks.at("Title"), "");
  EXPECT_EQ(chunks.at("Auteur é"), "café");

  // The chunks follow IHDR in order: iTXt for non-ASCII text, tEXt otherwise; the keyword is Latin-1.
  EXPECT_EQ(png.substr(kIhdrEnd + 4, 4 + 11), std::string("iTXtparameters\0", 15));
  EXPECT_NE(png.find(std::string("tEXtSoftware\0LuminaRS", 21)), std::string::npos);
  EXPECT_NE(png.find(std::string("iTXtAuteur \xe9\0", 13)), std::string::npos);
  EXPECT_EQ(decode_image(png, "with text").rgb, img.rgb);
}

TEST(PngText, Latin1TextChunkReadsAsUtf8) {
  std::string png = encode_png(pattern(2, 2));
  png.insert(kIhdrEnd, chunk("tEXt", std::string("Comment\0caf\xe9", 12)));
  EXPECT_EQ(png_text_chunks(png).at("Comment"), "café");
}

TEST(PngText, InvalidKeywordsAreRefused) {
  const Image img = pattern(1, 1);
  for (const std::string& bad : {std::string(""), std::string(80, 'k'), std::string(" lead"), std::string("trail "),
                                std::string("two  spaces"), std::string("new\nline"), std::string("snow☃")}) {
    const std::string msg = error_of([&] { encode_png(img, {{bad, "x"}}); });
    EXPECT_NE(msg.find("invalid PNG text keyword"), std::string::npos) << bad;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_EQ(png_text_chunks(encode_png(img, {{std::string(79, 'k'), "ok"}})).at(std::string(79, 'k')), "ok");
  EXPECT_NE(error_of([&] { encode_png(img, {{"k", std::string("a\0b", 3)}}); }).find("NUL"), std::string::npos);
  EXPECT_NE(error_of([&] { encode_png(img, {{"k", "\xff\xfe"}}); }).find("not valid UTF-8"), std::string::npos);
}

TEST(PngText, SaveAndReadFromFile) {
  TempDir dir;
  const Image img = pattern(6, 6);
  save_png(dir.file("a.png"), img, {{"parameters", "a red heart\nSteps: 12"}});
  EXPECT_EQ(read_png_text(dir.file("a.png")).at("parameters"), "a red heart\nSteps: 12");
  EXPECT_EQ(load_image(dir.file("a.png")).rgb, img.rgb);
  save_png(dir.file("plain.png"), img);
  EXPECT_TRUE(read_png_text(dir.file("plain.png")).empty());
  EXPECT_NE(error_of([&] { read_png_text(dir.file("missing.png")); }).find("missing.png"), std::string::npos);
}

TEST(PngText, ChunkLengthPastTheEndThrows) {
  std::string png = encode_png(pattern(3, 3), {{"parameters", "Steps: 12"}});
  ASSERT_EQ(png.substr(kIhdrEnd + 4, 4), "tEXt");
  for (uint32_t length : {0x7fffff00u, 0xffffffffu, static_cast<uint32_t>(png.size())}) {
    std::string bad = png;
    put_be32(bad, kIhdrEnd, length);
    const std::string msg = error_of([&] { png_text_chunks(bad); });
    EXPECT_NE(msg.find("claims " + std::to_string(length) + " bytes"), std::string::npos) << msg;
  }
  // Cut inside the text chunk, inside a chunk header, and right after the signature.
  EXPECT_NE(error_of([&] { png_text_chunks(png.substr(0, kIhdrEnd + 15)); }).find("claims"), std::string::npos);
  EXPECT_NE(error_of([&] { png_text_chunks(png.substr(0, kIhdrEnd + 5)); }).find("truncated"), std::string::npos);
  EXPECT_TRUE(png_text_chunks(png.substr(0, 8)).empty());
}

TEST(PngText, EveryTruncationAndByteFlipIsHandled) {
  const std::string png = encode_png(pattern(2, 2), {{"parameters", "Steps: 12"}, {"Comment", "cœur"}});
  for (std::size_t n = 0; n <= png.size(); ++n) {
    try {
      png_text_chunks(png.substr(0, n));
    } catch (const Error&) {
    }
    std::string flipped = png;
    if (n < png.size()) flipped[n] = static_cast<char>(flipped[n] ^ 0xa5);
    try {
      png_text_chunks(flipped);
    } catch (const Error&) {
    }
  }
  EXPECT_EQ(png_text_chunks(png).size(), 2u);
}

TEST(PngText, CorruptTextChunkThrows) {
  std::string png = encode_png(pattern(2, 2), {{"parameters", "Steps: 12"}});
  png[kIhdrEnd + 8 + 12] ^= 1;  // a byte of the text, so the CRC no longer matches
  EXPECT_NE(error_of([&] { png_text_chunks(png); }).find("bad CRC"), std::string::npos);
  std::string no_keyword = encode_png(pattern(2, 2));
  no_keyword.insert(kIhdrEnd, chunk("tEXt", "no separator"));
  EXPECT_NE(error_of([&] { png_text_chunks(no_keyword); }).find("keyword"), std::string::npos);
}

TEST(PngText, AnythingAfterIendIsIgnored) {
  const std::string png = encode_png(pattern(2, 2), {{"k", "v"}}) + "trailing garbage \x01\x02";
  EXPECT_EQ(png_text_chunks(png).at("k"), "v");
}

TEST(PngText, NonPngThrows) {
  EXPECT_NE(error_of([] { png_text_chunks("GIF89a not a png at all"); }).find("not a PNG"), std::string::npos);
  EXPECT_NE(error_of([] { png_text_chunks(""); }).find("not a PNG"), std::string::npos);
  EXPECT_NE(error_of([] { png_text_chunks("\x89PN"); }).find("not a PNG"), std::string::npos);
}

TEST(PngText, DecodeGarbageNamesWhat) {
  const std::string msg = error_of([] { decode_image("this is not an image", "init_image"); });
  EXPECT_EQ(msg.rfind("cannot decode image init_image: ", 0), 0u) << msg;
  EXPECT_EQ(error_of([] { decode_image("", "mask"); }), "cannot decode image mask: no bytes");
  // A real PNG cut short: the header reads, the pixels do not.
  const std::string png = encode_png(pattern(16, 16));
  EXPECT_EQ(error_of([&] { decode_image(png.substr(0, 60), "cut"); }).rfind("cannot decode image cut: ", 0), 0u);
}

TEST(PngText, OversizedHeadersAreRefusedBeforeDecoding) {
  EXPECT_EQ(error_of([] { decode_image(png_claiming(100000, 100000), "init_image"); }),
            "image init_image is too large: 100000x100000 (the limit is 16384 px a side and 64 Mpx in all)");
  EXPECT_NE(error_of([] { decode_image(png_claiming(16385, 1), "wide"); }).find("16385x1"), std::string::npos);
  // 8192×8193 is within 16384 a side but above 2^26 pixels.
  EXPECT_NE(error_of([] { decode_image(png_claiming(8192, 8193), "big"); }).find("8192x8193"), std::string::npos);
  // At the limit the header passes (the 1×1 pixel data then fails to decode, not the size check).
  const std::string edge = error_of([] { decode_image(png_claiming(16384, 1), "edge"); });
  EXPECT_EQ(edge.rfind("cannot decode image edge: ", 0), 0u) << edge;
}

TEST(PngText, AlphaIsCompositedOnWhite) {
  // Transparent red, half-transparent blue, opaque (10, 20, 30), a quarter-opaque grey.
  const uint8_t rgba[] = {255, 0, 0, 0, 0, 0, 255, 128, 10, 20, 30, 255, 100, 100, 100, 64};
  std::string png;
  auto sink = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size); };
  ASSERT_TRUE(stbi_write_png_to_func(sink, &png, 4, 1, 4, rgba, 16));
  const Image img = decode_image(png, "rgba");
  // c·a/255 + 255·(1 − a/255), rounded: 0 at 128 → 127; 255 at 128 → 255; 100 at 64 → 25.1 + 191 → 216.
  const std::vector<uint8_t> expected = {255, 255, 255, 127, 127, 255, 10, 20, 30, 216, 216, 216};
  EXPECT_EQ(img.rgb, expected);

  TempDir dir;
  {
    std::ofstream(dir.file("rgba.png"), std::ios::binary) << png;
  }
  EXPECT_EQ(load_image(dir.file("rgba.png")).rgb, expected);
}

}  // namespace
}  // namespace luminars
