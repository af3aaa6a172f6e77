#include "core/image_tensor.h"

#include <cmath>

#include "core/error.h"

namespace luminars {

torch::Tensor image_to_tensor(const Image& image) {
  auto t = torch::from_blob(const_cast<uint8_t*>(image.rgb.data()), {image.height, image.width, 3}, torch::kUInt8);
  return t.permute({2, 0, 1}).to(torch::kFloat32).div(127.5).sub(1.0).contiguous();
}

Image tensor_to_image(const torch::Tensor& t) {
  if (t.dim() != 3 || t.size(0) != 3) throw Error("tensor_to_image: expected [3,H,W]");
  auto u = t.detach().to(torch::kCPU, torch::kFloat32).add(1.0).mul(127.5).round().clamp(0, 255).to(torch::kUInt8);
  u = u.permute({1, 2, 0}).contiguous();
  Image img;
  img.height = static_cast<int>(t.size(1));
  img.width = static_cast<int>(t.size(2));
  img.rgb.assign(u.data_ptr<uint8_t>(), u.data_ptr<uint8_t>() + u.numel());
  return img;
}

Image make_grid(const torch::Tensor& batch, int columns) {
  if (batch.dim() != 4 || batch.size(1) != 3) throw Error("make_grid: expected [B,3,H,W]");
  const int64_t n = batch.size(0), h = batch.size(2), w = batch.size(3), gap = 2;
  if (columns <= 0) columns = static_cast<int>(std::ceil(std::sqrt(static_cast<double>(n))));
  const int64_t rows = (n + columns - 1) / columns;
  auto grid = torch::ones({3, rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap});
  for (int64_t i = 0; i < n; ++i) {
    int64_t r = i / columns, c = i % columns;
    grid.narrow(1, r * (h + gap), h).narrow(2, c * (w + gap), w).copy_(batch[i].detach().to(torch::kCPU, torch::kFloat32));
  }
  return tensor_to_image(grid);
}

}  // namespace luminars
