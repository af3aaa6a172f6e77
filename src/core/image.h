// 8-bit RGB images: decode (PNG, JPEG, BMP, … through stb), composite transparency on white,
// resize, crop, flip, and write PNG atomically. No LibTorch here; see core/image_tensor.h.
#pragma once
#include <cstdint>
#include <string>
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

// Writes a PNG through a temporary file and a rename.
void save_png(const std::string& path, const Image& image);

Image resize(const Image& image, int width, int height);
Image crop(const Image& image, int x, int y, int width, int height);
Image flip_horizontal(const Image& image);

// Resizes so the shorter side is `size`, then crops a size×size square: centred, or at the
// offsets (fractions in [0,1] of the slack) `fx`, `fy` for random crops.
Image resize_and_crop(const Image& image, int size, float fx = 0.5f, float fy = 0.5f);

}  // namespace luminars
