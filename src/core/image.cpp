#include "core/image.h"

#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>

#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <filesystem>
#include <memory>

#include "core/error.h"
#include "core/files.h"
#include "core/utf8.h"

namespace luminars {
namespace {

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

constexpr uint64_t kMaxSide = 16384;             // px, either side
constexpr uint64_t kMaxPixels = uint64_t{1} << 26;  // 64 Mpx in all

using StbPixels = std::unique_ptr<unsigned char, decltype(&stbi_image_free)>;

// RGBA as stb returns it (4 bytes a pixel) → RGB over white: c·a + 255·(1 − a), rounded.
Image composite_on_white(const unsigned char* rgba, int width, int height) {
  Image img;
  img.width = width;
  img.height = height;
  img.rgb.resize(static_cast<std::size_t>(width) * height * 3);
  for (std::size_t i = 0, n_px = static_cast<std::size_t>(width) * height; i < n_px; ++i) {
    const unsigned a = rgba[4 * i + 3];
    for (int c = 0; c < 3; ++c)
      img.rgb[3 * i + c] = static_cast<uint8_t>((rgba[4 * i + c] * a + 255u * (255u - a) + 127u) / 255u);
  }
  return img;
}

// ---------------------------------------------------------------------------------------------
// PNG chunks: length (big-endian u32), type (4 bytes), data, CRC-32 of type and data
// ---------------------------------------------------------------------------------------------

constexpr std::string_view kPngSignature{"\x89PNG\r\n\x1a\n", 8};
constexpr std::size_t kIhdrEnd = 8 + 4 + 4 + 13 + 4;  // signature, then the whole IHDR chunk
constexpr uint32_t kMaxChunkLength = 0x7fffffff;

uint32_t read_be32(std::string_view bytes, std::size_t pos) {
  uint32_t v = 0;
  for (int k = 0; k < 4; ++k) v = (v << 8) | static_cast<unsigned char>(bytes[pos + k]);
  return v;
}

void append_be32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>((v >> shift) & 0xff));
}

uint32_t crc_of(std::string_view type_and_data) {
  return static_cast<uint32_t>(crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(type_and_data.data()),
                                     static_cast<uInt>(type_and_data.size())));
}

void append_chunk(std::string& out, std::string_view type, std::string_view data) {
  append_be32(out, static_cast<uint32_t>(data.size()));
  const std::size_t start = out.size();
  out.append(type);
  out.append(data);
  append_be32(out, crc_of(std::string_view(out).substr(start)));
}

// Width and height from the header alone: a PNG's IHDR directly (stb refuses to report sizes it
// deems too large), any other format through stbi_info_from_memory.
bool header_size(std::string_view bytes, uint64_t& width, uint64_t& height) {
  if (bytes.size() >= 24 && bytes.substr(0, 8) == kPngSignature && bytes.substr(12, 4) == "IHDR") {
    width = read_be32(bytes, 16);
    height = read_be32(bytes, 20);
    return true;
  }
  int w = 0, h = 0, n = 0;
  if (!stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h, &n))
    return false;
  width = static_cast<uint64_t>(w);
  height = static_cast<uint64_t>(h);
  return true;
}

std::string stb_reason() {
  const char* reason = stbi_failure_reason();
  return reason ? reason : "unknown error";
}

// ---------------------------------------------------------------------------------------------
// Text: keywords are Latin-1 in the file and UTF-8 in the API; texts are UTF-8 (Latin-1 when a
// tEXt chunk's bytes are not valid UTF-8)
// ---------------------------------------------------------------------------------------------

bool is_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
}

std::string latin1_to_utf8(std::string_view s) {
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c < 0x80) {
      out.push_back(ch);
    } else {
      out.push_back(static_cast<char>(0xc0 | (c >> 6)));
      out.push_back(static_cast<char>(0x80 | (c & 0x3f)));
    }
  }
  return out;
}

