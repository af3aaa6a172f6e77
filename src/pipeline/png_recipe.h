// What `generate --from-png` can take back from a picture: the settings in its `parameters` text
// (written by LuminaRS or AUTOMATIC1111) and what it cannot restore.
#pragma once
#include <string>

#include "pipeline/parameters.h"

namespace luminars {

struct PngRecipe {
  GenerationParameters parameters;
  UnreadParameters unread;   // an unavailable sampler, keys without a setting here
  // Two passes (hires fix, "Hires resize"/"Hires upscale"): Denoising strength is the second pass's.
  bool hires_fix() const { return parameters.first_width > 0; }
  bool image_to_image() const { return parameters.strength.has_value() && !hires_fix(); }
  bool inpainting() const { return parameters.mask_blur.has_value(); }
};

// Reads the PNG's `parameters` text. Throws luminars::Error naming the file when it has none or
// the text cannot be read.
PngRecipe read_png_recipe(const std::string& png_path);

}  // namespace luminars
