#include "text/unicode.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>

namespace luminars::unicode {

namespace {

constexpr char32_t kReplacement = 0xFFFD;

bool is_scalar(char32_t c) { return c <= 0x10FFFF && !(c >= 0xD800 && c <= 0xDFFF); }

// Where compose() cuts the text before handing it to utf8proc: non-scalars, which UTF-8 cannot
// carry, and U+11A7, which utf8proc (2.8 in Debian 12; fixed upstream by JuliaStrings/utf8proc#317
// in 2025) composes with a preceding LV syllable and so deletes: it is T_BASE, not a trailing
// consonant. Both are starters that compose with nothing, so NFC of the pieces between them is NFC
// of the whole.
bool nfc_boundary(char32_t c) { return !is_scalar(c) || c == 0x11A7; }

// utf8proc takes code points as int32; everything above U+10FFFF goes in as -1, which it treats as
// unassigned (category Cn, combining class 0, no case mapping).
utf8proc_int32_t cp(char32_t c) { return c <= 0x10FFFF ? static_cast<utf8proc_int32_t>(c) : -1; }

utf8proc_category_t category(char32_t c) { return utf8proc_category(cp(c)); }

// NFC of a run of Unicode scalars, appended to out.
void append_nfc(std::u32string& out, std::u32string_view run) {
  const std::string utf8 = encode_utf8(run);
  utf8proc_uint8_t* result = nullptr;
  const utf8proc_ssize_t n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                                          static_cast<utf8proc_ssize_t>(utf8.size()), &result,
                                          static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(result, &std::free);
  if (n == UTF8PROC_ERROR_NOMEM) throw std::bad_alloc();
  if (n < 0) throw std::runtime_error(std::string("utf8proc NFC: ") + utf8proc_errmsg(n));
  out += decode_utf8(std::string_view(reinterpret_cast<const char*>(result), static_cast<std::size_t>(n)));
}

}  // namespace

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  const auto* bytes = reinterpret_cast<const utf8proc_uint8_t*>(s.data());
  std::size_t i = 0;
  while (i < s.size()) {
    utf8proc_int32_t c = -1;
    const utf8proc_ssize_t n = utf8proc_iterate(bytes + i, static_cast<utf8proc_ssize_t>(s.size() - i), &c);
    if (n > 0) {
      out.push_back(static_cast<char32_t>(c));
      i += static_cast<std::size_t>(n);
      continue;
    }
    // Invalid: one U+FFFD for the lead byte and the continuation bytes after it, up to the length
    // its high bits announce (a stray continuation byte or 0xF8..0xFF alone).
    const unsigned char b0 = bytes[i];
    const std::size_t len = (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 1;
    std::size_t k = 1;
    while (k < len && i + k < s.size() && (bytes[i + k] & 0xC0) == 0x80) ++k;
    out.push_back(kReplacement);
    i += k;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  utf8proc_uint8_t buf[4];
  const utf8proc_ssize_t n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(is_scalar(c) ? c : kReplacement), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<std::size_t>(n));
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  const auto k = category(c);
  return k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO;
}

bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  const auto k = category(c);
  return k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO;
}

bool is_space(char32_t c) {
  if ((c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85) return true;
  if (c < 0xA0) return false;
  const auto k = category(c);
  return k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP;
}

std::u32string to_lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c == 0x130) {  // the one code point whose full lower case is two: i + combining dot above
      out.push_back(U'i');
      out.push_back(0x307);
      continue;
    }
    out.push_back(c <= 0x10FFFF ? static_cast<char32_t>(utf8proc_tolower(cp(c))) : c);
  }
  return out;
}

int combining_class(char32_t c) { return utf8proc_get_property(cp(c))->combining_class; }

std::u32string compose(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    if (nfc_boundary(s[i])) {
      out.push_back(s[i++]);
      continue;
    }
    const std::size_t j = static_cast<std::size_t>(
        std::find_if(s.begin() + static_cast<std::ptrdiff_t>(i), s.end(), nfc_boundary) - s.begin());
    append_nfc(out, s.substr(i, j - i));
    i = j;
  }
  return out;
}

}  // namespace luminars::unicode
