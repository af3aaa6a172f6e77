#include "pipeline/image_sizes.h"

#include <algorithm>

namespace luminars {

std::vector<int64_t> nearest_sizes(int64_t value, const SizeRule& rule) {
  const int64_t m = std::max<int64_t>(rule.multiple, 1);
  const int64_t top = std::max(m, rule.max / m * m);
  if (value <= m) return {m};
  if (value >= top) return {top};
  const int64_t below = value / m * m, above = below + m;
  if (below == value) return {value};
  if (value - below < above - value) return {below};
  if (value - below > above - value) return {above};
  return {below, above};
}

std::string join_sizes(const std::vector<int64_t>& sizes) {
  std::string out;
  for (const int64_t s : sizes) out += (out.empty() ? "" : ", ") + std::to_string(s);
  return out;
}

std::string size_error(const std::string& what, int64_t value, const SizeRule& rule) {
  const int64_t m = std::max<int64_t>(rule.multiple, 1);
  if (value >= m && value <= rule.max && value % m == 0) return "";
  const auto near = nearest_sizes(value, rule);
  std::string nearest = std::to_string(near.front());
  if (near.size() > 1) nearest += " or " + std::to_string(near.back());
  return what + " " + std::to_string(value) + ": must be a multiple of " + std::to_string(m) + " from " + std::to_string(m) +
         " to " + std::to_string(rule.max) + "; nearest: " + nearest;
}

bool is_trained_size(int64_t value, const SizeRule& rule) {
  return rule.trained.empty() || std::find(rule.trained.begin(), rule.trained.end(), value) != rule.trained.end();
}

std::string untrained_size_error(const std::string& what, int64_t value, const SizeRule& rule,
                                 const std::string& how_to_allow) {
  if (is_trained_size(value, rule)) return "";
  return what + " " + std::to_string(value) + ": the model was trained at " + join_sizes(rule.trained) +
         " (other sizes draw repeated, broken patterns); " + how_to_allow;
}

}  // namespace luminars
