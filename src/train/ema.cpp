#include "train/ema.h"

#include "core/error.h"
#include "core/module_state.h"

namespace luminars {

Ema::Ema(LuminaRS& model, double decay) : decay_(decay) {
  if (decay < 0 || decay >= 1) throw Error("EMA decay must be in [0, 1), got " + std::to_string(decay));
  torch::NoGradGuard no_grad;
  for (const auto& p : model->named_parameters()) weights_.emplace_back(p.key(), p.value().detach().clone());
}

void Ema::update(LuminaRS& model) {
  torch::NoGradGuard no_grad;
  auto params = model->named_parameters();
  std::vector<torch::Tensor> w, p;
  for (auto& [name, weight] : weights_) {
    w.push_back(weight);
    p.push_back(params[name]);
  }
  at::_foreach_mul_(w, decay_);  // w = d·w + (1−d)·p, two multi-tensor kernels in all
  at::_foreach_add_(w, p, 1 - decay_);
}

void Ema::copy_to(LuminaRS& model) const {
  torch::NoGradGuard no_grad;
  auto params = model->named_parameters();
  for (const auto& [name, w] : weights_) params[name].copy_(w);
}

void Ema::load(const std::map<std::string, torch::Tensor>& tensors, const std::string& source) {
  torch::NoGradGuard no_grad;
  for (auto& [name, w] : weights_) {
    auto it = tensors.find(name);
    if (it == tensors.end()) throw Error(source + ": missing EMA tensor '" + name + "'");
    if (it->second.sizes() != w.sizes()) throw Error(source + ": EMA tensor '" + name + "' has the wrong shape");
    w.copy_(it->second);
  }
}

}  // namespace luminars
