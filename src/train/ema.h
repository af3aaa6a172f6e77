// Exponential moving average of a module's weights: ema = d·ema + (1−d)·w after each step. Any
// trained module (denoiser, VAE, CLIP) is averaged the same way.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <string>

#include "core/tensor_io.h"

namespace luminars {

class Ema {
 public:
  Ema(const torch::nn::Module& module, double decay);
  void update(const torch::nn::Module& module);
  // Copies the averaged weights into `module` (the same architecture).
  void copy_to(torch::nn::Module& module) const;
  const NamedTensors& weights() const { return weights_; }
  // The averaged weights from a file the trainer wrote (ema.safetensors: every parameter, nothing else).
  void load(const safetensors::Reader& file);
  double decay() const { return decay_; }

 private:
  double decay_;
  NamedTensors weights_;  // parameters only, float32, by name
};

// Runs `fn` with the EMA weights in `module`, then puts the trained weights back (also on a throw).
void with_ema_weights(torch::nn::Module& module, const Ema& ema, const std::function<void()>& fn);

}  // namespace luminars
