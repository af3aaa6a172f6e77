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
  for (auto& [name, w] : weights_) w.lerp_(params[name], 1 - decay_);  // w += (1−d)(p − w)
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
