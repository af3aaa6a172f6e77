#include "text/unicode.h"

#include <algorithm>
#include <cstdint>

namespace luminars::unicode {

namespace {

struct Range {
  char32_t lo, hi;
};
struct LowerRun {
  char32_t lo, hi;
  int32_t delta, stride;
};
struct ClassRun {
  char32_t lo, hi;
  int32_t ccc;
};
struct Composition {
  char32_t first, second, composite;
};

#include "text/unicode_data.inc"

template <class T, std::size_t N>
const T* find_run(const T (&table)[N], char32_t c) {
  // First run whose upper end is >= c; it holds c when its lower end is <= c.
  auto it = std::lower_bound(std::begin(table), std::end(table), c, [](const T& r, char32_t v) { return r.hi < v; });
  return (it != std::end(table) && it->lo <= c) ? it : nullptr;
}

constexpr char32_t kReplacement = 0xFFFD;
// Hangul syllable arithmetic (Unicode §3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr int kLCount = 19, kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = kLCount * kNCount;

char32_t compose_pair(char32_t a, char32_t b) {
  if (a >= kLBase && a < kLBase + kLCount && b >= kVBase && b < kVBase + kVCount)
    return kSBase + ((a - kLBase) * kVCount + (b - kVBase)) * kTCount;
  if (a >= kSBase && a < kSBase + kSCount && (a - kSBase) % kTCount == 0 && b > kTBase && b < kTBase + kTCount)
    return a + (b - kTBase);
  auto it = std::lower_bound(std::begin(kCompositions), std::end(kCompositions), std::pair{a, b},
                             [](const Composition& c, const std::pair<char32_t, char32_t>& v) {
                               return c.first != v.first ? c.first < v.first : c.second < v.second;
                             });
  return (it != std::end(kCompositions) && it->first == a && it->second == b) ? it->composite : 0;
}

}  // namespace

std::u32string decode_utf8(std::string_view s) {
  std::u32string out;
  out.reserve(s.size());
  std::size_t i = 0;
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (len == 1) {
      out.push_back(b0);
      ++i;
      continue;
    }
    char32_t c = len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
    int k = 1;
    for (; len && k < len && i + k < s.size(); ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) break;
      c = (c << 6) | (b & 0x3F);
    }
    static constexpr char32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (len == 0 || k < len || c < kMin[len] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
      out.push_back(kReplacement);
      i += std::max(k, 1);  // skip the lead byte and the continuation bytes read so far
      continue;
    }
    out.push_back(c);
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out.push_back(static_cast<char>(c));
  } else if (c < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (c >> 6)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else if (c < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (c >> 12)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (c >> 18)));
    out.push_back(static_cast<char>(0x80 | ((c >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((c >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (c & 0x3F)));
  }
}

std::string encode_utf8(std::u32string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

bool is_letter(char32_t c) {
  if (c < 0x80) return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
  return find_run(kLetters, c) != nullptr;
}

bool is_number(char32_t c) {
  if (c < 0x80) return c >= '0' && c <= '9';
  return find_run(kNumbers, c) != nullptr;
}

bool is_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::u32string to_lower(std::u32string_view s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) {
    if (c == 0x130) {  // the one code point whose lower case is two: i + combining dot above
      out.push_back(U'i');
      out.push_back(0x307);
      continue;
    }
    const LowerRun* r = find_run(kLower, c);
    out.push_back(r && (c - r->lo) % r->stride == 0 ? static_cast<char32_t>(static_cast<int32_t>(c) + r->delta) : c);
  }
  return out;
}

int combining_class(char32_t c) {
  if (c < 0x300) return 0;
  const ClassRun* r = find_run(kCombiningClass, c);
  return r ? r->ccc : 0;
}

std::u32string compose(std::u32string_view s) {
  std::u32string text(s);
  // Canonical ordering: each run of non-starters sorted stably by combining class.
  for (std::size_t i = 0; i < text.size();) {
    if (combining_class(text[i]) == 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < text.size() && combining_class(text[j]) != 0) ++j;
    std::stable_sort(text.begin() + i, text.begin() + j,
                     [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    i = j;
  }
  // Canonical composition: a character joins the last starter unless a character between them
  // is a starter or has a combining class at least its own.
  std::u32string out;
  out.reserve(text.size());
  std::ptrdiff_t starter = -1;
  int last_ccc = 0;
  for (char32_t c : text) {
    const int ccc = combining_class(c);
    if (starter >= 0) {
      const bool adjacent = out.size() == static_cast<std::size_t>(starter) + 1;
      if (adjacent || (last_ccc != 0 && last_ccc < ccc)) {
        if (char32_t composite = compose_pair(out[starter], c)) {
          out[starter] = composite;
          continue;
        }
      }
    }
    if (ccc == 0) starter = static_cast<std::ptrdiff_t>(out.size());
    last_ccc = ccc;
    out.push_back(c);
  }
  return out;
}

}  // namespace luminars::unicode
