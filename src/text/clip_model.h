// A trainable CLIP (text and image towers) in Hugging Face's CLIPModel layout: the state dict holds
// exactly CLIPModel's keys (text_model.*, text_projection.weight, vision_model.*,
// visual_projection.weight, logit_scale), config.json is a CLIPConfig, so a saved folder loads in
// transformers unchanged. Shapes: B = batch, L = tokens, S = image_size, P = projection_dim.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "text/clip_text_model.h"
#include "text/clip_vision_model.h"

namespace luminars {

class ClipTokenizer;

struct ClipConfig {
  ClipTextConfig text;                     // "text_config"; with_projection is always true here
  ClipVisionConfig vision;                 // "vision_config"
  int64_t projection_dim = 512;            // both projections' output (overrides the towers' own)
  double logit_scale_init_value = 2.6592;  // ln(1 / 0.07), CLIP's initial temperature
  double initializer_factor = 1.0;         // scales every init std (HF initializer_factor)

  // Throws luminars::Error naming the field at fault (the towers' fields prefixed by text_config /
  // vision_config). The towers' own projection_dim and with_projection are not used: ClipModel and
  // to_json take projection_dim from here.
  void validate() const;
  // A Hugging Face CLIPConfig ("text_config" and "vision_config" objects are required; other
  // fields take CLIPConfig's defaults); `source` names it in errors.
  static ClipConfig from_json(const std::string& text, const std::string& source = "config.json");
  static ClipConfig from_file(const std::string& path);
  // {"architectures": ["CLIPModel"], "model_type": "clip", "projection_dim", "logit_scale_init_value",
  //  "initializer_factor", "text_config": {...}, "vision_config": {...}} with every field.
  std::string to_json() const;
};

// The text side of a CLIPConfig as a stand-alone CLIPTextModelWithProjection config.json.
std::string clip_text_config_json(const ClipTextConfig& text);

// Tensors: text_model.*, vision_model.*, visual_projection.weight [P,Dv], text_projection.weight
// [P,Dt], logit_scale [] (a 0-dim parameter).
struct ClipModelImpl : torch::nn::Module {
  // Parameters are uninitialised (see init_weights) and frozen until set_trainable().
  explicit ClipModelImpl(const ClipConfig& config, const torch::TensorOptions& options = {});

  // HF get_text_features: input_ids int64 [B,L] (L <= max_position_embeddings) -> text_embeds [B,P],
  // not normalised. Pooled at the first eos_token_id (the largest id for the legacy eos 2).
  torch::Tensor encode_text(const torch::Tensor& input_ids);
  // HF get_image_features: pixels [B,C,S,S] (see preprocess) -> image_embeds [B,P], not normalised.
  torch::Tensor encode_image(const torch::Tensor& pixels);
  // images [B,3,H,W] in [-1,1] (core/image_tensor.h) -> pixels [B,3,S,S] with this model's processor.
  torch::Tensor preprocess(const torch::Tensor& images) const;
  // Prompts -> input_ids [B, min(tokenizer.context_length, max_position_embeddings)], padded and
  // truncated (EOS kept). Throws when the tokenizer's EOS id is not text_config's eos_token_id.
  torch::Tensor tokenize(const ClipTokenizer& tokenizer, const std::vector<std::string>& prompts) const;

  // Hugging Face's random initialisation (CLIPPreTrainedModel._init_weights): normal weights with
  // std 0.02·factor for embeddings, width- and depth-scaled for attention and MLP, D^-0.5·factor
  // for the projections and the class token; zero biases, unit LayerNorms; logit_scale = init value.
  void init_weights(uint64_t seed = 0);
  // requires_grad on every parameter (true to train, false to freeze).
  void set_trainable(bool trainable = true);

  const ClipConfig& config() const { return config_; }
  torch::Device device() const;

  // The towers with their forward passes (pooling, masks). Their modules are this model's own
  // text_model / text_projection / vision_model / visual_projection below (shared, not copies).
  ClipTextModel text{nullptr};
  ClipVisionModel vision{nullptr};

  ClipTextTransformer text_model{nullptr};
  ClipVisionTransformer vision_model{nullptr};
  FrozenLinear visual_projection{nullptr};  // [P,Dv], no bias
  FrozenLinear text_projection{nullptr};    // [P,Dt], no bias
  torch::Tensor logit_scale;                // [], log of the inverse temperature
  ClipImageProcessorConfig processor;       // image_size from the vision config; CLIP's mean and std

 private:
  ClipConfig config_;
};
TORCH_MODULE(ClipModel);

// Writes `dir`/config.json (CLIPConfig), model.safetensors (F32, every tensor of the state dict) and
// preprocessor_config.json, each atomically; creates `dir`. With `tokenizer_dir`, also copies its
// vocab.json, merges.txt (and tokenizer_config.json / special_tokens_map.json when present), so the
// folder is complete like a Hugging Face CLIP repository.
void save_clip_model(const std::string& dir, const ClipModel& model, const std::string& tokenizer_dir = {});
// Reads a folder written by save_clip_model (or a Hugging Face CLIPModel folder in F32/F16/BF16;
// the legacy position_ids buffers are ignored). preprocessor_config.json is optional.
ClipModel load_clip_model(const std::string& dir, torch::Device device = torch::kCPU);
// Writes the text side as a text_encoder/ folder (CLIPTextModelWithProjection: config.json and
// text_model.* + text_projection.weight in model.safetensors), which load_clip_text_model and
// TextEncoder::load read.
void save_clip_text_encoder(const std::string& dir, const ClipModel& model);
// `dir` when it holds vocab.json, else `dir`/../tokenizer when that does; throws naming both.
std::string clip_tokenizer_dir(const std::string& clip_dir);

}  // namespace luminars
