// Generation with a LoRA against generation without, on the shipped model (models/emoji): the
// denoising of one 64×64 picture (12 Euler steps with guidance, float32, the prompt's conditioning
// computed once as generation does), with no LoRA, one rank-8 LoRA applied unmerged (low-rank
// products at every step), and the same LoRA fused (a working copy of each adapted weight).
// LUMINARS_THREADS=N sets the threads (default: every core). Run with --benchmark_repetitions=N --benchmark_report_aggregates_only=true for medians.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>

#include "core/threads.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/lora.h"

namespace {

namespace fs = std::filesystem;

struct Setup {
  luminars::LuminaRS model{nullptr};
  luminars::LoraTensors lora;
  torch::Tensor noise, ctx, pooled;
  luminars::SampleOptions so;
  Setup() {
    const char* threads = std::getenv("LUMINARS_THREADS");  // e.g. 1 on a shared machine
    luminars::configure_threads(threads ? std::atoi(threads) : 0);
    const auto path = fs::path(LUMINARS_BENCH_SOURCE_DIR) / "models" / "emoji" / "denoiser" / "model.safetensors";
    model = luminars::load_denoiser(path.string());
    model->eval();
    torch::manual_seed(0);
    luminars::LoraNetwork n(model, luminars::LoraSettings{});  // rank 8 on attention and MLP
    {
      torch::NoGradGuard g;
      for (auto& l : n->layer_list) l->lora_B.normal_(0, 0.02);
    }
    lora = luminars::lora_tensors(n);
    const auto& c = model->config();
    noise = torch::randn({1, c.latent_channels, 8, 8});
    ctx = torch::randn({1, 16, c.text_dim});
    pooled = torch::randn({1, c.text_dim});
    so.steps = 12;
    so.guidance.scale = 4;
    so.guidance.null_ctx = torch::zeros_like(ctx);
    so.guidance.null_pooled = torch::zeros_like(pooled);
  }
};

// Argument: 0 = no LoRA, 1 = one LoRA unmerged, 2 = one LoRA fused.
void BM_Denoise64(benchmark::State& state) {
  static Setup s;
  luminars::detach_lora(s.model);
  if (state.range(0) > 0) luminars::attach_lora(s.model, s.lora, 0.8, "bench");
  if (state.range(0) == 2) luminars::fuse_lora(s.model);
  c10::InferenceMode guard;
  for (auto _ : state) benchmark::DoNotOptimize(luminars::sample_flow(s.model, s.noise, s.ctx, s.pooled, s.so));
  luminars::detach_lora(s.model);
  state.SetLabel(state.range(0) == 0 ? "no LoRA" : state.range(0) == 1 ? "LoRA unmerged" : "LoRA fused");
}
BENCHMARK(BM_Denoise64)->Arg(0)->Arg(1)->Arg(2)->Unit(benchmark::kMillisecond);

}  // namespace

