#include "model/checkpoint.h"

#include "core/error.h"
#include "core/format_version.h"
#include "core/weight_loader.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"

namespace luminars {

void save_denoiser(LuminaRS& model, const std::string& path, torch::Dtype dtype,
                   std::map<std::string, std::string> metadata) {
  metadata[kConfigMetadataKey] = model->config().to_json();
  metadata[kFormatVersionKey] = std::to_string(kFormatVersion);
  save_tensors(path, module_state(*model), metadata, dtype);
}

Config read_denoiser_config(const std::string& path) {
  safetensors::Reader reader(path);
  read_format_version(reader.metadata(), path);
  auto it = reader.metadata().find(kConfigMetadataKey);
  if (it == reader.metadata().end())
    throw Error(path + ": no '" + std::string(kConfigMetadataKey) + "' in the safetensors metadata (not a LuminaRS checkpoint)");
  try {
    return Config::from_json(it->second);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

bool denoiser_keeps_eight_bits(const std::string& name, const torch::Tensor& weight) {
  if (weight.dim() == 4 && weight.size(2) * weight.size(3) > 1) return true;
  for (const char* prefix : {"time_embed.", "context_embed.", "pooled_embed.", "unet.mid.attn."})
    if (name.rfind(prefix, 0) == 0) return true;
  // The up path's skip fusions: the decoder's features and the encoder's they merge.
  if (name.rfind("unet.up.", 0) == 0 && name.find(".skip.") != std::string::npos) return true;
  return name.find(".attn.kv.") != std::string::npos;
}

void load_denoiser_weights(LuminaRS& model, const std::string& path) {
  WeightLoadOptions lo;
  // Low-memory loading keeps the blocks' quantized weights packed (model/unet.cpp opens a
  // quant::WeightScope per block); the small layers around them are dequantized now.
  lo.streamed = [](const std::string& name) {
    return name.find(".blocks.") != std::string::npos || name.rfind("unet.mid.attn.", 0) == 0;
  };
  load_module_state(*model, safetensors::Reader(path), lo);
}

LuminaRS load_denoiser(const std::string& path, torch::Device device) {
  LuminaRS model(read_denoiser_config(path));
  load_denoiser_weights(model, path);
  model->to(device);
  return model;
}

}  // namespace luminars
