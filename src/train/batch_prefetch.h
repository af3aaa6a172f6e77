// The denoiser's training batches drawn ahead on a worker thread (train/prefetch.h): about 30 ms
// at batch 128 on two cores (bench_batch_sampler) that overlap the network instead of adding to
// each step.
#pragma once
#include "train/batch_sampler.h"
#include "train/prefetch.h"

namespace luminars {

class BatchPrefetch : public Prefetch<Batch> {
 public:
  // `part`: this rank's share of every batch in data-parallel training (default: all of it).
  BatchPrefetch(BatchSampler& sampler, int64_t batch_size, BatchPart part = {})
      : Prefetch<Batch>([&sampler, batch_size, part](int64_t i) { return sampler.sample(i, batch_size, part); }) {}
};

}  // namespace luminars
