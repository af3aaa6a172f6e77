// AdamW (decoupled weight decay, PyTorch's update rule) over named parameters, with state that is
// plain tensors by name, so checkpoints hold it as safetensors and resume bit-exactly.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/tensor_io.h"

namespace luminars {

struct AdamWOptions {
  double lr = 1e-4;
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
};

class AdamW {
 public:
  // Only the given parameters are optimised (frozen ones are simply not passed in).
  AdamW(NamedTensors params, AdamWOptions options);

  void zero_grad();
  void step();  // uses options().lr, so a schedule sets it before each step

  AdamWOptions& options() { return options_; }
  int64_t steps_taken() const { return step_; }
  std::vector<std::string> parameter_names() const;
  const NamedTensors& parameters() const { return params_; }

  // "<name>.exp_avg", "<name>.exp_avg_sq" for every parameter, plus "step".
  NamedTensors state() const;
  // Restores state(); every name must be present with its shape.
  // The moments and step count state() wrote, from its file or from memory (`source` names it).
  void load_state(const safetensors::Reader& file);
  void load_state(const std::map<std::string, torch::Tensor>& state, const std::string& source);

 private:
  NamedTensors params_;
  std::vector<torch::Tensor> exp_avg_, exp_avg_sq_;
  AdamWOptions options_;
  int64_t step_ = 0;
};

}  // namespace luminars
