// Exponential moving average of the denoiser's weights: ema = d·ema + (1−d)·w after each step.
#pragma once
#include <map>
#include <string>

#include "core/tensor_io.h"
#include "model/luminars.h"

namespace luminars {

class Ema {
 public:
  Ema(LuminaRS& model, double decay);
  void update(LuminaRS& model);
  // Copies the averaged weights into `model` (same config).
  void copy_to(LuminaRS& model) const;
  const NamedTensors& weights() const { return weights_; }
  void load(const std::map<std::string, torch::Tensor>& tensors, const std::string& source);
  double decay() const { return decay_; }

 private:
  double decay_;
  NamedTensors weights_;  // parameters only, float32, by name
};

}  // namespace luminars
