// Decoding with the published SD3/Flux VAE layout (16 latent channels, random weights) on the CPU
// with every available core: time per image, and peak resident memory (VmHWM) as counters.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <fstream>
#include <memory>
#include <string>

#include "core/threads.h"
#include "vae/autoencoder_kl.h"

namespace {

// A "VmXXX:   1234 kB" line of /proc/self/status, in MB (0 when absent).
double proc_status_mb(const std::string& key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  return 0.0;
}

struct Decoder {
  luminars::AutoencoderKL vae{nullptr};
  double rss_after_build_mb = 0;
};

// One decoder-only VAE for every run, built on first use.
Decoder& decoder() {
  static std::unique_ptr<Decoder> d;
  if (!d) {
    d = std::make_unique<Decoder>();
    torch::manual_seed(0);
    d->vae = luminars::AutoencoderKL(luminars::VaeConfig::preset("sd3"), luminars::VaePart::Decoder);
    d->rss_after_build_mb = proc_status_mb("VmRSS");
  }
  return *d;
}

// Latents [1,16,side,side] -> image [1,3,8·side,8·side].
void BM_VaeDecode(benchmark::State& state) {
  const int threads = luminars::configure_threads();
  const int64_t side = state.range(0);
  auto& d = decoder();
  torch::manual_seed(1);
  auto z = torch::randn({1, d.vae->config().latent_channels, side, side});
  for (auto _ : state) {
    auto image = d.vae->decode(z);
    benchmark::DoNotOptimize(image.data_ptr<float>());
  }
  state.counters["image_side"] = static_cast<double>(side * d.vae->downscale_factor());
  state.counters["threads"] = threads;
  state.counters["decoder_params_M"] = d.vae->total_parameters() / 1e6;
  state.counters["rss_after_build_MB"] = d.rss_after_build_mb;
  state.counters["peak_rss_MB"] = proc_status_mb("VmHWM");
}

// 256×256 (the LuminaRS generation size) first, so its peak is read before the larger run's.
BENCHMARK(BM_VaeDecode)->Arg(32)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime()->MeasureProcessCPUTime();

}  // namespace

