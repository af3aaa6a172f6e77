// A LoRA file's metadata (model/lora_file.h describes the file), read from its header alone, without
// LibTorch: what the server needs to check a request before any tensor is read.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/safetensors.h"

namespace luminars {

inline constexpr int kLoraFormatVersion = 1;

struct LoraFileInfo {
  int format_version = kLoraFormatVersion;
  int64_t rank = 0;
  double alpha = 0, dropout = 0;
  std::vector<std::string> targets;        // target groups
  std::string base_model, base_hash;       // name and denoiser_weights_hash() of the base
  std::vector<std::string> trigger_words;
  std::string training_data;               // a JSON object (images, captions, resolution, ...) or ""
  int64_t steps = 0;
};

// The file opened as safetensors; throws luminars::Error naming it when it is absent or unreadable.
std::unique_ptr<safetensors::Reader> open_lora_file(const std::string& path);

// The metadata's fields; throws naming the file on a newer format or unreadable values.
LoraFileInfo lora_info_from_metadata(const std::map<std::string, std::string>& meta, const std::string& path);

// The file's metadata alone (its header; no tensor is read or checked).
LoraFileInfo read_lora_info(const std::string& path);

// The picture sides a LoRA was trained at: its training data's resolution and aspect-ratio
// buckets' sides; empty when the file does not record them.
std::vector<int64_t> lora_trained_sides(const LoraFileInfo& info);

}  // namespace luminars
