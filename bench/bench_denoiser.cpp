// Denoiser on the CPU: one sampling step (forward, no autograd) and one training step (forward,
// backward, AdamW) of the default preset. bench/compare_with_reference.sh runs these beside the
// PyTorch reference (bench/reference_denoiser.py) in the same session.
// Arguments: {batch, latent side}. LUMINARS_DEVICE=cuda runs on the GPU (bf16 autocast in training).
#include <benchmark/benchmark.h>
#include <luminars/luminars.h>

#include <cstdlib>

#include "core/device.h"
#include "core/threads.h"
#include "train/adamw.h"
#include "core/autocast.h"

namespace {

torch::Device bench_device() {
  const char* name = std::getenv("LUMINARS_DEVICE");
  return luminars::device_from_name(name ? name : "cpu");
}

void synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

struct Setup {
  torch::Device device = bench_device();
  luminars::Config cfg = luminars::Config::preset("default");
  luminars::LuminaRS model{nullptr};
  torch::Tensor x, t, ctx, pooled;
  Setup(int64_t batch, int64_t side) {
    luminars::configure_threads();
    torch::manual_seed(0);
    model = luminars::LuminaRS(cfg);
    for (auto& p : model->parameters()) {  // non-zero ada/out so every pass does real work
      torch::NoGradGuard g;
      if (p.abs().max().item<float>() == 0.f) p.normal_(0, 0.02);
    }
    model->to(device);
    x = torch::randn({batch, cfg.latent_channels, side, side}).to(device);
    t = torch::full({batch}, 0.5f).to(device);
    ctx = torch::randn({batch, 77, cfg.text_dim}).to(device);
    pooled = torch::randn({batch, cfg.text_dim}).to(device);
  }
};

void BM_SamplingStep(benchmark::State& state) {
  Setup s(state.range(0), state.range(1));
  s.model->eval();
  c10::InferenceMode guard;
  for (int i = 0; i < 2; ++i) s.model->forward(s.x, s.t, s.ctx, s.pooled);  // warm-up
  for (auto _ : state) {
    auto v = s.model->forward(s.x, s.t, s.ctx, s.pooled);
    synchronize(s.device);
    benchmark::DoNotOptimize(v.data_ptr());
  }
  state.counters["threads"] = torch::get_num_threads();
}

void BM_TrainingStep(benchmark::State& state) {
  if (state.range(0) > 32 && !bench_device().is_cuda()) {
    state.SkipWithError("batch 128 is the GPU measurement: set LUMINARS_DEVICE=cuda");
    for (auto _ : state) {
    }
    return;
  }
  Setup s(state.range(0), state.range(1));
  s.model->train();
  luminars::NamedTensors params;
  for (const auto& p : s.model->named_parameters()) params.emplace_back(p.key(), p.value());
  luminars::AdamW opt(params, {});
  auto noise = torch::randn_like(s.x);
  auto step = [&] {
    opt.zero_grad();
    torch::Tensor loss;
    {
      luminars::AutocastGuard autocast(/*bf16=*/true, s.device);
      loss = luminars::flow_matching_loss(s.model, s.x, noise, s.t, s.ctx, s.pooled);
    }
    loss.backward();
    opt.step();
    return loss;
  };
  step();  // warm-up
  for (auto _ : state) benchmark::DoNotOptimize(step().item<float>());
  state.counters["img/s"] = benchmark::Counter(static_cast<double>(state.range(0)) * state.iterations(), benchmark::Counter::kIsRate);
  state.counters["threads"] = torch::get_num_threads();
}

}  // namespace

BENCHMARK(BM_SamplingStep)->Args({1, 32})->Args({2, 32})->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_TrainingStep)->Args({32, 32})->Args({4, 32})->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_TrainingStep)->Args({128, 32})->Unit(benchmark::kMillisecond)->Iterations(10);  // GPU size
BENCHMARK_MAIN();
