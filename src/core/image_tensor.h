// Images as tensors: [3,H,W] float in [-1,1] (the VAE's range) and back, and grids of a batch.
#pragma once
#include <torch/torch.h>

#include "core/image.h"

namespace luminars {

torch::Tensor image_to_tensor(const Image& image);  // [3,H,W] float32 in [-1,1]
Image tensor_to_image(const torch::Tensor& t);      // [3,H,W] in [-1,1], clamped
// [B,3,H,W] -> one image of ceil(sqrt(B)) columns with a 2-pixel white gutter.
Image make_grid(const torch::Tensor& batch, int columns = 0);

}  // namespace luminars
