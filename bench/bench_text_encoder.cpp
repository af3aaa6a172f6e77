// CLIP ViT-L/14 text encoding on the CPU at batch 1 (published size, random weights), with the
// tokenizer's cost beside it when fixtures are present. Counters: peak resident memory (VmHWM).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "core/module_state.h"
#include "core/threads.h"
#include "text/clip_text_model.h"
#include "text/clip_tokenizer.h"

namespace {

using namespace luminars;

// Peak resident set size of this process in MiB (VmHWM of /proc/self/status), 0 when unknown.
double peak_rss_mib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtod(line.c_str() + 6, nullptr) / 1024.0;  // kB
  return 0.0;
}

// A prompt of CLIP's usual length: BOS, 14 tokens, EOS, padding to 77.
torch::Tensor prompt_ids(int64_t batch) {
  auto ids = torch::full({batch, 77}, 49407, torch::kInt64);
  ids.narrow(1, 0, 15).copy_(torch::randint(0, 49406, {batch, 15}, torch::kInt64));
  ids.select(1, 0).fill_(49406);
  return ids;
}

// Arguments: batch, intra-op threads (0 = every available core, luminars::configure_threads()).
void BM_ClipVitL14Text(benchmark::State& state) {
  const int threads = configure_threads(static_cast<int>(state.range(1)));
  torch::NoGradGuard no_grad;
  ClipTextModel model(ClipTextConfig::vit_l14());
  model->init_weights(0);
  model->eval();
  auto ids = prompt_ids(state.range(0));
  model->forward(ids);  // warm-up: first-call allocations
  for (auto _ : state) {
    auto out = model->forward(ids);
    benchmark::DoNotOptimize(out.last_hidden_state.data_ptr());
  }
  state.counters["threads"] = threads;
  state.counters["params_M"] = count_parameters(*model) / 1e6;
  state.counters["peak_rss_MiB"] = peak_rss_mib();
  state.counters["prompts_per_s"] = benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)),
                                                       benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ClipVitL14Text)
    ->ArgNames({"batch", "threads"})
    ->Args({1, 0})  // the default configuration: every available core
    ->Args({1, 1})  // one thread: the reference figure on a machine shared with other work
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// The tokenizer from fixtures/clip_tokenizer ($LUMINARS_FIXTURES or ../shared/fixtures), if present.
void BM_ClipTokenizer(benchmark::State& state) {
  const char* env = std::getenv("LUMINARS_FIXTURES");
  const std::string dir = std::string(env && *env ? env : "../shared/fixtures") + "/clip_tokenizer";
  if (!std::filesystem::exists(dir + "/vocab.json")) {
    state.SkipWithError(("no tokenizer at " + dir).c_str());
    return;
  }
  auto tok = ClipTokenizer::from_dir(dir);
  const std::string prompt = "a watercolor painting of a red fox in the snow, by Hokusai, highly detailed";
  for (auto _ : state) {
    auto ids = tok.encode(prompt);
    benchmark::DoNotOptimize(ids.data());
  }
}
BENCHMARK(BM_ClipTokenizer)->Unit(benchmark::kMicrosecond);

}  // namespace

