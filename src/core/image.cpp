#include "core/image.h"

#include <stb_image.h>
#include <stb_image_resize.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"

namespace luminars {

Image load_image(const std::string& path) {
  if (!std::filesystem::exists(path)) throw Error("image not found: " + path);
  int w = 0, h = 0, n = 0;
  unsigned char* px = stbi_load(path.c_str(), &w, &h, &n, 4);
  if (!px) throw Error("cannot decode image " + path + ": " + stbi_failure_reason());
  Image img;
  img.width = w;
  img.height = h;
  img.rgb.resize(static_cast<std::size_t>(w) * h * 3);
  for (std::size_t i = 0, n_px = static_cast<std::size_t>(w) * h; i < n_px; ++i) {
    const unsigned a = px[4 * i + 3];
    for (int c = 0; c < 3; ++c)  // over white: c*a + 255*(1-a)
      img.rgb[3 * i + c] = static_cast<uint8_t>((px[4 * i + c] * a + 255u * (255u - a) + 127u) / 255u);
  }
  stbi_image_free(px);
  return img;
}

void save_png(const std::string& path, const Image& image) {
  if (image.empty()) throw Error("cannot write an empty image to " + path);
  write_file_atomic(path, [&](std::ostream& out) {
    auto sink = [](void* ctx, void* data, int size) {
      static_cast<std::ostream*>(ctx)->write(static_cast<const char*>(data), size);
    };
    if (!stbi_write_png_to_func(sink, &out, image.width, image.height, 3, image.rgb.data(), image.width * 3))
      throw Error("cannot encode PNG " + path);
  });
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
  const double s = static_cast<double>(size) / std::min(image.width, image.height);
  const int w = std::max(size, static_cast<int>(std::lround(image.width * s)));
  const int h = std::max(size, static_cast<int>(std::lround(image.height * s)));
  Image r = (w == image.width && h == image.height) ? image : resize(image, w, h);
  const int x = static_cast<int>(std::lround(std::clamp(fx, 0.f, 1.f) * (w - size)));
  const int y = static_cast<int>(std::lround(std::clamp(fy, 0.f, 1.f) * (h - size)));
  return crop(r, x, y, size, size);
}

}  // namespace luminars
