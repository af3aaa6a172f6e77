// Denoiser throughput on any device, without Google Benchmark (which GPU machines lack), at the
// settings of bench/reference_denoiser.py: the default preset, 32×32 latents, 77 text tokens.
//   training: forward, backward and AdamW (bf16 autocast on CUDA), as `luminars train` steps;
//   sample-run: a whole 12-step Euler run, batch 1 unguided or one prompt with guidance (batch 2
//               through the network), bf16 autocast on CUDA with the weights cast to bf16 once, as
//               `luminars generate` samples; --graph replays the run captured in a CUDA graph.
// Prints the median of --runs timed repetitions after warm-up, and the peak CUDA memory.
// Usage: bench_throughput --mode training --batch 128 [--device cuda] [--runs 10] [--no-bf16]
//        bench_throughput --mode sample-run --batch 2 --device cuda --graph
#include <CLI/CLI.hpp>
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "core/device.h"
#include "core/blas_kernels.h"
#include "core/threads.h"
#include "train/adamw.h"
#include "core/autocast.h"
#include "flow/captured_sampling.h"
#include "model/bf16_weights.h"

#ifdef LUMINARS_CUDA_ALLOCATOR_STATS
#include <c10/cuda/CUDACachingAllocator.h>
#endif

namespace {

using luminars::LuminaRS;

double peak_cuda_gib() {
#ifdef LUMINARS_CUDA_ALLOCATOR_STATS
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(0);
  return static_cast<double>(stats.allocated_bytes[0].peak) / (1024.0 * 1024 * 1024);  // [0]: aggregate
#else
  return -1;
#endif
}

void reset_peak_cuda() {
#ifdef LUMINARS_CUDA_ALLOCATOR_STATS
  c10::cuda::CUDACachingAllocator::resetPeakStats(0);
#endif
}

void synchronize(torch::Device device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  luminars::reexec_with_better_blas_kernels(argv);  // as the `luminars` program (core/blas_kernels.h)
  CLI::App app{"LuminaRS denoiser throughput (median of timed runs)"};
  std::string mode = "training", device_name = "auto";
  int64_t batch = 0, side = 32, runs = 10, warmup = 3, steps = 12;
  double cfg_scale = 4.0;
  bool no_bf16 = false, graph = false;
  app.add_option("--mode", mode, "training or sample-run (a whole sampling run)")->check(CLI::IsMember({"training", "sample-run"}))->capture_default_str();
  app.add_option("--device", device_name, "auto, cpu or cuda")->capture_default_str();
  app.add_option("--batch", batch, "training: images per step; sampling: 1 (unguided) or 2 (one prompt, guided)")
      ->check(CLI::Range(1, 4096));
  app.add_option("--side", side, "latent side")->capture_default_str()->check(CLI::Range(4, 256));
  app.add_option("--runs", runs, "timed repetitions")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--warmup", warmup, "untimed repetitions first")->capture_default_str()->check(CLI::Range(0, 100));
  app.add_option("--steps", steps, "sampling steps")->capture_default_str()->check(CLI::Range(1, 1000));
  app.add_option("--cfg", cfg_scale, "guidance scale at batch 2")->capture_default_str();
  app.add_flag("--no-bf16", no_bf16, "float32 on CUDA");
  app.add_flag("--graph", graph, "sample-run: capture the run in a CUDA graph once, then replay it");
  CLI11_PARSE(app, argc, argv);
  if (batch == 0) batch = mode == "training" ? 32 : 1;
  if (graph && mode != "sample-run") {
    std::fprintf(stderr, "error: --graph applies to --mode sample-run\n");
    return 1;
  }
  if (mode == "sample-run" && batch > 2) {
    std::fprintf(stderr, "error: sample-run takes --batch 1 (unguided) or 2 (guided)\n");
    return 1;
  }

  luminars::configure_threads();
  const torch::Device device = luminars::device_from_name(device_name);
  const bool bf16 = !no_bf16 && device.is_cuda();
  const auto cfg = luminars::Config::preset("default");
  torch::manual_seed(0);
  LuminaRS model(cfg);
  {
    torch::NoGradGuard g;
    for (auto& p : model->parameters())  // non-zero ada/out so every pass does real work
      if (p.abs().max().item<float>() == 0.f) p.normal_(0, 0.02);
  }
  model->to(device);
  const int64_t rows = mode == "training" ? batch : 1;  // sampling: one prompt
  auto x = torch::randn({rows, cfg.latent_channels, side, side}).to(device);
  auto noise = torch::randn_like(x);
  auto t = torch::full({rows}, 0.5f).to(device);
  auto ctx = torch::randn({rows, 77, cfg.text_dim}).to(device);
  auto pooled = torch::randn({rows, cfg.text_dim}).to(device);

  std::function<void()> run;
  luminars::NamedTensors params;
  std::unique_ptr<luminars::AdamW> opt;
  luminars::SampleOptions so;
  std::unique_ptr<luminars::CapturedSampling> captured;
  if (mode == "training") {
    model->train();
    for (const auto& p : model->named_parameters()) params.emplace_back(p.key(), p.value());
    opt = std::make_unique<luminars::AdamW>(params, luminars::AdamWOptions{});
    run = [&] {
      opt->zero_grad();
      torch::Tensor loss;
      {
        luminars::AutocastGuard autocast(bf16, device);
        loss = luminars::flow_matching_loss(model, x, noise, t, ctx, pooled);
      }
      loss.backward();
      opt->step();
    };
  } else {
    model->eval();
    so.steps = steps;
    if (batch == 2) {
      so.guidance.scale = cfg_scale;
      so.guidance.null_ctx = torch::zeros_like(ctx);
      so.guidance.null_pooled = torch::zeros_like(pooled);
    }
    if (bf16) luminars::cast_matmul_weights(model);  // as `luminars generate` loads it on the GPU
    if (graph) {
      if (!device.is_cuda()) {
        std::fprintf(stderr, "error: --graph needs --device cuda\n");
        return 1;
      }
      torch::NoGradGuard no_grad;
      luminars::AutocastGuard autocast(bf16, device);
      // The prompt's keys and values live in the velocity function, the times in the graph.
      captured = std::make_unique<luminars::CapturedSampling>(luminars::guided_velocity(model, ctx, pooled, so.guidance), noise,
                                                              luminars::sample_times(steps));
      run = [&] { captured->run(noise); };
    } else {
      run = [&] {
        luminars::AutocastGuard autocast(bf16, device);
        luminars::sample_flow(model, noise, ctx, pooled, so);
      };
    }
  }

  for (int64_t i = 0; i < warmup; ++i) run();
  synchronize(device);
  reset_peak_cuda();
  std::vector<double> ms;
  for (int64_t i = 0; i < runs; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    run();
    synchronize(device);
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  const double med = median(ms);
  const auto [lo, hi] = std::minmax_element(ms.begin(), ms.end());
  std::printf("%.3f\n", med);  // median ms, alone on the first line
  std::fprintf(stderr, "luminars %s batch %lld %lldx%lld on %s%s%s: median %.2f ms (min %.2f, max %.2f, runs %lld)", mode.c_str(),
               static_cast<long long>(batch), static_cast<long long>(side), static_cast<long long>(side), device.str().c_str(),
               bf16 ? " bf16" : "", graph ? " cuda-graph" : "", med, *lo, *hi, static_cast<long long>(runs));
  if (mode == "training") std::fprintf(stderr, ", %.1f img/s", 1000.0 * static_cast<double>(batch) / med);
  if (device.is_cuda() && peak_cuda_gib() >= 0) std::fprintf(stderr, ", peak %.2f GiB", peak_cuda_gib());
  std::fprintf(stderr, "\n");
  return 0;
}
