// State dicts of LibTorch modules: the named parameters and buffers, read and written by name.
#pragma once
#include <torch/torch.h>

#include <functional>
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

// The same straight from a safetensors file, tensor by tensor: each is copied into its parameter
// (converting dtype) and its mapped pages dropped, so peak memory stays near the module's own size
// instead of twice it. `rename` maps a name in the file to the module's (return "" to skip the
// tensor; default: unchanged); `adapt` may reshape a tensor before the shape check and copy.
struct FileLoadOptions {
  bool allow_unexpected = false;
  std::function<std::string(const std::string&)> rename;
  std::function<torch::Tensor(const std::string&, torch::Tensor)> adapt;
  // Weights (module names) that stay packed when quantized in the file and a quant::KeepPacked
  // guard is active: dequantized only inside a quant::WeightScope (core/streamed_weights.h).
  std::function<bool(const std::string&)> streamed;
};
void load_module_state(torch::nn::Module& module, const safetensors::Reader& file, const FileLoadOptions& options = {});

int64_t count_parameters(const torch::nn::Module& module);

}  // namespace luminars
