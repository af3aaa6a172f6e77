// UTF-8 validity for text that crosses a trust boundary (request fields, paths, replies), on
// utf8proc: a text is valid when every code point decodes as a Unicode scalar value.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>

namespace luminars {

// True when `s` is well-formed UTF-8 (no overlong forms, surrogates or values above U+10FFFF).
bool is_valid_utf8(std::string_view s);

// The code point of the UTF-8 sequence at s[i], advancing `i` past it; -1 (advancing one byte) when
// the sequence there is ill-formed.
long next_code_point(std::string_view s, std::size_t& i);

// `s` with every ill-formed sequence replaced by U+FFFD (valid input comes back unchanged).
std::string to_valid_utf8(std::string_view s);

}  // namespace luminars
