// Nearest-neighbour ×2 upsampling followed by a 3×3 convolution (padding 1, stride 1), computed
// without the 4× larger picture: output pixel (2i+a, 2j+b) sees input rows i−1+a, i+a and columns
// j−1+b, j+b only, so each of the four output phases (a, b) is a 2×2 convolution of the input with
// the 3×3 kernel's taps summed into 2×2. The same function in 16 multiply-adds per 2×2 output
// block instead of 36, and with one phase at a time beside the output instead of the enlarged
// input. Used by the denoiser's Upsample and the VAE's Upsample2D.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace luminars {

class UpsampleConv3x3 {
 public:
  // x [B,I,H,W] (any memory format; the output keeps it), weight [O,I,3,3], bias [O] or undefined
  // -> [B,O,2H,2W]. Without autograd the folded kernels are kept until the weights change.
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

 private:
  const std::vector<torch::Tensor>& kernels(const torch::Tensor& weight);
  std::vector<torch::Tensor> folded_;  // [O,I,2,2] per output phase (a, b), in order 2a+b
  const void* folded_data_ = nullptr;
  int64_t folded_version_ = -1;
  c10::ScalarType folded_dtype_ = c10::ScalarType::Undefined;
};

}  // namespace luminars
