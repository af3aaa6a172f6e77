// Denoiser weights as safetensors with the config in metadata "luminars_config", so any valid
// configuration loads and files move unchanged between this project and the Python reference.
#pragma once
#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>

#include "model/luminars.h"

namespace luminars {

inline constexpr const char* kConfigMetadataKey = "luminars_config";

// Writes every parameter and buffer (F32 by default, or BF16) plus the config, atomically.
void save_denoiser(LuminaRS& model, const std::string& path, torch::Dtype dtype = torch::kFloat32,
                   std::map<std::string, std::string> extra_metadata = {});

// The config stored in a checkpoint's metadata.
Config read_denoiser_config(const std::string& path);

// Builds the model from the file's config and loads it, checking every tensor name and shape.
LuminaRS load_denoiser(const std::string& path, torch::Device device = torch::kCPU);

// Loads weights into an existing model of the same config (names and shapes checked).
void load_denoiser_weights(LuminaRS& model, const std::string& path);

// Under q4_0 export, the denoiser weights that stay in q8_0 (quant::KeepEightBits): the ones 4 bits
// hurt most, chosen on the shipped model (README, "8-bit and 4-bit weights"): convolutions wider
// than 1×1 (stem, head, depthwise 7×7, resampling), the time, text and pooled-text embeddings and
// the projections of the text (cross-attention keys and values), the middle self-attention's
// projections, and the up path's skip fusions.
bool denoiser_keeps_eight_bits(const std::string& name, const torch::Tensor& weight);

}  // namespace luminars
