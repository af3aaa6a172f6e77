// Numbers as text in their shortest exact form: the fewest digits that read back to the same
// double (4, 7.5, 0.1, 1e-05), at most 17 significant digits. The one formatter of the project.
#pragma once
#include <charconv>
#include <string>

namespace luminars {

inline std::string format_number(double v) {
  char buf[32];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace luminars
