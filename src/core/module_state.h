// State dicts of LibTorch modules: the named parameters and buffers by name (loaded by
// core/weight_loader.h).
#pragma once
#include <torch/torch.h>

#include <string>

#include "core/tensor_io.h"

namespace luminars {

// Parameters and buffers in registration order, with their dotted names.
NamedTensors module_state(const torch::nn::Module& module);

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace luminars
