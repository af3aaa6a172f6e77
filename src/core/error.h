// The project's one exception type: library code throws it with the offending name or path in the
// message; only main() and request handlers catch it, print one line and choose the exit code.
#pragma once
#include <stdexcept>
#include <string>

namespace luminars {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace luminars
