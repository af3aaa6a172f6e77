// `luminars generate`: one request through a low-memory Pipeline (each part loaded when needed and
// released after, so peak memory is the largest part), written as a PNG with its parameters.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "pipeline/generation.h"

namespace luminars {

struct GenerateOptions {
  std::string model_dir;                 // a model folder (luminars.json)
  std::string denoiser, text_encoder, tokenizer, vae;  // overrides of the folder's paths
  GenerationRequest request;             // prompt, sampler settings, seed, batch, size, init image, mask
  std::string out;                       // PNG path (a grid for batch > 1)
  std::string device = "cpu";
  bool bf16 = true;                      // bf16 autocast on CUDA and on CPUs with native bf16
  bool progress = true;
  int64_t vae_tile = 320;                // decode larger pictures in overlapping tiles; 0 = never
};

struct GenerateResult {
  std::string path;
  int64_t count = 0, width = 0, height = 0;
  std::string parameters;                // the PNG's `parameters` text (of the first image)
};

GenerateResult generate(const GenerateOptions& options);

// Fills `request` from the `parameters` text chunk of a PNG that LuminaRS (or AUTOMATIC1111) wrote:
// prompt, negative prompt, steps, sampler, guidance, seed, size, strength, shift.
void apply_png_parameters(const std::string& png_path, GenerationRequest& request);

}  // namespace luminars
