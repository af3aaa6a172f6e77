// 8-bit RGB images: decode (PNG, JPEG, BMP, … through stb, from files or memory), composite
// transparency on white, resize, crop, flip, encode PNG with text chunks, and write PNG atomically.
// No LibTorch here; see core/image_tensor.h.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace luminars {

struct Image {
  int width = 0, height = 0;
  std::vector<uint8_t> rgb;  // row-major, 3 bytes a pixel
  bool empty() const { return width == 0 || height == 0; }
};

// Throws luminars::Error naming the path when the file is missing, unreadable or not an image.
// Alpha is composited on white.
Image load_image(const std::string& path);

// Decodes an image held in memory (PNG, JPEG, BMP, …); alpha is composited on white as in
// load_image. Empty input and pictures above 16384 px a side or 64 Mpx (2^26 pixels) in all are
// refused from the header, before decoding. Throws luminars::Error naming `what`.
Image decode_image(std::string_view bytes, const std::string& what);

// PNG bytes of `image`, with one text chunk per (keyword, text) pair right after IHDR: tEXt when
// the text is ASCII, uncompressed iTXt (UTF-8) otherwise. Keywords are 1–79 printable Latin-1
// characters (given as UTF-8) without leading, trailing or doubled spaces; texts are UTF-8 without
// NUL. Throws luminars::Error naming the keyword at fault.
std::string encode_png(const Image& image, const std::vector<std::pair<std::string, std::string>>& text = {});

// Writes encode_png(image, text) through a temporary file and a rename.
void save_png(const std::string& path, const Image& image,
              const std::vector<std::pair<std::string, std::string>>& text = {});

// The tEXt and uncompressed iTXt chunks of PNG bytes, keyword → text, both as UTF-8 (a later chunk
// with the same keyword wins; compressed zTXt/iTXt are skipped; nothing after IEND is read).
// Throws luminars::Error on a non-PNG, a chunk reaching past the end, a malformed text chunk or a
// text chunk with a bad CRC.
std::map<std::string, std::string> png_text_chunks(std::string_view png_bytes);
// png_text_chunks of a file; errors name the path.
std::map<std::string, std::string> read_png_text(const std::string& path);

Image resize(const Image& image, int width, int height);
Image crop(const Image& image, int x, int y, int width, int height);
Image flip_horizontal(const Image& image);

// Resizes so the shorter side is `size`, then crops a size×size square: centred, or at the
// offsets (fractions in [0,1] of the slack) `fx`, `fy` for random crops.
Image resize_and_crop(const Image& image, int size, float fx = 0.5f, float fy = 0.5f);
// Scales so the picture covers width × height (the same scale on both sides), then crops the
// slack at the offsets `fx`, `fy` (fractions in [0,1]; centred by default). No resampling when
// the size already fits.
Image resize_to_cover(const Image& image, int width, int height, float fx = 0.5f, float fy = 0.5f);

}  // namespace luminars
