// Drawing one training batch on the CPU (gather latents and text, posterior sample, noise, t):
// the work the trainer does per step besides the network. On a GPU, bench_throughput's training
// step is the network alone; this is what a real `luminars train` step adds unless it overlaps.
// Arguments: {batch}. 1024 cached images of 16×32×32 (256² pictures), CLIP-L-sized text.
#include <benchmark/benchmark.h>
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"

#include "core/threads.h"
#include "train/batch_sampler.h"
#include "train/latent_cache.h"

namespace {

luminars::LatentCache synthetic_cache(int64_t images) {
  luminars::LatentCache c;
  c.mean.append(torch::randn({images, 16, 32, 32}));
  c.std.append(torch::rand({images, 16, 32, 32}) * 0.1);
  c.ctx.append(torch::randn({images, 77, 768}).to(torch::kFloat16));
  c.pooled.append(torch::randn({images, 768}).to(torch::kFloat16));
  for (int64_t i = 0; i < images; ++i) c.captions_of.push_back({i});
  c.empty_ctx = torch::zeros({1, 77, 768}, torch::kFloat16);
  c.empty_pooled = torch::zeros({1, 768}, torch::kFloat16);
  return c;
}

void BM_SampleBatch(benchmark::State& state) {
  luminars::configure_threads();
  static const luminars::LatentCache cache = synthetic_cache(1024);
  std::vector<int64_t> items(1024);
  for (int64_t i = 0; i < 1024; ++i) items[static_cast<std::size_t>(i)] = i;
  luminars::BatchSampler sampler(cache, items, 1, 0.1, luminars::TimeSampling::LogitNormal);
  int64_t index = 0;
  for (auto _ : state) {
    auto b = sampler.sample(index++, state.range(0));
    benchmark::DoNotOptimize(b.x_clean.data_ptr());
  }
  state.counters["threads"] = torch::get_num_threads();
}

}  // namespace

BENCHMARK(BM_SampleBatch)->Arg(32)->Arg(128)->Unit(benchmark::kMillisecond)->MinTime(1.0);