// `s` with control and non-ASCII bytes as \xNN, so that an error message stays one line.
std::string printable(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : s) {
    const unsigned char c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(ch);
    } else {
      out += "\\x";
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// The Latin-1 bytes of a keyword given as UTF-8; throws unless it is 1–79 printable characters
// without leading, trailing or consecutive spaces (PNG specification, 11.3.4.2).
std::string png_keyword(const std::string& keyword) {
  std::string latin1;
  bool ok = !keyword.empty();
  for (std::size_t i = 0; ok && i < keyword.size();) {
    const long cp = next_code_point(keyword, i);
    ok = (cp >= 0x20 && cp <= 0x7e) || (cp >= 0xa1 && cp <= 0xff);
    ok = ok && !(cp == ' ' && !latin1.empty() && latin1.back() == ' ');
    latin1.push_back(static_cast<char>(cp));
  }
  ok = ok && latin1.size() <= 79 && latin1.front() != ' ' && latin1.back() != ' ';
  if (!ok)
    throw Error("invalid PNG text keyword \"" + printable(keyword) +
                "\": it must be 1-79 printable Latin-1 characters without leading, trailing or doubled spaces");
  return latin1;
}

// A tEXt chunk for ASCII text, an uncompressed iTXt chunk (UTF-8) otherwise.
void append_text_chunk(std::string& out, const std::string& keyword, const std::string& text) {
  const std::string key = png_keyword(keyword);
  if (text.find('\0') != std::string::npos) throw Error("PNG text \"" + keyword + "\" contains a NUL byte");
  std::string data = key;
  data.push_back('\0');
  const bool ascii = is_ascii(text);
  if (!ascii) {
    if (!is_valid_utf8(text)) throw Error("PNG text \"" + keyword + "\" is not valid UTF-8");
    data.append(4, '\0');  // compression flag, compression method, language tag "", translated keyword ""
  }
  data += text;
  if (data.size() > kMaxChunkLength) throw Error("PNG text \"" + keyword + "\" is too long for one chunk");
  append_chunk(out, ascii ? "tEXt" : "iTXt", data);
}

std::map<std::string, std::string> text_chunks(std::string_view png, const std::string& what) {
  auto fail = [&](const std::string& why) { return Error("cannot read PNG text of " + what + ": " + why); };
  if (png.size() < 8 || png.substr(0, 8) != kPngSignature) throw fail("not a PNG (bad signature)");
  std::map<std::string, std::string> out;
  for (std::size_t pos = 8; pos < png.size();) {
    const std::string at = " at byte " + std::to_string(pos);
    if (png.size() - pos < 12) throw fail("truncated chunk" + at);
    const uint32_t length = read_be32(png, pos);
    const std::string_view type = png.substr(pos + 4, 4);
    if (length > kMaxChunkLength || length > png.size() - pos - 12)
      throw fail("chunk " + printable(type) + at + " claims " + std::to_string(length) + " bytes, only " +
                 std::to_string(png.size() - pos - 12) + " remain");
    const std::string_view data = png.substr(pos + 8, length);
    if (type == "tEXt" || type == "iTXt") {
      if (crc_of(png.substr(pos + 4, 4 + length)) != read_be32(png, pos + 8 + length))
        throw fail("chunk " + std::string(type) + at + " has a bad CRC");
      const std::size_t key_end = data.find('\0');
      if (key_end == 0 || key_end == std::string_view::npos || key_end > 79)
        throw fail("chunk " + std::string(type) + at + " has no valid keyword");
      const std::string key = latin1_to_utf8(data.substr(0, key_end));
      if (type == "tEXt") {
        const std::string_view text = data.substr(key_end + 1);
        out[key] = is_valid_utf8(text) ? std::string(text) : latin1_to_utf8(text);
      } else {
        // keyword \0 flag method language \0 translated-keyword \0 text
        const std::size_t lang_end = data.size() >= key_end + 3 ? data.find('\0', key_end + 3) : std::string_view::npos;
        const std::size_t tr_end = lang_end == std::string_view::npos ? lang_end : data.find('\0', lang_end + 1);
        if (tr_end == std::string_view::npos) throw fail("chunk iTXt" + at + " is malformed");
        if (data[key_end + 1] == 0) out[key] = std::string(data.substr(tr_end + 1));  // compressed ones are skipped
      }
    }
    if (type == "IEND") break;
    pos += 12 + static_cast<std::size_t>(length);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// PNG image data, checked before stb decodes it
// ---------------------------------------------------------------------------------------------

// Bytes a PNG's image data holds once inflated: every row of the picture (of each Adam7 pass when
// interlaced) is a filter byte, then width × channels × bit depth bits. 0 for an IHDR stb refuses.
uint64_t png_data_size(uint64_t width, uint64_t height, int bit_depth, int color_type, bool interlaced) {
  const int channels = color_type == 0 || color_type == 3 ? 1 : color_type == 4 ? 2 : color_type == 2 ? 3 : color_type == 6 ? 4 : 0;
  if (channels == 0 || bit_depth < 1 || bit_depth > 16) return 0;
  auto rows = [&](uint64_t w, uint64_t h) { return w && h ? h * (1 + (w * channels * bit_depth + 7) / 8) : 0; };
  if (!interlaced) return rows(width, height);
  constexpr uint64_t kPasses[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                      {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};  // x0, y0, dx, dy
  uint64_t n = 0;
  for (const auto& p : kPasses)
    n += rows(width > p[0] ? (width - p[0] + p[2] - 1) / p[2] : 0, height > p[1] ? (height - p[1] + p[3] - 1) / p[3] : 0);
  return n;
}

// Debian's stb (2.27) inflates a PNG's image data without bound when the zlib stream is corrupt or
// runs on past the rows: it reads zero bits beyond the end and doubles its buffer up to gigabytes
// (a 1 kB file asked for 2 GiB), and it makes room for a chunk's claimed length before reading
// it. So before stb sees a PNG, every chunk must fit in the file and the IDAT stream must inflate
// (zlib, through a small buffer) to its end within twice the bytes its rows hold (libpng tolerates
// a little extra data; this bounds stb's work by the picture's size). Other damage is left to stb.
void check_png_data(std::string_view png, const std::string& what) {
  auto fail = [&](const std::string& why) { return Error("cannot decode image " + what + ": " + why); };
  uint64_t expected = 0, inflated = 0;
  std::size_t zlib_header = 2;  // skipped, so that zlib reads raw deflate as stb does (no Adler-32 check)
  struct Inflater {
    z_stream z{};
    bool started = false;
    ~Inflater() {
      if (started) inflateEnd(&z);
    }
  } inflater;
  z_stream& z = inflater.z;
  bool ended = false;
  std::vector<unsigned char> out(1 << 16);
  for (std::size_t pos = 8; pos + 12 <= png.size();) {
    const uint32_t length = read_be32(png, pos);
    const std::string_view type = png.substr(pos + 4, 4);
    if (type == "IEND") break;
    if (length > png.size() - pos - 12)  // stb would make room for it first (a 500-byte file claimed 1.9 GB)
      throw fail("chunk " + printable(type) + " claims " + std::to_string(length) + " bytes, only " +
                 std::to_string(png.size() - pos - 12) + " remain");
    const std::string_view data = png.substr(pos + 8, length);
    if (type == "CgBI") {
      zlib_header = 0;  // Apple's PNGs: deflate data without the zlib header
    } else if (type == "IHDR" && length == 13) {
      expected = png_data_size(read_be32(data, 0), read_be32(data, 4), static_cast<unsigned char>(data[8]),
                               static_cast<unsigned char>(data[9]), data[12] != 0);
    } else if (type == "IDAT" && !ended) {  // (stb reads IDAT after the stream's end too: only its length matters)
      if (!inflater.started && inflateInit2(&z, -15) != Z_OK) throw fail("zlib could not start");
      inflater.started = true;
      const std::size_t skip = std::min<std::size_t>(zlib_header, data.size());
      zlib_header -= skip;
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data() + skip));
      z.avail_in = static_cast<uInt>(data.size() - skip);
      do {
        z.next_out = out.data();
        z.avail_out = static_cast<uInt>(out.size());
        const int r = inflate(&z, Z_NO_FLUSH);
        inflated += out.size() - z.avail_out;
        ended = r == Z_STREAM_END;
        const bool bad = r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR;
        if (bad) throw fail(std::string("corrupt image data (") + (z.msg ? z.msg : "zlib error") + ")");
        if (inflated > 2 * expected)
          throw fail("its image data inflates past twice the " + std::to_string(expected) + " bytes of its rows");
      } while (!ended && (z.avail_in > 0 || z.avail_out == 0));
    }
    pos += 12 + static_cast<std::size_t>(length);
  }
  if (inflater.started && !ended) throw fail("its image data ends before its zlib stream does");
}

// Binary PNM ("P5" grey, "P6" RGB, 8-bit): the bytes after the header must hold every pixel, as
// stb 2.27 ignores a short read and hands back uninitialised memory for the missing rows. The
// header is read as stb reads it: whitespace and #-comments between the fields, one byte after
// the maximum value.
void check_pnm_data(std::string_view bytes, const std::string& what) {
  std::size_t pos = 2;
  auto skip = [&] {
    while (pos < bytes.size()) {
      const char c = bytes[pos];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
        ++pos;
      } else if (c == '#') {
        while (pos < bytes.size() && bytes[pos] != '\n' && bytes[pos] != '\r') ++pos;
      } else {
        break;
      }
    }
  };
  auto number = [&] {
    uint64_t v = 0;
    while (pos < bytes.size() && bytes[pos] >= '0' && bytes[pos] <= '9' && v < (uint64_t{1} << 40))
      v = v * 10 + static_cast<uint64_t>(bytes[pos++] - '0');
    return v;
  };
  skip();
  const uint64_t width = number();
  skip();
  const uint64_t height = number();
  skip();
  number();  // maximum value (above 255 is refused before)
  ++pos;     // the one whitespace byte that ends the header
  const uint64_t need = width * height * (bytes[1] == '5' ? 1 : 3);
  const uint64_t have = pos < bytes.size() ? bytes.size() - pos : 0;
  if (have < need)
    throw Error("cannot decode image " + what + ": its pixel data is truncated (" + std::to_string(have) + " of " +
                std::to_string(need) + " bytes)");
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public functions
// ---------------------------------------------------------------------------------------------

Image load_image(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error("image not found: " + path);
  return decode_image(read_file(path), path);  // the size limits apply to files too
}

Image decode_image(std::string_view bytes, const std::string& what) {
  if (bytes.empty()) throw Error("cannot decode image " + what + ": no bytes");
  if (bytes.size() > static_cast<std::size_t>(INT_MAX))
    throw Error("cannot decode image " + what + ": " + std::to_string(bytes.size()) + " bytes is over 2 GiB");
  uint64_t width = 0, height = 0;
  if (!header_size(bytes, width, height)) throw Error("cannot decode image " + what + ": " + stb_reason());
  if (width > kMaxSide || height > kMaxSide || width * height > kMaxPixels)
    throw Error("image " + what + " is too large: " + std::to_string(width) + "x" + std::to_string(height) +
                " (the limit is 16384 px a side and 64 Mpx in all)");
  if (bytes.substr(0, 8) == kPngSignature) check_png_data(bytes, what);
  if (bytes.size() >= 2 && bytes[0] == 'P' && (bytes[1] == '5' || bytes[1] == '6')) {  // binary PGM/PPM
    // stb 2.27 converts a 16-bit PNM's channels as 8-bit ones, then reads twice the bytes it holds.
    if (stbi_is_16_bit_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size())))
      throw Error("cannot decode image " + what + ": 16-bit PNM (maxval above 255) is not supported");
    check_pnm_data(bytes, what);
  }
  int w = 0, h = 0, n = 0;
  StbPixels px(stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()),
                                     &w, &h, &n, 4),
               &stbi_image_free);
  if (!px) throw Error("cannot decode image " + what + ": " + stb_reason());
  // stb reads a PNM header with a zero side ("P6 3 0 255") as a picture without pixels.
  if (w <= 0 || h <= 0)
    throw Error("cannot decode image " + what + ": it has no pixels (" + std::to_string(w) + "x" + std::to_string(h) + ")");
  return composite_on_white(px.get(), w, h);
}

