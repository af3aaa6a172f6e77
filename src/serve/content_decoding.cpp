#include "serve/content_decoding.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>

#include "serve/http_message.h"

namespace luminars::serve {

namespace {

std::string normalised(std::string_view coding) {
  while (!coding.empty() && std::isspace(static_cast<unsigned char>(coding.front()))) coding.remove_prefix(1);
  while (!coding.empty() && std::isspace(static_cast<unsigned char>(coding.back()))) coding.remove_suffix(1);
  std::string s(coding);
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

// Inflates `in` with zlib's window_bits (15 + 32: gzip or zlib header detected; −15: raw deflate).
// Returns false when the data is not of that form.
bool inflate_into(std::string& out, std::string_view in, int window_bits, std::size_t max_bytes) {
  z_stream z{};
  if (inflateInit2(&z, window_bits) != Z_OK) throw Error("zlib: cannot start inflating");
  struct End {
    z_stream* z;
    ~End() { inflateEnd(z); }
  } end{&z};
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z.avail_in = static_cast<uInt>(in.size());
  char chunk[64 * 1024];
  for (;;) {
    z.next_out = reinterpret_cast<Bytef*>(chunk);
    z.avail_out = sizeof(chunk);
    const int rc = inflate(&z, Z_NO_FLUSH);
    if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) return false;
    const std::size_t produced = sizeof(chunk) - z.avail_out;
    if (out.size() + produced > max_bytes)
      throw HttpError(413, "body", "the body inflates to more than " + std::to_string(max_bytes) + " bytes");
    out.append(chunk, produced);
    if (rc == Z_STREAM_END) return z.avail_in == 0;  // trailing bytes after the stream: not one body
    if (rc == Z_BUF_ERROR || (produced == 0 && z.avail_in == 0)) return false;  // truncated
  }
}

}  // namespace

bool is_supported_content_encoding(std::string_view coding) {
  const std::string c = normalised(coding);
  return c.empty() || c == "identity" || c == "gzip" || c == "x-gzip" || c == "deflate";
}

std::string decode_content(std::string body, std::string_view coding, std::size_t max_bytes) {
  const std::string c = normalised(coding);
  if (c.empty() || c == "identity") return body;
  if (!is_supported_content_encoding(c))
    throw HttpError(415, "Content-Encoding", "Content-Encoding '" + c + "' is not supported (gzip, deflate or none)");
  if (body.size() > (std::size_t{1} << 31))
    throw HttpError(413, "body", "the compressed body is larger than 2 GiB");
  std::string out;
  if (inflate_into(out, body, 15 + 32, max_bytes)) return out;
  if (c == "deflate") {  // "deflate" is meant to be zlib-wrapped; some clients send it raw
    out.clear();
    if (inflate_into(out, body, -15, max_bytes)) return out;
  }
  throw HttpError(400, "body", "the body is not valid " + c + " data");
}

}  // namespace luminars::serve
