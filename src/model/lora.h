// Low-rank adapters (LoRA) on the denoiser: which layers take them, the trainable adapter module,
// attaching adapters to a model (unmerged: the base weights are never written) and merging them
// into a copy of the weights for export.
//   Module paths are the denoiser's parameter names without ".weight" ("unet.down.0.blocks.1.attn.q");
//   the bottleneck self-attention's packed projection in_proj_weight is the path "unet.mid.attn.in_proj".
// Target groups:
//   attn  cross-attention q, kv, out; bottleneck self-attention in_proj, out_proj
//   mlp   the blocks' pointwise MLP (1×1 convolutions mlp_in, mlp_out)
//   ada   the blocks' adaptive-norm projections from the time embedding
//   conv  the 1×1 convolutions outside the blocks: the decoder's skip fusions and unet.out
//   text  the text encoder's self-attention projections (pipeline/text_lora.h), paths
//         "text_encoder.text_model.encoder.layers.N.self_attn.q_proj" as diffusers' PEFT files name them
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/lora_slot.h"
#include "model/luminars.h"

namespace luminars {

struct LoraTarget {
  std::string path;     // module path (see above)
  std::string group;    // attn, mlp, ada, conv or text
  torch::Tensor weight; // the base weight [out,in] or [out,in,1,1] (the model's own tensor)
  LoraSlot* slot = nullptr;
  // From the weight's loaded shape: a weight kept packed (low-memory mode) is empty between uses.
  int64_t in_features() const;
  int64_t out_features() const;
};

// Every layer of `model` that can take an adapter, in the order forward() runs them.
std::vector<LoraTarget> lora_targets(LuminaRS& model);
// Those of `targets` in the given groups; throws naming an unknown group.
std::vector<LoraTarget> select_lora_targets(const std::vector<LoraTarget>& targets, const std::vector<std::string>& groups);
std::vector<LoraTarget> lora_targets(LuminaRS& model, const std::vector<std::string>& groups);
const std::vector<std::string>& lora_target_groups();  // attn, mlp, ada, conv, text
std::vector<std::string> default_lora_groups();        // attn, mlp
inline constexpr const char* kTextLoraPrefix = "text_encoder.";  // the module paths of group text
bool is_text_lora_path(const std::string& path);

// One layer's adapter as trainable parameters: lora_A [r,in] (Kaiming-uniform, as PEFT) and
// lora_B [out,r] (zero: a new adapter changes nothing).
struct LoraLayerImpl : torch::nn::Module {
  LoraLayerImpl(int64_t in, int64_t out, int64_t rank);
  torch::Tensor lora_A, lora_B;
};
TORCH_MODULE(LoraLayer);

struct LoraSettings {
  int64_t rank = 8;
  double alpha = 8;          // scale = alpha / rank
  double dropout = 0.0;      // on each adapter's input while training
  std::vector<std::string> groups = default_lora_groups();
};

// The adapters of a set of layers, trained as one module (parameters layers.N.lora_A / lora_B):
// those of `targets` (the denoiser's, with the text encoder's for group text) in settings.groups.
struct LoraNetworkImpl : torch::nn::Module {
  LoraNetworkImpl(const std::vector<LoraTarget>& targets, const LoraSettings& settings);
  LoraNetworkImpl(LuminaRS& model, const LoraSettings& settings);
  LoraSettings settings;
  std::vector<std::string> paths;  // module path of layers[i]
  torch::nn::ModuleList layers;
  std::vector<LoraLayer> layer_list;
};
TORCH_MODULE(LoraNetwork);

// Adapter weights as read from or written to a LoRA file: module path -> (A, B).
struct LoraTensors {
  std::map<std::string, std::pair<torch::Tensor, torch::Tensor>> layers;
  int64_t rank = 0;
  double alpha = 0;
};
LoraTensors lora_tensors(const LoraNetwork& network);  // copies, float32, on the CPU
// The layers of `lora` whose paths are (text) or are not (!text) the text encoder's.
LoraTensors lora_part(const LoraTensors& lora, bool text);

// Attaches adapters to `model`'s layers (added to any already there): scale = alpha/rank × weight.
// With a network, its parameters themselves are attached (training: gradients reach them).
// Throws naming a module path the model lacks or a shape that does not fit.
void attach_lora(const std::vector<LoraTarget>& targets, const LoraTensors& lora, double weight, const std::string& source);
void attach_lora(const std::vector<LoraTarget>& targets, LoraNetwork& network, double weight = 1.0);
void attach_lora(LuminaRS& model, const LoraTensors& lora, double weight, const std::string& source);
void attach_lora(LuminaRS& model, LoraNetwork& network, double weight = 1.0);
// Every base weight of `model` set not to record gradients (LoRA training: only adapters train).
void freeze_base(LuminaRS& model);
// Removes every adapter from `model` (from `targets`).
void detach_lora(LuminaRS& model);
void detach_lora(const std::vector<LoraTarget>& targets);
// Precomputes each adapted layer's W + Σ scale·B·A beside its weight (core/lora_slot.h): forward
// then costs what the model alone costs. The base weights stay untouched.
void fuse_lora(LuminaRS& model);
// Writes W + Σ scale·B·A into the model's own weights and removes the adapters (export of a merged
// model: call it on a copy loaded for that purpose).
void merge_lora_into_weights(LuminaRS& model);
// The same on a weights file's tensors: each layer's "<path less prefix>.weight" += scale·B·A
// (scale = alpha/rank × weight). Throws naming a layer the tensors lack or a shape that does not fit.
void merge_lora_into_tensors(std::vector<std::pair<std::string, torch::Tensor>>& tensors, const LoraTensors& lora, double weight,
                             const std::string& prefix, const std::string& source);

}  // namespace luminars
