#include "serve/multipart.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "core/utf8.h"
#include "serve/http_message.h"

namespace luminars::serve {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

[[noreturn]] void bad(const std::string& what) { throw HttpError(400, "body", "the multipart body " + what); }

// Parameter `key` of a header value like `form-data; name="image"; filename="a.png"` (quoted or
// bare), or nullopt. Quoted values may escape `"` and `\` with a backslash.
std::optional<std::string> parameter(std::string_view value, std::string_view key) {
  std::size_t i = value.find(';');
  while (i != std::string_view::npos && i < value.size()) {
    ++i;
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t')) ++i;
    const std::size_t eq = value.find('=', i);
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string name = ascii_lower(trim(value.substr(i, eq - i)));
    std::size_t j = eq + 1;
    std::string v;
    if (j < value.size() && value[j] == '"') {
      for (++j; j < value.size() && value[j] != '"'; ++j) {
        if (value[j] == '\\' && j + 1 < value.size()) ++j;
        v += value[j];
      }
      if (j >= value.size()) return std::nullopt;  // unterminated quote
      ++j;
    } else {
      const std::size_t end = std::min(value.find(';', j), value.size());
      v = std::string(trim(value.substr(j, end - j)));
      j = end;
    }
    if (name == key) return v;
    i = value.find(';', j);
  }
  return std::nullopt;
}

}  // namespace

std::string multipart_boundary(std::string_view content_type) {
  const std::size_t semi = content_type.find(';');
  if (ascii_lower(trim(content_type.substr(0, semi))) != "multipart/form-data") return "";
  auto b = parameter(content_type, "boundary");
  if (!b || b->empty() || b->size() > 70) return "";
  return *b;
}

FormData parse_multipart(std::string_view body, std::string_view boundary, std::size_t max_parts) {
  if (boundary.empty()) bad("has no boundary");
  const std::string delimiter = "--" + std::string(boundary);
  std::size_t at = body.find(delimiter);
  if (at == std::string_view::npos) bad("has no opening boundary");
  FormData out;
  std::size_t parts = 0;
  for (;;) {
    at += delimiter.size();
    if (body.substr(at, 2) == "--") return out;  // the closing delimiter
    const std::size_t line_end = body.find("\r\n", at);
    if (line_end == std::string_view::npos) bad("ends inside a boundary line");
    if (!trim(body.substr(at, line_end - at)).empty()) bad("has text after a boundary");
    if (++parts > max_parts) bad("has more than " + std::to_string(max_parts) + " parts");
    const std::size_t head_end = body.find("\r\n\r\n", line_end);
    if (head_end == std::string_view::npos) bad("has a part without a blank line after its headers");
    std::optional<std::string> name, filename;
    for (std::size_t p = line_end + 2; p < head_end + 2;) {
      const std::size_t e = body.find("\r\n", p);
      const std::string_view line = body.substr(p, e - p);
      p = e + 2;
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) bad("has a part header without a colon");
      if (ascii_lower(trim(line.substr(0, colon))) != "content-disposition") continue;
      const std::string_view value = line.substr(colon + 1);
      name = parameter(value, "name");
      filename = parameter(value, "filename");
    }
    if (!name || name->empty()) bad("has a part without a name");
    if (!is_valid_utf8(*name)) bad("has a part name that is not UTF-8");
    const std::size_t content = head_end + 4;
    const std::size_t next = body.find("\r\n" + delimiter, content);
    if (next == std::string_view::npos) bad("has no closing boundary");
    std::string value(body.substr(content, next - content));
    auto& into = filename ? out.files : out.fields;
    if (into.count(*name)) bad("has the part '" + *name + "' twice");
    if (!filename && !is_valid_utf8(value)) throw HttpError(400, *name, *name + " is not valid UTF-8");
    into.emplace(*name, std::move(value));
    at = next + 2;
  }
}

}  // namespace luminars::serve
