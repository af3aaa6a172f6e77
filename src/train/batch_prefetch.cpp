#include "train/batch_prefetch.h"

namespace luminars {

BatchPrefetch::~BatchPrefetch() {
  if (next_.valid()) next_.wait();  // the sampler must outlive the worker
}

Batch BatchPrefetch::get(int64_t index) {
  Batch batch;
  if (next_.valid() && next_index_ == index) {
    batch = next_.get();  // rethrows what the worker threw
  } else {
    if (next_.valid()) next_.wait();  // never two draws at once: the sampler caches epoch orders
    next_ = {};
    batch = sampler_.sample(index, batch_size_);
  }
  next_index_ = index + 1;
  next_ = std::async(std::launch::async, [this, i = next_index_] { return sampler_.sample(i, batch_size_); });
  return batch;
}

}  // namespace luminars
