#include "core/image_file.h"

#include <stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "core/error.h"
#include "core/files.h"

namespace luminars {

ImageFormat image_format_for(const std::string& path) {
  std::string ext = std::filesystem::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (ext == ".png") return ImageFormat::Png;
  if (ext == ".jpg" || ext == ".jpeg") return ImageFormat::Jpeg;
  throw Error(path + ": cannot write " + (ext.empty() ? std::string("a file without an extension") : "'" + ext + "' images") +
              " (supported: .png, .jpg, .jpeg)");
}

std::string encode_jpeg(const Image& image, int quality, const std::string& comment) {
  if (image.empty()) throw Error("cannot encode an empty image as JPEG");
  const std::size_t expected = static_cast<std::size_t>(image.width) * image.height * 3;
  if (image.rgb.size() != expected) throw Error("cannot encode JPEG: the image holds the wrong number of bytes");
  if (quality < 1 || quality > 100) throw Error("JPEG quality must be between 1 and 100, got " + std::to_string(quality));
  std::string jpeg;
  auto sink = [](void* ctx, void* data, int size) { static_cast<std::string*>(ctx)->append(static_cast<const char*>(data), size); };
  if (!stbi_write_jpg_to_func(sink, &jpeg, image.width, image.height, 3, image.rgb.data(), quality))
    throw Error("cannot encode JPEG: stb failed");
  if (jpeg.size() < 2 || static_cast<uint8_t>(jpeg[0]) != 0xFF || static_cast<uint8_t>(jpeg[1]) != 0xD8)
    throw Error("cannot encode JPEG: stb wrote no start-of-image marker");
  if (!comment.empty()) {
    const std::string text = comment.substr(0, 65533);  // the length field counts itself (2 bytes)
    const std::size_t length = text.size() + 2;
    std::string segment = {'\xFF', '\xFE', static_cast<char>(length >> 8), static_cast<char>(length & 0xFF)};
    jpeg.insert(2, segment + text);
  }
  return jpeg;
}

void save_image(const std::string& path, const Image& image, const std::vector<std::pair<std::string, std::string>>& text) {
  if (image_format_for(path) == ImageFormat::Png) return save_png(path, image, text);
  std::string comment;
  for (const auto& [keyword, value] : text) comment += (comment.empty() ? "" : "\n") + keyword + ": " + value;
  std::string bytes;
  try {
    bytes = encode_jpeg(image, 92, comment);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (writing " + path + ")");
  }
  write_file_atomic(path, [&](std::ostream& out) { out.write(bytes.data(), static_cast<std::streamsize>(bytes.size())); });
}

}  // namespace luminars
