// Channel-mixing products of channels-last activations: y[…, :] = W·x[…, :] + b.
#pragma once
#include <torch/torch.h>

namespace luminars {

// x [B,H,W,Cin] or [B,L,Cin] -> [B,H,W,Cout] / [B,L,Cout]; weight [Cout,Cin] or [Cout,Cin,1,1].
// On the CPU in float32 this runs as a 1×1 convolution of the channels-last view: oneDNN's kernels
// do these products about twice as fast as the BLAS matrix product behind torch::linear. In bf16
// (CPU autocast) and on other devices it is torch::linear.
torch::Tensor pointwise(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace luminars