std::string encode_png(const Image& image, const std::vector<std::pair<std::string, std::string>>& text) {
  if (image.empty()) throw Error("cannot encode an empty image as PNG");
  const std::size_t expected = static_cast<std::size_t>(image.width) * image.height * 3;
  if (image.width < 0 || image.height < 0 || image.rgb.size() != expected)
    throw Error("cannot encode PNG: a " + std::to_string(image.width) + "x" + std::to_string(image.height) +
                " image needs " + std::to_string(expected) + " bytes, it holds " + std::to_string(image.rgb.size()));
  std::string chunks;
  for (const auto& [keyword, value] : text) append_text_chunk(chunks, keyword, value);
  std::string png;
  auto sink = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size); };
  if (!stbi_write_png_to_func(sink, &png, image.width, image.height, 3, image.rgb.data(), image.width * 3))
    throw Error("cannot encode PNG: stb failed");
  if (png.size() < kIhdrEnd || png.compare(0, 8, kPngSignature) != 0 || read_be32(png, 8) != 13 ||
      png.compare(12, 4, "IHDR") != 0)
    throw Error("cannot encode PNG: stb wrote no IHDR chunk first");
  png.insert(kIhdrEnd, chunks);
  return png;
}

void save_png(const std::string& path, const Image& image, const std::vector<std::pair<std::string, std::string>>& text) {
  if (image.empty()) throw Error("cannot write an empty image to " + path);
  std::string bytes;
  try {
    bytes = encode_png(image, text);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (writing " + path + ")");
  }
  write_file_atomic(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

std::map<std::string, std::string> png_text_chunks(std::string_view png_bytes) {
  return text_chunks(png_bytes, "PNG data");
}

std::map<std::string, std::string> read_png_text(const std::string& path) {
  return text_chunks(read_file(path), path);
}

Image resize(const Image& image, int width, int height) {
  if (width <= 0 || height <= 0) throw Error("resize: invalid size " + std::to_string(width) + "x" + std::to_string(height));
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<std::size_t>(width) * height * 3);
  if (!stbir_resize_uint8_srgb(image.rgb.data(), image.width, image.height, 0, out.rgb.data(), width, height, 0, 3,
                               STBIR_ALPHA_CHANNEL_NONE, 0))
    throw Error("resize failed");
  return out;
}

Image crop(const Image& image, int x, int y, int width, int height) {
  if (x < 0 || y < 0 || width <= 0 || height <= 0 || x + width > image.width || y + height > image.height)
    throw Error("crop outside the image");
  Image out;
  out.width = width;
  out.height = height;
  out.rgb.resize(static_cast<std::size_t>(width) * height * 3);
  for (int r = 0; r < height; ++r)
    std::copy_n(image.rgb.begin() + (static_cast<std::size_t>(y + r) * image.width + x) * 3, width * 3,
                out.rgb.begin() + static_cast<std::size_t>(r) * width * 3);
  return out;
}

Image flip_horizontal(const Image& image) {
  Image out = image;
  for (int r = 0; r < image.height; ++r)
    for (int c = 0; c < image.width; ++c)
      std::copy_n(image.rgb.begin() + (static_cast<std::size_t>(r) * image.width + c) * 3, 3,
                  out.rgb.begin() + (static_cast<std::size_t>(r) * image.width + (image.width - 1 - c)) * 3);
  return out;
}

Image resize_and_crop(const Image& image, int size, float fx, float fy) {
  if (image.empty()) throw Error("resize_and_crop: empty image");
  return resize_to_cover(image, size, size, fx, fy);
}

Image resize_to_cover(const Image& image, int width, int height, float fx, float fy) {
  if (image.empty()) throw Error("resize_to_cover: empty image");
  if (width <= 0 || height <= 0) throw Error("resize_to_cover: invalid size " + std::to_string(width) + "x" + std::to_string(height));
  // The part of the picture the result shows is cut out first and only it is resampled: a very
  // long picture costs its crop, never its enlargement.
  const double s = std::max(static_cast<double>(width) / image.width, static_cast<double>(height) / image.height);
  const int cw = std::clamp(static_cast<int>(std::lround(width / s)), 1, image.width);
  const int ch = std::clamp(static_cast<int>(std::lround(height / s)), 1, image.height);
  const int x = static_cast<int>(std::lround(std::clamp(fx, 0.f, 1.f) * (image.width - cw)));
  const int y = static_cast<int>(std::lround(std::clamp(fy, 0.f, 1.f) * (image.height - ch)));
  Image cut = (cw == image.width && ch == image.height) ? image : crop(image, x, y, cw, ch);
  return (cw == width && ch == height) ? cut : resize(cut, width, height);
}

}  // namespace luminars
