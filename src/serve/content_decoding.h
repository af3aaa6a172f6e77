// Request bodies sent compressed (Content-Encoding: gzip or deflate), inflated with zlib under a
// limit on the bytes they inflate to, checked while inflating: a small body that would inflate to
// gigabytes is refused after `max_bytes`, never held in memory.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace luminars::serve {

// True for the codings decode_content takes: "", "identity", "gzip", "x-gzip", "deflate"
// (case-insensitive, surrounding spaces ignored).
bool is_supported_content_encoding(std::string_view coding);

// `body` with `coding` undone. Throws HttpError 413 ("body") once the result would exceed
// `max_bytes`, HttpError 400 ("body") for data that is not of that coding, and 415
// ("Content-Encoding") for a coding it does not take.
std::string decode_content(std::string body, std::string_view coding, std::size_t max_bytes);

}  // namespace luminars::serve
