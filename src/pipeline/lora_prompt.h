// LoRAs named at generation: AUTOMATIC1111's prompt syntax <lora:NAME:WEIGHT> (NAME.safetensors in
// a LoRA folder), FILE[:WEIGHT] arguments, and the folder's listing. Plain text, no LibTorch.
#pragma once
#include <string>
#include <vector>

#include "pipeline/generation.h"
#include "pipeline/image_sizes.h"

namespace luminars {

struct PromptLora {
  std::string name;
  double weight = 1.0;
};

// The prompt without its <lora:NAME> and <lora:NAME:WEIGHT> tags (spaces around a removed tag
// folded into one), and the tags in order. Throws luminars::Error on a weight that is not a finite
// number or an empty name.
std::string strip_lora_tags(const std::string& prompt, std::vector<PromptLora>* found = nullptr);

// DIR/NAME.safetensors; throws naming the LoRA and the folder when it is not there (or when no
// folder is given) and refuses names that leave the folder.
std::string resolve_lora(const std::string& name, const std::string& dir);

// "FILE" or "FILE:WEIGHT" (a weight that is not a finite number is refused).
LoraSpec parse_lora_argument(const std::string& argument);

// The .safetensors files of DIR by name (their stems), sorted; none when DIR is empty or absent.
std::vector<std::string> list_loras(const std::string& dir);

// Where a model folder's LoRAs live by default: MODEL_DIR/loras.
std::string default_lora_dir(const std::string& model_dir);

// The LoRAs a request applies: its prompt's tags (resolved in `lora_dir`), then request.loras, each
// checked (a finite weight, an existing file).
std::vector<LoraSpec> request_loras(const GenerationRequest& request, const std::string& lora_dir);

// `rule` with the picture sides `loras` were trained at added to its trained sizes (a LoRA trained
// in aspect-ratio buckets draws its buckets' shapes); read from the files' headers alone. A rule
// without trained sizes (every size allowed) stays as it is.
SizeRule widen_for_loras(SizeRule rule, const std::vector<LoraSpec>& loras);

// `spec.name`, else the file's stem.
std::string lora_name(const LoraSpec& spec);

}  // namespace luminars
