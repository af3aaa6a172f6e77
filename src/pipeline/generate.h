// Text to image: encode the prompt, integrate the flow with guidance, decode, write a PNG.
// Components are loaded one after another and released, so peak memory is the largest of them.
#pragma once
#include <torch/torch.h>

#include <optional>
#include <string>
#include <vector>

namespace luminars {

struct GenerateOptions {
  std::string model_dir;                 // a model folder (luminars.json)
  std::string denoiser, text_encoder, tokenizer, vae;  // overrides of the folder's paths
  std::string prompt, negative;          // negative "" = the unconditional prompt
  std::optional<int64_t> steps;          // defaults from luminars.json
  std::optional<double> cfg_scale, shift;
  std::optional<std::string> sampler;    // "euler" | "heun"
  uint64_t seed = 0;
  int64_t batch = 1;
  std::optional<int64_t> size;           // image side in pixels; default the folder's resolution
  std::string out;                       // PNG path (a grid for batch > 1)
  torch::Device device = torch::kCPU;
  bool bf16 = true;                      // bf16 autocast for the denoiser on CUDA (ignored on the CPU)
  bool progress = true;
};

struct GenerateResult {
  torch::Tensor images;  // [B,3,H,W] in [-1,1]
  std::string path;
};

GenerateResult generate(const GenerateOptions& options);

}  // namespace luminars
