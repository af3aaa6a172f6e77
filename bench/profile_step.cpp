// Where a sampling step's time goes: runs one step of the default denoiser a few times under
// LibTorch's profiler and prints the operators by total time (self time of the top-level ops).
// Usage: build/profile_step [batch=1] [side=32] [bf16=0] [trace.json]
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"
#include <torch/csrc/autograd/profiler_legacy.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/autocast.h"
#include "core/blas_kernels.h"
#include "core/threads.h"

int main(int argc, char** argv) {
  luminars::reexec_with_better_blas_kernels(argv);  // as the `luminars` program (core/blas_kernels.h)
  const int64_t batch = argc > 1 ? std::atoll(argv[1]) : 1, side = argc > 2 ? std::atoll(argv[2]) : 32;
  const bool bf16 = argc > 3 && std::atoi(argv[3]) != 0;
  const std::string trace = argc > 4 ? argv[4] : "";
  luminars::configure_threads();
  torch::manual_seed(0);
  const auto cfg = luminars::Config::preset("default");
  luminars::LuminaRS model(cfg);
  {
    torch::NoGradGuard g;
    for (auto& p : model->parameters())
      if (p.abs().max().item<float>() == 0.f) p.normal_(0, 0.02);
  }
  model->eval();
  auto x = torch::randn({batch, cfg.latent_channels, side, side}), t = torch::full({batch}, 0.5f);
  auto ctx = torch::randn({batch, 77, cfg.text_dim}), pooled = torch::randn({batch, cfg.text_dim});
  c10::InferenceMode guard;
  luminars::AutocastGuard autocast(bf16, torch::kCPU, /*allow_cpu=*/true);
  const auto prompt = model->encode_prompt(ctx, pooled);
  for (int i = 0; i < 2; ++i) model->forward(x, t, prompt);  // warm-up
  const int runs = 3;
  std::ostringstream out;
  {
    torch::autograd::profiler::RecordProfile profile(out);
    for (int i = 0; i < runs; ++i) model->forward(x, t, prompt);
  }
  if (!trace.empty()) std::ofstream(trace) << out.str();
  // Chrome-trace events: sum the durations of the outermost operator calls by name.
  auto events = nlohmann::json::parse(out.str());
  struct Span { double begin, end; std::string name; };
  std::vector<Span> spans;
  for (const auto& e : events)
    if (e.value("ph", "") == "X") spans.push_back({e["ts"].get<double>(), e["ts"].get<double>() + e["dur"].get<double>(), e["name"]});
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) { return a.begin < b.begin || (a.begin == b.begin && a.end > b.end); });
  std::map<std::string, std::pair<double, int>> total;
  double covered_until = -1, all = 0;
  for (const auto& s : spans) {
    if (s.begin < covered_until) continue;  // nested inside an op already counted
    covered_until = s.end;
    total[s.name].first += s.end - s.begin;
    total[s.name].second += 1;
    all += s.end - s.begin;
  }
  std::vector<std::pair<std::string, std::pair<double, int>>> rows(total.begin(), total.end());
  std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
  std::printf("default preset, batch %lld, %lldx%lld latents, %s, %d threads: %.1f ms per step in operators\n",
              static_cast<long long>(batch), static_cast<long long>(side), static_cast<long long>(side),
              bf16 ? "bf16 autocast" : "float32", torch::get_num_threads(), all / 1000.0 / runs);
  for (const auto& [name, v] : rows)
    if (v.first / all > 0.002)
      std::printf("  %6.1f%% %8.2f ms %5d calls  %s\n", 100 * v.first / all, v.first / 1000.0 / runs, v.second / runs, name.c_str());
}
