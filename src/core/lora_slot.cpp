#include "core/lora_slot.h"

#include "core/input_stats.h"
#include "core/pointwise.h"

namespace luminars {

void LoraSlot::add(LoraAdapter adapter) {
  adapters_.push_back(std::move(adapter));
  fused_ = torch::Tensor();
}

void LoraSlot::clear() {
  adapters_.clear();
  fused_ = torch::Tensor();
}

torch::Tensor lora_weight_delta(const std::vector<LoraAdapter>& adapters, const torch::Tensor& weight) {
  torch::Tensor sum;
  for (const auto& a : adapters) {
    auto d = torch::mm(a.up.to(torch::kFloat32), a.down.to(torch::kFloat32)) * a.scale;  // [out,in]
    sum = sum.defined() ? sum + d : d;
  }
  return sum.view(weight.sizes());
}

void LoraSlot::fuse(const torch::Tensor& weight) {
  torch::NoGradGuard no_grad;
  fused_ = torch::Tensor();
  if (adapters_.empty()) return;
  fused_ = (weight.to(torch::kFloat32) + lora_weight_delta(adapters_, weight).to(weight.device())).to(weight.dtype());
}

torch::Tensor LoraSlot::delta(const torch::Tensor& x) const {
  torch::Tensor sum;
  for (const auto& a : adapters_) {
    auto in = x;
    if (a.dropout > 0 && torch::GradMode::is_enabled()) in = torch::dropout(in, a.dropout, /*train=*/true);
    auto d = torch::linear(torch::linear(in, a.down), a.up);
    if (a.scale != 1.0) d = d * a.scale;
    sum = sum.defined() ? sum + d : d;
  }
  return sum;
}

torch::Tensor LoraSlot::pointwise(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) const {
  record_input(weight, x);
  if (fused_.defined()) return luminars::pointwise(x, fused_, bias);
  auto y = luminars::pointwise(x, weight, bias);
  if (adapters_.empty()) return y;
  auto d = delta(x);
  return y + d.to(y.scalar_type());
}

torch::Tensor LoraSlot::linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) const {
  record_input(weight, x);
  if (fused_.defined()) return torch::linear(x, fused_.view({fused_.size(0), -1}), bias);
  auto y = torch::linear(x, weight.view({weight.size(0), -1}), bias);
  if (adapters_.empty()) return y;
  auto d = delta(x);
  return y + d.to(y.scalar_type());
}

torch::Tensor LoraSlot::conv1x1(const torch::Tensor& x, torch::nn::Conv2d& conv) const {
  record_input(conv->weight, x.movedim(1, -1));
  if (fused_.defined()) return torch::conv2d(x, fused_, conv->bias);
  auto y = conv(x);
  if (adapters_.empty()) return y;
  auto d = delta(x.permute({0, 2, 3, 1})).permute({0, 3, 1, 2});  // [B,out,H,W]
  return y + d.to(y.scalar_type());
}

}  // namespace luminars
