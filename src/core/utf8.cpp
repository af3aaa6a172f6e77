#include "core/utf8.h"

#include <utf8proc.h>

namespace luminars {

namespace {

// Bytes of the code point at s[i], or 0 when the sequence there is ill-formed.
std::size_t scalar_length(std::string_view s, std::size_t i) {
  utf8proc_int32_t c = -1;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                  static_cast<utf8proc_ssize_t>(s.size() - i), &c);
  return n > 0 && c >= 0 ? static_cast<std::size_t>(n) : 0;
}

}  // namespace

bool is_valid_utf8(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    if (static_cast<unsigned char>(s[i]) < 0x80) {
      ++i;
      continue;
    }
    const std::size_t n = scalar_length(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

long next_code_point(std::string_view s, std::size_t& i) {
  utf8proc_int32_t c = -1;
  const auto n = utf8proc_iterate(reinterpret_cast<const utf8proc_uint8_t*>(s.data() + i),
                                  static_cast<utf8proc_ssize_t>(s.size() - i), &c);
  if (n <= 0 || c < 0) {
    ++i;
    return -1;
  }
  i += static_cast<std::size_t>(n);
  return c;
}

std::string to_valid_utf8(std::string_view s) {
  if (is_valid_utf8(s)) return std::string(s);
  std::string out;
  out.reserve(s.size() + 8);
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = static_cast<unsigned char>(s[i]) < 0x80 ? 1 : scalar_length(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD for the offending byte
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

}  // namespace luminars
