// LibTorch side of safetensors: tensors in and out of files, with dtype conversion.
#pragma once
#include <torch/torch.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/safetensors.h"

namespace luminars {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Copies one tensor out of a mapped file (F16/BF16/F32/F64/I*/U8/BOOL keep their dtype).
torch::Tensor to_tensor(const safetensors::TensorView& view);

// The tensor over the mapped bytes themselves when they are aligned for its dtype (no copy; valid
// while the Reader lives; never write to it), else a copy as to_tensor.
torch::Tensor mapped_tensor(const safetensors::TensorView& view);
// The same, but the tensor keeps `file` (the Reader `view` came from) open for as long as it or a
// view of it lives, so it can outlast the code that opened the file.
torch::Tensor mapped_tensor(const safetensors::TensorView& view, std::shared_ptr<const safetensors::Reader> file);

// Every tensor of a file, floating-point ones converted to `float_dtype` when given.
std::map<std::string, torch::Tensor> load_tensors(const std::string& path,
                                                  std::optional<torch::Dtype> float_dtype = std::nullopt);

// Writes tensors (moved to the CPU, made contiguous); floating-point ones cast to `float_dtype`
// (kFloat32 or kBFloat16, say) when given. Atomic: see safetensors::write.
void save_tensors(const std::string& path, const NamedTensors& tensors,
                  const std::map<std::string, std::string>& metadata = {},
                  std::optional<torch::Dtype> float_dtype = std::nullopt);

torch::Dtype to_torch_dtype(safetensors::DType dtype);
safetensors::DType from_torch_dtype(torch::Dtype dtype);

}  // namespace luminars
