#include "train/adamw.h"

#include <cmath>

#include "core/error.h"

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
  for (std::size_t i = 0; i < params_.size(); ++i) {
    auto& p = params_[i].second;
    if (!p.grad().defined()) continue;
    auto g = p.grad().to(torch::kFloat32);
    p.mul_(1 - o.lr * o.weight_decay);                       // decoupled weight decay
    exp_avg_[i].mul_(o.beta1).add_(g, 1 - o.beta1);          // m = β1·m + (1−β1)·g
    exp_avg_sq_[i].mul_(o.beta2).addcmul_(g, g, 1 - o.beta2);  // v = β2·v + (1−β2)·g²
    auto denom = (exp_avg_sq_[i].sqrt() / std::sqrt(bc2)).add_(o.eps);
    p.addcdiv_(exp_avg_[i], denom, -o.lr / bc1);             // p −= lr/bc1 · m / (√(v/bc2) + ε)
  }
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

void AdamW::load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source) {
  auto get = [&](const std::string& name, const torch::Tensor& like) {
    auto it = state.find(name);
    if (it == state.end()) throw Error(source + ": missing optimizer tensor '" + name + "'");
    if (it->second.sizes() != like.sizes()) throw Error(source + ": optimizer tensor '" + name + "' has the wrong shape");
    return it->second;
  };
  torch::NoGradGuard no_grad;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    exp_avg_[i].copy_(get(params_[i].first + ".exp_avg", exp_avg_[i]));
    exp_avg_sq_[i].copy_(get(params_[i].first + ".exp_avg_sq", exp_avg_sq_[i]));
  }
  auto it = state.find("step");
  if (it == state.end()) throw Error(source + ": missing optimizer tensor 'step'");
  step_ = it->second.item<int64_t>();
}

}  // namespace luminars
