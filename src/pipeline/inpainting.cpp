#include "pipeline/inpainting.h"

#include "core/error.h"

namespace luminars {

namespace F = torch::nn::functional;

torch::Tensor soft_mask(const Image& mask, int64_t blur) {
  if (mask.empty()) throw Error("the mask is empty");
  auto px = torch::from_blob(const_cast<uint8_t*>(mask.rgb.data()), {mask.height, mask.width, 3}, torch::kUInt8);
  auto m = px.to(torch::kFloat32).mean(2).div(255.0).view({1, 1, mask.height, mask.width});
  if (blur > 0) {
    const int64_t k = 2 * blur + 1;
    auto box = F::AvgPool2dFuncOptions(k).stride(1).padding(blur).count_include_pad(false);
    for (int pass = 0; pass < 2; ++pass) m = F::avg_pool2d(m, box);  // edges average what is inside
  }
  return m.clamp(0, 1).contiguous();
}

torch::Tensor latent_mask(const torch::Tensor& pixel_mask, int64_t factor) {
  if (pixel_mask.size(2) % factor != 0 || pixel_mask.size(3) % factor != 0)
    throw Error("latent_mask: the mask's size is not a multiple of " + std::to_string(factor));
  return F::avg_pool2d(pixel_mask, F::AvgPool2dFuncOptions(factor));
}

}  // namespace luminars
