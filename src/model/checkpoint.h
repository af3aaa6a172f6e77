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

}  // namespace luminars
