// The one weight loader: every component (denoiser, VAE, CLIP, text encoder) and every file the
// project reads weights from (model folders, training checkpoints, EMA copies, optimizer state)
// goes through load_weights.
//
// - Streaming: from a safetensors file each tensor is read in place from the memory map (or
//   dequantized when q8_0/q4_0), copied into its target and its mapped pages dropped, so peak
//   memory stays near the targets' own size instead of twice it.
// - A name map: `rename` maps a name in the file to the target's ("" skips the tensor).
// - A dtype policy: floating-point values (F16, BF16, F32, F64, q8_0, q4_0) are converted into the
//   target's dtype; integer and boolean tensors only fill integer or boolean targets.
// - Strict or partial: by default every target must be present with its exact shape and nothing
//   may be left over; `allow_missing` / `allow_unexpected` relax either. Errors list every missing
//   and unexpected name (and the first wrong shape or dtype), naming the file; the report lists
//   what a partial load left out.
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/module_state.h"
#include "core/tensor_io.h"

namespace luminars {

struct WeightLoadOptions {
  bool allow_missing = false;     // targets the source lacks keep their values
  bool allow_unexpected = false;  // tensors no target takes are ignored
  // File name -> target name; "" skips the tensor. Default: unchanged.
  std::function<std::string(const std::string&)> rename;
  // May reshape a tensor (by target name) before the shape check and copy.
  std::function<torch::Tensor(const std::string&, torch::Tensor)> adapt;
  // Targets (by name) that stay packed when quantized in the file and a quant::KeepPacked guard
  // is active: dequantized only inside a quant::WeightScope (core/streamed_weights.h).
  std::function<bool(const std::string&)> streamed;
  // What the tensors are, for messages ("tensor", "EMA tensor", "optimizer tensor").
  std::string what = "tensor";
};

// What a load did: target names filled, targets the source lacked, source names no target took.
struct WeightLoadReport {
  std::vector<std::string> loaded, missing, unexpected;
};

// Fills `targets` (tensors shared with their owner: parameters, buffers, EMA copies, optimizer
// moments) from a safetensors file, or from tensors in memory (`source` names them in errors).
// A load that throws after the checks leaves the targets half-filled; the checks (names, shapes,
// dtypes) all run before the first copy.
WeightLoadReport load_weights(const NamedTensors& targets, const safetensors::Reader& file,
                              const WeightLoadOptions& options = {});
WeightLoadReport load_weights(const NamedTensors& targets, const std::map<std::string, torch::Tensor>& tensors,
                              const std::string& source, const WeightLoadOptions& options = {});

// A module's parameters and buffers (module_state) as the targets.
WeightLoadReport load_module_state(torch::nn::Module& module, const safetensors::Reader& file,
                                   const WeightLoadOptions& options = {});
WeightLoadReport load_module_state(torch::nn::Module& module, const std::map<std::string, torch::Tensor>& tensors,
                                   const std::string& source, const WeightLoadOptions& options = {});

}  // namespace luminars
