// State dicts of LibTorch modules: the named parameters and buffers, read and written by name.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>

#include "core/tensor_io.h"

namespace luminars {

// Parameters and buffers in registration order, with their dotted names.
NamedTensors module_state(const torch::nn::Module& module);

// Copies `tensors` into the module's parameters and buffers, converting dtype and device.
// Every parameter and buffer must be present with its exact shape; a tensor the module lacks is an
// error unless `allow_unexpected`. Errors name `source` and the first tensor at fault.
void load_module_state(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                       const std::string& source, bool allow_unexpected = false);

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace luminars
