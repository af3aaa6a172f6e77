// Denoiser forward time per sampling step (inference, no autograd) on the CPU.
// Compare with bench/reference_denoiser.py run in the same session: bench/compare_denoiser.sh.
#include <benchmark/benchmark.h>
#include <luminars/luminars.h>

#include "core/threads.h"

namespace {

void BM_DenoiserForward(benchmark::State& state, const std::string& preset, int64_t batch, int64_t side) {
  luminars::configure_threads(static_cast<int>(state.range(0)));
  torch::manual_seed(0);
  luminars::Config cfg = luminars::Config::preset(preset);
  luminars::LuminaRS model(cfg);
  model->eval();
  for (auto& p : model->parameters()) {  // non-zero ada/out so every pass does real work
    torch::NoGradGuard g;
    if (p.abs().max().item<float>() == 0.f) p.normal_(0, 0.02);
  }
  c10::InferenceMode guard;
  auto x = torch::randn({batch, cfg.latent_channels, side, side});
  auto t = torch::full({batch}, 0.5f);
  auto ctx = torch::randn({batch, 77, cfg.text_dim});
  auto pooled = torch::randn({batch, cfg.text_dim});
  for (int i = 0; i < 2; ++i) model->forward(x, t, ctx, pooled);  // warm-up
  for (auto _ : state) {
    auto v = model->forward(x, t, ctx, pooled);
    benchmark::DoNotOptimize(v.data_ptr());
  }
  state.counters["threads"] = torch::get_num_threads();
}

}  // namespace

// Argument: thread count (0 = every available core).
BENCHMARK_CAPTURE(BM_DenoiserForward, default_b1_32x32, std::string("default"), 1, 32)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_CAPTURE(BM_DenoiserForward, default_b2_32x32, std::string("default"), 2, 32)
    ->Arg(0)
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0);
BENCHMARK_MAIN();
