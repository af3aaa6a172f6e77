// What one generation asks for and what it gives back: text-to-image, image-to-image (an init image
// and a strength) and inpainting (an init image and a mask). Plain data without LibTorch, so the
// server's request parsing and the public header stay light.
#pragma once
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/image.h"
#include "pipeline/parameters.h"

namespace luminars {

// A LoRA file applied at generation (model/lora_file.h), with its weight (negative: the style
// pushed away). `name` is how PNG parameters record it ("" = the file's stem).
struct LoraSpec {
  std::string path;
  double weight = 1.0;
  std::string name;
};

struct GenerationRequest {
  std::string prompt, negative;          // negative "" = the unconditional prompt
  std::optional<int64_t> steps;          // unset: the model folder's defaults (luminars.json)
  std::optional<double> cfg_scale, shift;
  std::optional<std::string> sampler;    // "euler" | "heun"
  uint64_t seed = 0;                     // image i of the batch uses seed + i
  int64_t batch = 1;
  std::optional<int64_t> width, height;  // pixels; unset: the init image's size, else the model's resolution

  // Image-to-image: the flow starts from the init image's latent interpolated with noise at
  // t = 1 − strength (strength 1: pure noise, as text-to-image; → 0: the init image back).
  std::optional<Image> init_image;       // fitted to width × height (scaled to cover, centre-cropped)
  double strength = 0.75;
  // Inpainting (with init_image): white repaints, black keeps; the size of init_image. The known
  // region is re-imposed after every step and the picture is composited with a soft edge.
  std::optional<Image> mask;
  int64_t mask_blur = 4;                 // soft edge, in pixels

  // Two passes for pictures larger than the model draws best ("hires fix", AUTOMATIC1111's
  // enable_hr): text-to-image at hires_from pixels (the longer side; the other in proportion),
  // then the pictures upscaled to width × height and redrawn as image-to-image at hires_strength,
  // each from the same seed. Unset: the model folder's sampler.hires_fix; 0: one pass. Requests
  // with an init image draw in one pass.
  std::optional<int64_t> hires_from;
  std::optional<double> hires_strength;
  // A request's own hires_from may start at a size the model was not trained at (generate and
  // serve --any-size); otherwise that first pass is refused. A folder's default always keeps to
  // trained sizes (one pass where none fits).
  bool hires_any_size = false;

  // LoRAs besides those the prompt names as <lora:NAME:WEIGHT> (PipelineOptions::lora_dir).
  std::vector<LoraSpec> loras;

  std::function<void(int64_t step, int64_t steps)> on_step;  // after each sampling step
  std::function<bool()> cancelled;       // polled after each step; true stops with Cancelled
};

struct Generation {
  std::vector<Image> images;                    // one per batch item
  std::vector<GenerationParameters> parameters; // one per image (its own seed), as written in PNGs
};

// Thrown when GenerationRequest::cancelled() answered true.
class Cancelled : public Error {
 public:
  Cancelled() : Error("generation cancelled") {}
};

}  // namespace luminars
