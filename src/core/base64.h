// Base64 (RFC 4648, standard alphabet with padding) for images carried in JSON and data URLs.
#pragma once
#include <string>
#include <string_view>

namespace luminars {

// Standard alphabet, padded with '=' to a multiple of 4 characters, no line breaks.
std::string base64_encode(std::string_view bytes);

// Decodes standard base64. Accepts missing padding, ignores ASCII whitespace (line breaks
// included) and strips a leading data URL prefix ("data:image/png;base64,"). Throws
// luminars::Error naming `what` on a character outside the alphabet, misplaced padding, a length
// no encoder produces, or a data URL that is not base64.
std::string base64_decode(std::string_view text, const std::string& what);

}  // namespace luminars
