// LoRA files: .safetensors in PEFT's layout, one pair per adapted module
//   <module path>.lora_A.weight [r,in]   <module path>.lora_B.weight [out,r]
// ("base_model.model." before the path is accepted on reading, as PEFT writes it), with metadata:
//   luminars_lora_format  the format version (1)
//   r, lora_alpha, lora_dropout, target_modules (JSON list of target groups, model/lora.h)
//   base_model            the base model's name; base_model_sha256: denoiser_weights_hash() of its denoiser
//   trigger_words         JSON list; training_data: JSON summary; training_steps
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "model/lora.h"
#include "model/lora_info.h"

namespace luminars {

struct LoraFile {
  std::string path;
  LoraFileInfo info;
  LoraTensors tensors;  // float32 on the CPU
};

// Writes atomically; info.rank and info.alpha are taken from `tensors`.
void write_lora_file(const std::string& path, const LoraTensors& tensors, LoraFileInfo info);

// Reads and checks the file alone: safetensors, every key a module's lora_A or lora_B weight, each
// with its partner, 2-D (or [.,.,1,1]) shapes that agree with the rank, finite values, readable
// metadata. Throws luminars::Error naming the file and the tensor or key at fault.
LoraFile read_lora_file(const std::string& path);

// SHA-256 over a denoiser file's tensors (names, dtypes, shapes and bytes, by name): the identity
// of its weights, whatever the order or metadata of the file.
std::string denoiser_weights_hash(const std::string& denoiser_path);

// What a LoRA's base_model_sha256 is checked against: denoiser_weights_hash() of the file, or, for
// a model `export` converted from another (another dtype or 8/4-bit scheme, no LoRA merged), the
// identity of the weights it was converted from, which the export records as metadata
// kLoraBaseKey: a LoRA trained on a model applies to its q8_0 or q4_0 export.
inline constexpr const char* kLoraBaseKey = "lora_base_sha256";
std::string denoiser_lora_identity(const std::string& denoiser_path);

// Refuses a LoRA made for another base: the message names both models and both hashes.
// A file without a base hash is accepted.
void check_lora_base(const LoraFile& lora, const std::string& base_name, const std::string& base_hash);

// The first 12 hex digits of the file's SHA-256 (the "Lora hashes" of PNG parameters).
std::string lora_file_short_hash(const std::string& path);

}  // namespace luminars
