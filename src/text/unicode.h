// The Unicode pieces the CLIP tokenizer needs, on utf8proc (Debian's libutf8proc-dev; its Unicode
// version is utf8proc_unicode_version(), 15.0 for Debian 12's 2.8): UTF-8 coding, letter/number/space
// classes, lower-casing and NFC.
#pragma once
#include <string>
#include <string_view>

namespace luminars::unicode {

// Invalid or truncated sequences, surrogates and overlong forms decode to U+FFFD, one per lead byte
// with the continuation bytes that follow it (at most the length the lead byte announces).
std::u32string decode_utf8(std::string_view s);
// Surrogates and values above U+10FFFF, which UTF-8 cannot hold, are written as U+FFFD.
void append_utf8(std::string& out, char32_t c);
std::string encode_utf8(std::u32string_view s);

bool is_letter(char32_t c);  // general category L* (regex \p{L})
bool is_number(char32_t c);  // general category N* (regex \p{N})
bool is_space(char32_t c);   // the White_Space property (regex \s): Zs, Zl, Zp, U+0009..U+000D, U+0085

// Per-character full lower-case mapping (U+0130 İ becomes "i̇", two code points).
std::u32string to_lower(std::u32string_view s);

int combining_class(char32_t c);
// NFC: canonical decomposition (singletons such as U+212B ANGSTROM SIGN included), canonical ordering
// of combining marks, canonical composition (Hangul included). Values that are no Unicode scalar
// (surrogates, above U+10FFFF) are passed through unchanged and block composition across them.
std::u32string compose(std::u32string_view s);

}  // namespace luminars::unicode
