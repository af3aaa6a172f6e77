// `luminars generate`: one request through a low-memory Pipeline (each part loaded when needed and
// released after, so peak memory is the largest part), written as a PNG with its parameters.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "pipeline/generation.h"
#include "pipeline/image_sizes.h"

namespace luminars {

struct GenerateOptions {
  std::string model_dir;                 // a model folder (luminars.json)
  std::string denoiser, text_encoder, tokenizer, vae;  // overrides of the folder's paths
  GenerationRequest request;             // prompt, sampler settings, seed, batch, size, init image, mask
  std::string out;                       // .png, .jpg or .jpeg path (a grid for batch > 1)
  std::string device = "auto";
  bool bf16 = true;                      // bf16 autocast on CUDA and on CPUs with native bf16
  bool progress = true;
  int64_t vae_tile = 320;                // decode larger pictures in overlapping tiles; 0 = never
  bool low_memory = false;               // quantized weights stay packed, a block dequantized at a time
  bool any_size = false;                 // draw sizes the model was not trained at (--any-size)
};

struct GenerateResult {
  std::string path;
  int64_t count = 0, width = 0, height = 0;
  std::string parameters;                // the picture's `parameters` text (the first image's, with every seed of a grid)
};

// Refuses a width or height the model was not trained at unless options.any_size; writes the
// format the extension of options.out names (core/image_file.h).
GenerateResult generate(const GenerateOptions& options);

// The sizes the model of `options` can draw and was trained at (reads its configs, no weights).
SizeRule model_size_rule(const GenerateOptions& options);

}  // namespace luminars
