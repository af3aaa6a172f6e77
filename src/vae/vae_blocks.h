// Building blocks of the diffusers AutoencoderKL, each named after the diffusers class it mirrors
// and registering the same tensor names. GroupNorm eps 1e-6, SiLU, no time embedding.
// Shapes: B = batch, C = channels, H×W = spatial.
#pragma once
#include <torch/torch.h>

#include <vector>

#include "core/upsample_conv.h"

namespace luminars::vae {

// SiLU of a temporary: in place when autograd is off (inference), saving one activation's memory.
torch::Tensor silu_temporary(torch::Tensor t);
// gn(x), with x first converted to the affine parameters' dtype where they differ (under bf16
// autocast convolutions hand GroupNorm bf16 activations; it needs one dtype for both).
torch::Tensor group_norm(torch::nn::GroupNorm gn, const torch::Tensor& x);

// ResnetBlock2D: norm1, SiLU, conv1, norm2, SiLU, conv2, plus the input (through the 1×1
// conv_shortcut when the width changes). Tensors: norm1, conv1, norm2, conv2[, conv_shortcut]
struct ResnetBlock2DImpl : torch::nn::Module {
  ResnetBlock2DImpl(int64_t c_in, int64_t c_out, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);  // [B,c_in,H,W] -> [B,c_out,H,W]
  torch::nn::GroupNorm norm1{nullptr}, norm2{nullptr};
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv_shortcut{nullptr};
};
TORCH_MODULE(ResnetBlock2D);

// Attention as diffusers builds it for the VAE's mid block: single-head self-attention over the
// H×W positions after a GroupNorm, scale 1/sqrt(C), plus the input.
// Tensors: group_norm, to_q, to_k, to_v, to_out.0 (Linear C -> C with bias).
struct AttentionImpl : torch::nn::Module {
  AttentionImpl(int64_t channels, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);  // [B,C,H,W] -> [B,C,H,W]
  torch::nn::GroupNorm group_norm{nullptr};
  torch::nn::Linear to_q{nullptr}, to_k{nullptr}, to_v{nullptr}, out_proj{nullptr};
  torch::nn::ModuleList to_out;  // .0 = out_proj
};
TORCH_MODULE(Attention);

// Softmax attention of one head, computed in blocks of query rows so the score matrix stays
// small at large resolutions: q [B,N,C], k [B,M,C], v [B,M,C] -> [B,N,C].
torch::Tensor chunked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                double scale, int64_t max_score_elements = int64_t{1} << 24);

// Downsample2D with diffusers' padding 0: zero-pad right and bottom by one, 3×3 stride-2 conv.
// Tensors: conv
struct Downsample2DImpl : torch::nn::Module {
  explicit Downsample2DImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);  // [B,C,H,W] -> [B,C,H/2,W/2]
  torch::nn::Conv2d conv{nullptr};
};
TORCH_MODULE(Downsample2D);

// Upsample2D: nearest ×2, then 3×3 conv. Tensors: conv
struct Upsample2DImpl : torch::nn::Module {
  explicit Upsample2DImpl(int64_t channels);
  torch::Tensor forward(const torch::Tensor& x);  // [B,C,H,W] -> [B,C,2H,2W]
  torch::nn::Conv2d conv{nullptr};
  UpsampleConv3x3 upsample_conv;  // conv(nearest×2(·)) without the enlarged picture
};
TORCH_MODULE(Upsample2D);

// UNetMidBlock2D without time embedding: resnets.0, then [attentions.0,] resnets.1.
struct UNetMidBlock2DImpl : torch::nn::Module {
  UNetMidBlock2DImpl(int64_t channels, int64_t groups, bool add_attention);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ModuleList attentions, resnets;
  std::vector<Attention> attention_list;  // typed views of the lists above
  std::vector<ResnetBlock2D> resnet_list;
};
TORCH_MODULE(UNetMidBlock2D);

// DownEncoderBlock2D: `layers` resnets (c_in -> c_out, then c_out -> c_out), then
// downsamplers.0 unless it is the last level.
struct DownEncoderBlock2DImpl : torch::nn::Module {
  DownEncoderBlock2DImpl(int64_t c_in, int64_t c_out, int64_t layers, int64_t groups, bool add_downsample);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ModuleList resnets, downsamplers{nullptr};
  std::vector<ResnetBlock2D> resnet_list;
  Downsample2D downsample{nullptr};
};
TORCH_MODULE(DownEncoderBlock2D);

// UpDecoderBlock2D: `layers` resnets, then upsamplers.0 unless it is the last level.
struct UpDecoderBlock2DImpl : torch::nn::Module {
  UpDecoderBlock2DImpl(int64_t c_in, int64_t c_out, int64_t layers, int64_t groups, bool add_upsample);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::ModuleList resnets, upsamplers{nullptr};
  std::vector<ResnetBlock2D> resnet_list;
  Upsample2D upsample{nullptr};
};
TORCH_MODULE(UpDecoderBlock2D);

}  // namespace luminars::vae
