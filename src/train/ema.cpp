#include "train/ema.h"

#include "core/error.h"
#include "core/weight_loader.h"

namespace luminars {

Ema::Ema(const torch::nn::Module& module, double decay) : decay_(decay) {
  if (decay < 0 || decay >= 1) throw Error("EMA decay must be in [0, 1), got " + std::to_string(decay));
  torch::NoGradGuard no_grad;
  for (const auto& p : module.named_parameters()) weights_.emplace_back(p.key(), p.value().detach().clone());
}

void Ema::update(const torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  auto params = module.named_parameters();
  std::vector<torch::Tensor> w, p;
  for (auto& [name, weight] : weights_) {
    w.push_back(weight);
    p.push_back(params[name]);
  }
  at::_foreach_mul_(w, decay_);  // w = d·w + (1−d)·p, two multi-tensor kernels in all
  at::_foreach_add_(w, p, 1 - decay_);
}

void Ema::copy_to(torch::nn::Module& module) const {
  torch::NoGradGuard no_grad;
  auto params = module.named_parameters();
  for (const auto& [name, w] : weights_) params[name].copy_(w);
}

void Ema::load(const safetensors::Reader& file) {
  WeightLoadOptions options;
  options.what = "EMA tensor";
  load_weights(weights_, file, options);
}

void with_ema_weights(torch::nn::Module& module, const Ema& ema, const std::function<void()>& fn) {
  std::vector<torch::Tensor> saved;
  {
    torch::NoGradGuard no_grad;
    for (const auto& p : module.parameters()) saved.push_back(p.detach().clone());
    ema.copy_to(module);
  }
  auto restore = [&] {
    torch::NoGradGuard no_grad;
    auto params = module.parameters();
    for (std::size_t i = 0; i < params.size(); ++i) params[i].detach().copy_(saved[i]);
  };
  try {
    fn();
  } catch (...) {
    restore();
    throw;
  }
  restore();
}

}  // namespace luminars
