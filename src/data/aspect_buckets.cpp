#include "data/aspect_buckets.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace luminars {

std::vector<BucketSize> aspect_buckets(int64_t resolution, int64_t step) {
  if (step < 1 || resolution < step || resolution % step != 0)
    throw Error("aspect buckets: the resolution " + std::to_string(resolution) + " must be a positive multiple of the bucket step " +
                std::to_string(step));
  const int64_t area = resolution * resolution;
  const int64_t lo = std::max(step, resolution / 2 / step * step), hi = 2 * resolution;
  std::vector<BucketSize> out;
  auto add = [&](BucketSize b) {
    if (b.width >= lo && b.height >= lo && std::find(out.begin(), out.end(), b) == out.end()) out.push_back(b);
  };
  for (int64_t w = lo; w <= hi; w += step) {
    const int64_t h = std::min(hi, area / w / step * step);
    add({w, h});
    add({h, w});
  }
  std::sort(out.begin(), out.end(), [](const BucketSize& a, const BucketSize& b) { return a.width * b.height < b.width * a.height; });
  return out;
}

std::size_t nearest_bucket(const std::vector<BucketSize>& buckets, int64_t width, int64_t height) {
  if (buckets.empty()) throw Error("aspect buckets: none to choose from");
  if (width <= 0 || height <= 0) return 0;
  const double ratio = std::log(static_cast<double>(width) / static_cast<double>(height));
  std::size_t best = 0;
  double best_distance = INFINITY;
  for (std::size_t i = 0; i < buckets.size(); ++i) {
    const double d = std::abs(std::log(static_cast<double>(buckets[i].width) / static_cast<double>(buckets[i].height)) - ratio);
    if (d < best_distance - 1e-12) best = i, best_distance = d;
  }
  return best;
}

std::string bucket_list(const std::vector<BucketSize>& buckets) {
  std::string out;
  for (const auto& b : buckets) out += (out.empty() ? "" : ", ") + std::to_string(b.width) + "x" + std::to_string(b.height);
  return out;
}

}  // namespace luminars
