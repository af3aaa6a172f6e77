// Quick start: build the default LuminaRS denoiser and sample one latent in 12 Euler steps,
// as the original's Python quick start does. (Random weights and text embeddings: a real run
// loads a trained checkpoint and encodes a prompt with CLIP.)
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"

#include <iostream>

int main(int argc, char** argv) {
  const std::string preset = argc > 1 ? argv[1] : "default";
  luminars::Config cfg = luminars::Config::preset(preset);
  luminars::LuminaRS model(cfg);
  model->eval();

  auto ctx = torch::randn({1, 77, cfg.text_dim});  // CLIP last hidden state
  auto pooled = torch::randn({1, cfg.text_dim});   // CLIP pooled output
  auto latents = luminars::sample_flow(model, ctx, pooled, {1, cfg.latent_channels, 32, 32}, /*steps=*/12);

  std::cout << "latents " << latents.sizes() << " mean " << latents.mean().item<float>() << " std "
            << latents.std().item<float>() << "\n";
  return latents.isfinite().all().item<bool>() ? 0 : 1;
}
