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
  bool bf16 = true;                      // bf16 autocast for the denoiser on CUDA and on CPUs with
                                         // native bf16 (cpu_has_fast_bf16()); float32 elsewhere
  bool progress = true;
  // VAE decoding in overlapping tiles of at most this many image pixels when the picture is larger
  // (peak memory of a ~320² decode at any size); 0 decodes the whole picture at once.
  int64_t vae_tile = 320;
};

struct GenerateResult {
  torch::Tensor images;  // [B,3,H,W] in [-1,1]
  std::string path;
};

GenerateResult generate(const GenerateOptions& options);

}  // namespace luminars
