// Writing a picture in the format its file name asks for: .png (with text chunks) or .jpg/.jpeg
// (JPEG through stb, the texts in a comment segment).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/image.h"

namespace luminars {

enum class ImageFormat { Png, Jpeg };

// The format the extension of `path` names (.png, .jpg, .jpeg; any case). Throws luminars::Error
// naming the extension and the ones supported otherwise.
ImageFormat image_format_for(const std::string& path);

// JPEG bytes of `image` at `quality` (1–100); `comment`, when not empty, in a COM segment right
// after the start of the image (cut to the 65,533 bytes one segment holds).
std::string encode_jpeg(const Image& image, int quality = 92, const std::string& comment = "");

// Writes `image` to `path` atomically in image_format_for(path): PNG with `text` as text chunks,
// or JPEG with the texts ("keyword: text") in its comment.
void save_image(const std::string& path, const Image& image,
                const std::vector<std::pair<std::string, std::string>>& text = {});

}  // namespace luminars
