// Training batches drawn from the latent cache, deterministic in (seed, step, micro-batch): the
// data order, caption choice, caption dropout, latent sample, t and noise of any step can be
// recomputed, so a resumed run continues bit-exactly without stored RNG streams.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <vector>

#include "flow/flow_matching.h"
#include "train/distributed.h"
#include "train/latent_cache.h"

namespace luminars {

struct Batch {
  torch::Tensor x_clean, noise, t, ctx, pooled;  // on the CPU
  std::vector<int64_t> images;                   // the cache's image index of each row
  std::vector<int64_t> captions;                 // the cache's caption row of each row; -1: the empty prompt
};

class BatchSampler {
 public:
  BatchSampler(const LatentCache& cache, std::vector<int64_t> items, uint64_t seed, double caption_dropout,
               TimeSampling time_sampling, double time_shift = 1.0);
  // Batch number `index` (global step × accumulation + micro-batch) of `batch_size` images, or
  // `part` of it: the whole batch's random numbers are drawn and the part's kept, so the parts of
  // a data-parallel run's ranks put together are the batch one process draws.
  Batch sample(int64_t index, int64_t batch_size, BatchPart part = {});

 private:
  // The images of an epoch in order. With aspect-ratio buckets: each bucket's images shuffled and
  // cut into runs of `batch_size` (the last run filled up from the bucket's start), the runs
  // shuffled, so every batch lies within one bucket.
  const std::vector<int64_t>& epoch_order(int64_t epoch, int64_t batch_size);
  const LatentCache& cache_;
  std::vector<int64_t> items_;
  uint64_t seed_;
  double caption_dropout_;
  TimeSampling time_sampling_;
  double time_shift_;
  int64_t cached_epoch_ = -1, cached_batch_size_ = 0;
  std::vector<int64_t> bucket_sizes_;  // training images per aspect-ratio bucket; empty: one bucket
  // Positions in an epoch: the images, or with buckets each bucket's rounded up to whole batches.
  int64_t epoch_length(int64_t batch_size) const;
  std::vector<int64_t> order_;
};

// A generator seeded from several integers (splitmix64 of each in turn).
torch::Generator seeded_generator(std::initializer_list<uint64_t> parts);

}  // namespace luminars
