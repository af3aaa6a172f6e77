// Aspect-ratio buckets (as kohya's sd-scripts make them): a set of training sizes of about the
// same area as resolution², so pictures that are not square are trained near their own shape
// instead of cropped to a square. Each picture goes to the bucket nearest its aspect ratio and is
// scaled to cover it and centre-cropped; batches are drawn within one bucket. Plain integers, no
// LibTorch.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace luminars {

struct BucketSize {
  int64_t width = 0, height = 0;
  bool operator==(const BucketSize&) const = default;
};

// Sizes whose sides are multiples of `step`, from resolution / 2 to 2 · resolution (rounded to
// `step`), each as long as its area stays within resolution²; the square resolution² among them.
// Ordered by width/height ratio, tallest first. `resolution` must be a positive multiple of `step`.
std::vector<BucketSize> aspect_buckets(int64_t resolution, int64_t step);

// The bucket whose aspect ratio is nearest width / height (by log ratio; ties: the first).
std::size_t nearest_bucket(const std::vector<BucketSize>& buckets, int64_t width, int64_t height);

// "64x64, 32x128" (for messages and summaries).
std::string bucket_list(const std::vector<BucketSize>& buckets);

}  // namespace luminars
