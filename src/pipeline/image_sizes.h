// Which widths and heights a model can draw (multiples of its size step, up to a limit) and which
// it was trained at; the nearest valid sizes for error messages. Plain integers, no LibTorch, so
// the command line and the server share the wording.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace luminars {

struct SizeRule {
  int64_t multiple = 32;              // width and height: multiples of this, at least this
  int64_t max = 4096;                 // and at most this
  std::vector<int64_t> trained;       // the sides the model was trained at; empty: not known
};

// The valid sizes nearest `value`: one, or two when `value` lies halfway between them.
std::vector<int64_t> nearest_sizes(int64_t value, const SizeRule& rule);

// "" when `value` is a valid side, else e.g. "--size 60: must be a multiple of 32 and at least 32;
// nearest: 64" (`what` names the value: a flag, a field).
std::string size_error(const std::string& what, int64_t value, const SizeRule& rule);

// Whether `value` is one of rule.trained (always true when that list is empty).
bool is_trained_size(int64_t value, const SizeRule& rule);

// "" when `value` is a trained side, else e.g. "--size 128: the model was trained at 64 (other
// sizes draw repeated, broken patterns); <how_to_allow>".
std::string untrained_size_error(const std::string& what, int64_t value, const SizeRule& rule,
                                 const std::string& how_to_allow);

// "64", "64, 128" (for messages).
std::string join_sizes(const std::vector<int64_t>& sizes);

}  // namespace luminars
