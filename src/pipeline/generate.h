// `luminars generate`: one request through a low-memory Pipeline (each part loaded when needed and
// released after, so peak memory is the largest part), written as a PNG with its parameters.
#pragma once
#include <cstdint>
#include <optional>
#include <string>

#include "pipeline/generation.h"
#include "pipeline/image_sizes.h"
#include "pipeline/pipeline.h"

namespace luminars {

struct GenerateOptions {
  // The model folder, its overrides, device, precision, tiling and progress bar; keep_loaded is
  // not used (generate loads each part when it is needed).
  PipelineOptions pipeline = [] {
    PipelineOptions p;
    p.device = "auto";
    p.keep_loaded = false;
    p.progress = true;
    return p;
  }();
  GenerationRequest request;             // prompt, sampler settings, seed, batch, size, init image, mask
  std::string out;                       // .png, .jpg or .jpeg path (a grid for batch > 1)
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

// The sizes the model of `options` can draw and was trained at (reads its configs, no weights); a
// LoRA of the request trained with aspect-ratio buckets adds its sides to the trained ones.
SizeRule model_size_rule(const GenerateOptions& options);

}  // namespace luminars
