// Inpainting masks: a painted picture (white repaints, black keeps) to a soft-edged mask in pixel
// space for the final composite, and its average over each latent pixel for blending latents.
#pragma once
#include <torch/torch.h>

#include "core/image.h"

namespace luminars {

// [1,1,H,W] float32 in [0,1] (the mean of the three channels / 255), box-blurred twice with
// radius `blur` pixels (a soft edge close to a Gaussian); blur 0 leaves it as painted.
torch::Tensor soft_mask(const Image& mask, int64_t blur);

// [1,1,H,W] -> [1,1,H/factor,W/factor]: the mean over each factor × factor cell.
torch::Tensor latent_mask(const torch::Tensor& pixel_mask, int64_t factor);

}  // namespace luminars
