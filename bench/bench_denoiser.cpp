// Denoiser on the CPU: one sampling step (forward, no autograd) and one training step (forward,
// backward, AdamW) of the default preset. bench/compare_with_reference.sh runs these beside the
// PyTorch reference (bench/reference_denoiser.py) in the same session.
// Arguments: {batch, latent side[, bf16]}. LUMINARS_DEVICE=cuda runs on the GPU (bf16 autocast in training).
#include <benchmark/benchmark.h>
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"

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

// bf16 asked for where it would not run natively (a CPU without AVX-512 BF16 or AMX): the
// benchmark is reported as skipped.
bool skipped_without_bf16(benchmark::State& state, bool bf16) {
  if (!bf16 || bench_device().is_cuda() || luminars::cpu_has_fast_bf16()) return false;
  state.SkipWithError("this CPU has no native bf16 (AVX-512 BF16 or AMX)");
  for (auto _ : state) {
  }
  return true;
}

// One sampling step. prompt_per_call false: the prompt's part (LuminaRS::encode_prompt) is computed
// once per generation by the sampler, so it stays outside the timed loop (the step as `luminars
// generate` runs it). true: the reference's work per call, the prompt's part (context embedding,
// every cross-attention's keys and values) recomputed inside the timed loop as the reference's
// forward does: the like-for-like peer of bench/reference_denoiser.py --mode sampling.
void sampling_step(benchmark::State& state, bool prompt_per_call) {
  const bool bf16 = state.range(2) != 0;
  if (skipped_without_bf16(state, bf16)) return;
  Setup s(state.range(0), state.range(1));
  s.model->eval();
  c10::InferenceMode guard;
  luminars::AutocastGuard autocast(bf16, s.device, /*allow_cpu=*/true);
  const auto prompt = s.model->encode_prompt(s.ctx, s.pooled);
  auto step = [&] { return prompt_per_call ? s.model->forward(s.x, s.t, s.ctx, s.pooled) : s.model->forward(s.x, s.t, prompt); };
  for (int i = 0; i < 2; ++i) step();  // warm-up
  for (auto _ : state) {
    auto v = step();
    synchronize(s.device);
    benchmark::DoNotOptimize(v.data_ptr());
  }
  state.counters["threads"] = torch::get_num_threads();
}

// Arguments: batch, latent side, bf16 autocast (1: CPUs with native bf16, or CUDA).
void BM_SamplingStep(benchmark::State& state) { sampling_step(state, /*prompt_per_call=*/false); }
void BM_SamplingStepWithPrompt(benchmark::State& state) { sampling_step(state, /*prompt_per_call=*/true); }

// One training step (forward, backward, AdamW). Third argument 1: bf16 autocast, on the CPU too
// where it has native bf16 (luminars train --bf16 cpu).
void BM_TrainingStep(benchmark::State& state) {
  const bool bf16 = state.range(2) != 0;
  const bool cuda = bench_device().is_cuda();
  if (state.range(0) > 32 && !cuda) {
    state.SkipWithError("batch 128 is the GPU measurement: set LUMINARS_DEVICE=cuda");
    for (auto _ : state) {
    }
    return;
  }
  if (skipped_without_bf16(state, bf16)) return;
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
      luminars::AutocastGuard autocast(bf16, s.device, /*allow_cpu=*/true);
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

// The optimizer's share of a training step: one AdamW step over the default preset's 88.66M
// parameters (gradients of the parameters' size, as after a backward pass).
void BM_AdamWStep(benchmark::State& state) {
  Setup s(1, 8);
  luminars::NamedTensors params;
  for (const auto& p : s.model->named_parameters()) {
    p.value().mutable_grad() = torch::randn_like(p.value());
    params.emplace_back(p.key(), p.value());
  }
  luminars::AdamW opt(params, {});
  opt.step();  // warm-up: the moments are written once
  for (auto _ : state) opt.step();
  state.counters["threads"] = torch::get_num_threads();
}

}  // namespace

BENCHMARK(BM_AdamWStep)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_SamplingStep)->ArgsProduct({{1, 2}, {32}, {0, 1}})->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_SamplingStepWithPrompt)->ArgsProduct({{1, 2}, {32}, {0, 1}})->Unit(benchmark::kMillisecond)->MinTime(2.0);
// How the step's cost grows with the latent side and the batch (bench/cost_growth.sh); run it by
// name: --benchmark_filter=BM_SamplingStepSweep.
void BM_SamplingStepSweep(benchmark::State& state) { BM_SamplingStep(state); }
BENCHMARK(BM_SamplingStepSweep)->ArgsProduct({{1, 2, 4, 8}, {8, 16, 32, 48, 64}, {0, 1}})->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_TrainingStep)->ArgsProduct({{32, 4}, {32}, {0, 1}})->Unit(benchmark::kMillisecond)->Iterations(2);
BENCHMARK(BM_TrainingStep)->Args({128, 32, 1})->Unit(benchmark::kMillisecond)->Iterations(10);  // GPU size, bf16
