// Gradients averaged over the ranks of a data-parallel run (train/distributed.h), in buckets that
// are all-reduced while the backward pass is still running, as PyTorch's DDP does: a hook on each
// trainable parameter copies its gradient into its bucket's flat buffer, and a bucket whose
// gradients are all in starts its all-reduce at once. Buckets start strictly in order (every rank
// issues the same collectives in the same order); finish() waits for them and writes the mean of
// the ranks' gradients into every .grad, so clipping and the optimizer see the same numbers on
// every rank. With gradient accumulation only the last micro-batch's backward is armed; the
// earlier ones accumulate locally.
//   P = trainable parameters; buckets hold them in reverse order (the order backward reaches them)
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace at {
class Tensor;
}

namespace luminars {

class ProcessGroup;

class GradientBuckets {
 public:
  // Buckets of about `bucket_bytes` (DDP's default 25 MiB), the first one `first_bucket_bytes` so
  // that communication starts early in the backward pass.
  GradientBuckets(ProcessGroup& group, const std::vector<std::pair<std::string, at::Tensor>>& params,
                  int64_t bucket_bytes = int64_t{25} << 20, int64_t first_bucket_bytes = int64_t{1} << 20);
  ~GradientBuckets();  // removes its hooks
  GradientBuckets(const GradientBuckets&) = delete;
  GradientBuckets& operator=(const GradientBuckets&) = delete;

  // The next backward pass is the step's last: reduce its gradients as they arrive.
  void arm();
  // After that backward pass: starts the buckets the hooks did not (parameters without a gradient
  // this time contribute what they accumulated, or zeros), waits for all, and writes the mean over
  // the ranks into each .grad. A parameter that no rank gave a gradient keeps none.
  void finish();
  int64_t bucket_count() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace luminars
