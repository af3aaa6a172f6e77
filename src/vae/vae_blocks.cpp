#include "vae/vae_blocks.h"

#include <algorithm>
#include <cmath>

namespace luminars::vae {

namespace nn = torch::nn;

namespace {

constexpr double kEps = 1e-6;

nn::GroupNorm make_group_norm(int64_t groups, int64_t channels) {
  return nn::GroupNorm(nn::GroupNormOptions(groups, channels).eps(kEps));
}

nn::Conv2d conv3x3(int64_t c_in, int64_t c_out) {
  return nn::Conv2d(nn::Conv2dOptions(c_in, c_out, /*kernel_size=*/3).padding(1));
}

}  // namespace

torch::Tensor group_norm(torch::nn::GroupNorm gn, const torch::Tensor& x) {
  const auto& w = gn->weight;
  return gn(w.defined() && x.scalar_type() != w.scalar_type() ? x.to(w.scalar_type()) : x);
}

torch::Tensor silu_temporary(torch::Tensor t) {
  return torch::GradMode::is_enabled() ? torch::silu(t) : torch::silu_(t);
}

// ---------------------------------------------------------------------------------------------
// ResnetBlock2D
// ---------------------------------------------------------------------------------------------
ResnetBlock2DImpl::ResnetBlock2DImpl(int64_t c_in, int64_t c_out, int64_t groups) {
  norm1 = register_module("norm1", make_group_norm(groups, c_in));
  conv1 = register_module("conv1", conv3x3(c_in, c_out));
  norm2 = register_module("norm2", make_group_norm(groups, c_out));
  conv2 = register_module("conv2", conv3x3(c_out, c_out));
  if (c_in != c_out)
    conv_shortcut = register_module("conv_shortcut", nn::Conv2d(nn::Conv2dOptions(c_in, c_out, /*kernel_size=*/1)));
}

torch::Tensor ResnetBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = conv1(silu_temporary(group_norm(norm1, x)));
  h = conv2(silu_temporary(group_norm(norm2, h)));
  return (conv_shortcut ? conv_shortcut(x) : x) + h;
}

// ---------------------------------------------------------------------------------------------
// Attention
// ---------------------------------------------------------------------------------------------
AttentionImpl::AttentionImpl(int64_t c, int64_t groups) {
  group_norm = register_module("group_norm", make_group_norm(groups, c));
  to_q = register_module("to_q", nn::Linear(c, c));
  to_k = register_module("to_k", nn::Linear(c, c));
  to_v = register_module("to_v", nn::Linear(c, c));
  out_proj = nn::Linear(c, c);
  to_out->push_back(out_proj);  // diffusers' to_out = [Linear, Dropout]; the dropout has no tensors
  to_out = register_module("to_out", to_out);
}

torch::Tensor chunked_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double scale,
                                int64_t max_score_elements) {
  const int64_t B = q.size(0), N = q.size(1), M = k.size(1);
  const auto kt = k.transpose(1, 2);  // [B,C,M]
  const int64_t rows = std::max<int64_t>(1, max_score_elements / std::max<int64_t>(1, B * M));
  if (rows >= N) return torch::bmm(torch::softmax(torch::bmm(q, kt) * scale, -1), v);
  auto out = torch::empty({B, N, v.size(2)}, v.options());
  for (int64_t i = 0; i < N; i += rows) {
    const int64_t n = std::min(rows, N - i);
    auto scores = torch::bmm(q.narrow(1, i, n), kt) * scale;  // [B,n,M]
    out.narrow(1, i, n).copy_(torch::bmm(torch::softmax(scores, -1), v));
  }
  return out;
}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x) {
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  auto h = vae::group_norm(group_norm, x).view({B, C, H * W}).transpose(1, 2);  // [B,HW,C]
  auto a = chunked_attention(to_q(h), to_k(h), to_v(h), 1.0 / std::sqrt(static_cast<double>(C)));  // [B,HW,C]
  return out_proj(a).transpose(1, 2).reshape({B, C, H, W}) + x;
}

// ---------------------------------------------------------------------------------------------
// Downsample2D / Upsample2D
// ---------------------------------------------------------------------------------------------
Downsample2DImpl::Downsample2DImpl(int64_t c) {
  conv = register_module("conv", nn::Conv2d(nn::Conv2dOptions(c, c, /*kernel_size=*/3).stride(2).padding(0)));
}

torch::Tensor Downsample2DImpl::forward(const torch::Tensor& x) {
  return conv(torch::constant_pad_nd(x, {0, 1, 0, 1}, 0));  // pad (left 0, right 1, top 0, bottom 1)
}

Upsample2DImpl::Upsample2DImpl(int64_t c) { conv = register_module("conv", conv3x3(c, c)); }

torch::Tensor Upsample2DImpl::forward(const torch::Tensor& x) {
  return upsample_conv(x, conv->weight, conv->bias);  // = conv(nearest×2(x)), see core/upsample_conv.h
}

// ---------------------------------------------------------------------------------------------
// UNetMidBlock2D (diffusers registers attentions before resnets)
// ---------------------------------------------------------------------------------------------
UNetMidBlock2DImpl::UNetMidBlock2DImpl(int64_t c, int64_t groups, bool add_attention) {
  if (add_attention) {
    attention_list.push_back(Attention(c, groups));
    attentions->push_back(attention_list.back());
    attentions = register_module("attentions", attentions);
  }
  for (int i = 0; i < 2; ++i) {
    resnet_list.push_back(ResnetBlock2D(c, c, groups));
    resnets->push_back(resnet_list.back());
  }
  resnets = register_module("resnets", resnets);
}

torch::Tensor UNetMidBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = resnet_list[0](x);
  if (!attention_list.empty()) h = attention_list[0](h);
  return resnet_list[1](h);
}

// ---------------------------------------------------------------------------------------------
// DownEncoderBlock2D / UpDecoderBlock2D
// ---------------------------------------------------------------------------------------------
DownEncoderBlock2DImpl::DownEncoderBlock2DImpl(int64_t c_in, int64_t c_out, int64_t layers, int64_t groups,
                                               bool add_downsample) {
  for (int64_t i = 0; i < layers; ++i) {
    resnet_list.push_back(ResnetBlock2D(i == 0 ? c_in : c_out, c_out, groups));
    resnets->push_back(resnet_list.back());
  }
  resnets = register_module("resnets", resnets);
  if (add_downsample) {
    downsample = Downsample2D(c_out);
    downsamplers = register_module("downsamplers", nn::ModuleList(downsample));
  }
}

torch::Tensor DownEncoderBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = x;
  for (auto& r : resnet_list) h = r(h);
  return downsample ? downsample(h) : h;
}

UpDecoderBlock2DImpl::UpDecoderBlock2DImpl(int64_t c_in, int64_t c_out, int64_t layers, int64_t groups,
                                           bool add_upsample) {
  for (int64_t i = 0; i < layers; ++i) {
    resnet_list.push_back(ResnetBlock2D(i == 0 ? c_in : c_out, c_out, groups));
    resnets->push_back(resnet_list.back());
  }
  resnets = register_module("resnets", resnets);
  if (add_upsample) {
    upsample = Upsample2D(c_out);
    upsamplers = register_module("upsamplers", nn::ModuleList(upsample));
  }
}

torch::Tensor UpDecoderBlock2DImpl::forward(const torch::Tensor& x) {
  auto h = x;
  for (auto& r : resnet_list) h = r(h);
  return upsample ? upsample(h) : h;
}

}  // namespace luminars::vae
