#include "train/adamw.h"

#include <cmath>

#include "core/error.h"
#include "core/weight_loader.h"
#include "train/adamw_kernel.h"

namespace luminars {

AdamW::AdamW(NamedTensors params, AdamWOptions options) : params_(std::move(params)), options_(options) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, p] : params_) {
    exp_avg_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve).to(torch::kFloat32));
    exp_avg_sq_.push_back(torch::zeros_like(p, torch::MemoryFormat::Preserve).to(torch::kFloat32));
  }
}

void AdamW::zero_grad() {
  for (auto& [name, p] : params_)
    if (p.mutable_grad().defined()) p.mutable_grad().zero_();
}

void AdamW::step() {
  torch::NoGradGuard no_grad;
  ++step_;
  const auto& o = options_;
  const double bc1 = 1 - std::pow(o.beta1, static_cast<double>(step_));
  const double bc2 = 1 - std::pow(o.beta2, static_cast<double>(step_));
  std::vector<torch::Tensor> p, g, m, v;
  bool one_pass = true;  // every tensor float32, contiguous, on the CPU
  for (std::size_t i = 0; i < params_.size(); ++i) {
    const auto& param = params_[i].second;
    if (!param.grad().defined()) continue;
    p.push_back(param);
    g.push_back(param.grad().to(torch::kFloat32).contiguous());
    m.push_back(exp_avg_[i]);
    v.push_back(exp_avg_sq_[i]);
    for (const auto* t : {&p.back(), &m.back(), &v.back()})
      one_pass = one_pass && t->device().is_cpu() && t->scalar_type() == torch::kFloat32 && t->is_contiguous();
  }
  if (p.empty()) return;
  if (one_pass) {  // train/adamw_kernel.h: each element read and written once
    AdamWCoefficients c;
    c.decay = static_cast<float>(1 - o.lr * o.weight_decay);
    c.beta1 = static_cast<float>(o.beta1);
    c.one_minus_beta1 = static_cast<float>(1 - o.beta1);
    c.beta2 = static_cast<float>(o.beta2);
    c.one_minus_beta2 = static_cast<float>(1 - o.beta2);
    c.sqrt_bc2 = static_cast<float>(std::sqrt(bc2));
    c.eps = static_cast<float>(o.eps);
    c.step = static_cast<float>(-o.lr / bc1);
    for (std::size_t i = 0; i < p.size(); ++i) {
      adamw_update(p[i].data_ptr<float>(), g[i].data_ptr<float>(), m[i].data_ptr<float>(), v[i].data_ptr<float>(), p[i].numel(), c);
      torch::autograd::impl::bump_version(p[i]);  // written in place, as an in-place operator would
    }
    return;
  }
  // Elsewhere (CUDA, strided tensors) one multi-tensor (foreach) kernel per line over every
  // parameter with a gradient: on CUDA a handful of launches per step instead of ~10 per tensor.
  at::_foreach_mul_(p, 1 - o.lr * o.weight_decay);    // decoupled weight decay
  at::_foreach_mul_(m, o.beta1);                      // m = β1·m + (1−β1)·g
  at::_foreach_add_(m, g, 1 - o.beta1);
  at::_foreach_mul_(v, o.beta2);                      // v = β2·v + (1−β2)·g²
  at::_foreach_addcmul_(v, g, g, 1 - o.beta2);
  auto denom = at::_foreach_sqrt(v);                  // √(v/bc2) + ε
  at::_foreach_div_(denom, std::sqrt(bc2));
  at::_foreach_add_(denom, o.eps);
  at::_foreach_addcdiv_(p, m, denom, -o.lr / bc1);    // p −= lr/bc1 · m / (√(v/bc2) + ε)
}

std::vector<std::string> AdamW::parameter_names() const {
  std::vector<std::string> names;
  for (const auto& [name, p] : params_) names.push_back(name);
  return names;
}

NamedTensors AdamW::state() const {
  NamedTensors out;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    out.emplace_back(params_[i].first + ".exp_avg", exp_avg_[i]);
    out.emplace_back(params_[i].first + ".exp_avg_sq", exp_avg_sq_[i]);
  }
  out.emplace_back("step", torch::tensor({step_}, torch::kInt64));
  return out;
}

namespace {
WeightLoadOptions optimizer_tensors() {
  WeightLoadOptions options;
  options.what = "optimizer tensor";
  return options;
}
}  // namespace

// state()'s tensors are the targets: the moments themselves, and a fresh step tensor read back.
void AdamW::load_state(const safetensors::Reader& file) {
  auto targets = state();
  load_weights(targets, file, optimizer_tensors());
  step_ = targets.back().second.item<int64_t>();
}

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state_tensors, const std::string& source) {
  auto targets = state();
  load_weights(targets, state_tensors, source, optimizer_tensors());
  step_ = targets.back().second.item<int64_t>();
}

}  // namespace luminars
