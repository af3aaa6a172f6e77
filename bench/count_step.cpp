// One sampling step of the default denoiser (88.7M parameters, random weights) at a published
// size, for counting instructions under an instruction counter (valgrind --tool=callgrind, or an
// emulator's): the difference between runs of S+1 and S steps is one step's cost, free of start-up
// and loading. A guided step is a batch of 2 (prompt and empty prompt).
// Usage: count_step STEPS [SIDE=256] (SIDE: the picture's side; latents are SIDE/8)
#include "model/config.h"
#include "model/luminars.h"

#include <cstdio>
#include <cstdlib>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: count_step STEPS [SIDE=256]\n");
    return 2;
  }
  const int steps = std::atoi(argv[1]);
  const int64_t side = argc > 2 ? std::atoll(argv[2]) / 8 : 32;
  torch::manual_seed(0);
  const auto cfg = luminars::Config::preset("default");
  luminars::LuminaRS model(cfg);
  model->eval();
  c10::InferenceMode guard;
  auto x = torch::randn({2, cfg.latent_channels, side, side}), t = torch::full({2}, 0.5f);
  auto ctx = torch::randn({2, 77, cfg.text_dim}), pooled = torch::randn({2, cfg.text_dim});
  const auto prompt = model->encode_prompt(ctx, pooled);
  double sum = 0;
  for (int i = 0; i < steps; ++i) sum += model->forward(x, t, prompt).sum().item<double>();
  std::printf("%d steps at %lldx%lld: checksum %g\n", steps, static_cast<long long>(side * 8), static_cast<long long>(side * 8), sum);
  return 0;
}
