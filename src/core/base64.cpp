// Base64 encoding and a forgiving (padding, whitespace, data URL) but strict-alphabet decoding.
#include "core/base64.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "core/error.h"

namespace luminars {
namespace {

constexpr std::string_view kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// 6-bit value of each alphabet character, -1 for every other byte.
constexpr std::array<int8_t, 256> make_table() {
  std::array<int8_t, 256> table{};
  table.fill(-1);
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<int8_t>(i);
  return table;
}
constexpr std::array<int8_t, 256> kValue = make_table();

// A byte for an error message: itself when printable, 0xNN otherwise.
std::string describe(char c) {
  const unsigned char u = static_cast<unsigned char>(c);
  if (u >= 0x21 && u < 0x7f) return std::string("'") + c + "'";
  static constexpr char kHex[] = "0123456789abcdef";
  return std::string("byte 0x") + kHex[u >> 4] + kHex[u & 15];
}

// `text` without leading whitespace and a "data:<type>;base64," prefix, if it has one.
std::string_view strip_data_url(std::string_view text, const std::string& what) {
  std::size_t start = 0;
  while (start < text.size() && is_space(text[start])) ++start;
  text.remove_prefix(start);
  if (text.substr(0, 5) != "data:") return text;
  const std::size_t comma = text.find(',');
  if (comma == std::string_view::npos || text.substr(0, comma).ends_with(";base64") == false)
    throw Error("invalid base64 in " + what + ": a data URL without \";base64,\"");
  return text.substr(comma + 1);
}

}  // namespace

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    const std::size_t n = std::min<std::size_t>(3, bytes.size() - i);
    uint32_t group = 0;  // 24 bits: three bytes, zero-filled at the end
    for (std::size_t k = 0; k < 3; ++k)
      group = (group << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (std::size_t k = 0; k < 4; ++k) out.push_back(k <= n ? kAlphabet[(group >> (18 - 6 * k)) & 63] : '=');
  }
  return out;
}

std::string base64_decode(std::string_view text, const std::string& what) {
  const std::string_view body = strip_data_url(text, what);
  std::string out;
  out.reserve(body.size() / 4 * 3 + 3);
  uint32_t group = 0;  // the last `held` characters' 6-bit values
  std::size_t held = 0, chars = 0, padding = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (is_space(c)) continue;
    auto at = [&] { return " at offset " + std::to_string(i + (text.size() - body.size())); };
    if (c == '=') {
      ++padding;
      continue;
    }
    const int v = kValue[static_cast<unsigned char>(c)];
    if (v < 0) throw Error("invalid base64 in " + what + ": " + describe(c) + at());
    if (padding > 0) throw Error("invalid base64 in " + what + ": data after '=' padding" + at());
    group = (group << 6) | static_cast<uint32_t>(v);
    ++chars;
    if (++held == 4) {
      for (int shift = 16; shift >= 0; shift -= 8) out.push_back(static_cast<char>((group >> shift) & 0xff));
      group = 0;
      held = 0;
    }
  }
  // A final group of 2 or 3 characters carries 1 or 2 bytes; its padding, if any, must fill it to 4.
  if (held == 1 || (padding > 0 && held + padding != 4))
    throw Error("invalid base64 in " + what + ": " + std::to_string(chars) + " characters and " +
                std::to_string(padding) + " '=' do not form whole groups");
  if (held == 2) out.push_back(static_cast<char>((group >> 4) & 0xff));
  if (held == 3) {
    out.push_back(static_cast<char>((group >> 10) & 0xff));
    out.push_back(static_cast<char>((group >> 2) & 0xff));
  }
  return out;
}

}  // namespace luminars
