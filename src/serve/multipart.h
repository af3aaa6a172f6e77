// multipart/form-data bodies (RFC 7578), as OpenAI's image edits endpoint takes them: named text
// fields and named files, each part's bytes as sent.
#pragma once
#include <map>
#include <string>
#include <string_view>

namespace luminars::serve {

struct FormData {
  std::map<std::string, std::string> fields;  // parts without a filename
  std::map<std::string, std::string> files;   // parts with a filename (name → bytes)
};

// The boundary parameter of a multipart/form-data Content-Type, or "" when it is not one.
std::string multipart_boundary(std::string_view content_type);

// The parts of `body`. Throws HttpError 400 naming "body" (or the part) when it is not well-formed:
// no opening or closing delimiter, a part without a name or headers, more than `max_parts` parts,
// a repeated name, or a name or text field that is not UTF-8.
FormData parse_multipart(std::string_view body, std::string_view boundary, std::size_t max_parts = 64);

}  // namespace luminars::serve
