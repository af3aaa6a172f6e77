// The Unicode pieces the CLIP tokenizer needs, without ICU: UTF-8 coding, letter/number/space
// classes, lower-casing and canonical composition (tables in unicode_data.inc, Unicode 14).
#pragma once
#include <string>
#include <string_view>

namespace luminars::unicode {

// Invalid or truncated sequences, surrogates and overlong forms decode to U+FFFD.
std::u32string decode_utf8(std::string_view s);
void append_utf8(std::string& out, char32_t c);
std::string encode_utf8(std::u32string_view s);

bool is_letter(char32_t c);  // general category L* (regex \p{L})
bool is_number(char32_t c);  // general category N* (regex \p{N})
bool is_space(char32_t c);   // the White_Space property (regex \s)

// Per-character full lower-case mapping (U+0130 İ becomes "i̇", two code points).
std::u32string to_lower(std::u32string_view s);

int combining_class(char32_t c);
// Canonical ordering of combining marks, then canonical composition (Hangul included). This is NFC
// for text whose precomposed characters are already in composed form, e.g. NFC or NFD input.
std::u32string compose(std::u32string_view s);

}  // namespace luminars::unicode
