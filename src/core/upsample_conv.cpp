#include "core/upsample_conv.h"

#include "core/autocast.h"

namespace luminars {

const std::vector<torch::Tensor>& UpsampleConv3x3::kernels(const torch::Tensor& w) {
  // Tap sums per phase: phase 0 takes (k0, k1+k2), phase 1 (k0+k1, k2), along rows and columns.
  auto fold = [](const torch::Tensor& k, int64_t dim, int64_t phase) {
    auto k0 = k.select(dim, 0), k1 = k.select(dim, 1), k2 = k.select(dim, 2);
    return phase == 0 ? torch::stack({k0, k1 + k2}, dim) : torch::stack({k0 + k1, k2}, dim);
  };
  auto compute = [&] {
    std::vector<torch::Tensor> k;
    for (int64_t a = 0; a < 2; ++a) {
      auto wa = fold(w, 2, a);
      for (int64_t b = 0; b < 2; ++b) k.push_back(fold(wa, 3, b));
    }
    return k;
  };
  if (torch::GradMode::is_enabled()) {  // training: through autograd, every call
    folded_ = compute();
    folded_data_ = nullptr;
    return folded_;
  }
  // Without autograd: once per weight version, already in the dtype autocast would cast it to.
  const bool autocast = w.is_cuda() ? AutocastGuard::enabled_on_cuda() : AutocastGuard::enabled_on_cpu();
  const auto dtype = autocast ? torch::kBFloat16 : w.scalar_type();
  if (folded_data_ != w.data_ptr() || folded_version_ != static_cast<int64_t>(w._version()) || folded_dtype_ != dtype) {
    folded_ = compute();
    for (auto& k : folded_) k = k.to(dtype);
    folded_data_ = w.data_ptr();
    folded_version_ = static_cast<int64_t>(w._version());
    folded_dtype_ = dtype;
  }
  return folded_;
}

torch::Tensor UpsampleConv3x3::operator()(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  const int64_t B = x.size(0), H = x.size(2), W = x.size(3), O = weight.size(0);
  const bool channels_last = x.is_contiguous(torch::MemoryFormat::ChannelsLast) && !x.is_contiguous();
  const auto format = channels_last ? torch::MemoryFormat::ChannelsLast : torch::MemoryFormat::Contiguous;
  const auto& k = kernels(weight);
  auto padded = torch::constant_pad_nd(x, {1, 1, 1, 1}).contiguous(format);  // [B,I,H+2,W+2]
  torch::Tensor out, phases;  // phases: out as [B,H,2,W,2,O] (channels-last) or [B,O,H,2,W,2]
  for (int64_t a = 0; a < 2; ++a)
    for (int64_t b = 0; b < 2; ++b) {
      auto window = padded.slice(2, a, a + H + 1).slice(3, b, b + W + 1);  // [B,I,H+1,W+1]
      auto p = torch::conv2d(window, k[2 * a + b], bias);                  // [B,O,H,W]
      if (!out.defined()) {
        out = torch::empty({B, O, 2 * H, 2 * W}, p.options().memory_format(format));
        phases = channels_last ? out.permute({0, 2, 3, 1}).view({B, H, 2, W, 2, O}) : out.view({B, O, H, 2, W, 2});
      }
      if (channels_last)
        phases.select(2, a).select(3, b).copy_(p.permute({0, 2, 3, 1}));  // out[:, 2i+a, 2j+b, :] = p[:, :, i, j]
      else
        phases.select(3, a).select(4, b).copy_(p);
    }
  return out;
}

}  // namespace luminars
