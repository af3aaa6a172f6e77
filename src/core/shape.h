// A tensor's shape as text, for error messages: "[2, 16, 32, 32]".
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

namespace luminars {

inline std::string shape_of(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace luminars
