// The CLIP image tower in Hugging Face's CLIPVisionModelWithProjection layout (a ViT: patches, a
// class token, pre-LayerNorm transformer layers shared with the text tower), and CLIP's pixel
// preprocessing. Shapes: B = batch, C = channels, S = image_size, p = patch_size,
// N = (S/p)^2 patches, D = hidden_size, P = projection_dim.
#pragma once
#include <nlohmann/json_fwd.hpp>
#include <torch/torch.h>

#include <array>
#include <cstdint>
#include <string>

#include "text/clip_text_model.h"

namespace luminars {

struct ClipVisionConfig {
  // Hugging Face CLIPVisionConfig's defaults (openai/clip-vit-base-patch32), used for fields a
  // config.json leaves out.
  int64_t hidden_size = 768;
  int64_t intermediate_size = 3072;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 12;
  int64_t num_channels = 3;
  int64_t image_size = 224;
  int64_t patch_size = 32;
  int64_t projection_dim = 512;           // visual_projection's output (a CLIPConfig's own value wins)
  std::string hidden_act = "quick_gelu";  // quick_gelu, gelu (erf), gelu_new / gelu_pytorch_tanh (tanh)
  double layer_norm_eps = 1e-5;

  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
  // Throws luminars::Error naming the first field at fault.
  void validate() const;
  // A CLIPVisionConfig object, or a whole CLIPConfig (its "vision_config"); `source` names it in errors.
  static ClipVisionConfig from_json(const std::string& text, const std::string& source = "config.json");
  // Every field above plus "model_type": "clip_vision_model".
  nlohmann::json to_json() const;
};

ClipLayerConfig layer_config(const ClipVisionConfig& c);  // full (non-causal) attention

// nn.Conv2d(C, D, kernel_size=p, stride=p, bias=False): one D-vector per patch.
// Tensors: weight [D,C,p,p]. Uninitialised and frozen like the text tower's layers.
struct ClipPatchEmbeddingImpl : torch::nn::Module {
  ClipPatchEmbeddingImpl(int64_t channels, int64_t dim, int64_t patch, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& pixels);  // [B,C,S,S] -> [B,D,S/p,S/p]
  int64_t patch;
  torch::Tensor weight;
};
TORCH_MODULE(ClipPatchEmbedding);

// Tensors: class_embedding [D], patch_embedding.weight [D,C,p,p], position_embedding.weight [N+1,D]
struct ClipVisionEmbeddingsImpl : torch::nn::Module {
  ClipVisionEmbeddingsImpl(const ClipVisionConfig& c, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& pixels);  // [B,C,S,S] -> [B,N+1,D], class token first
  torch::Tensor class_embedding;  // [D]
  ClipPatchEmbedding patch_embedding{nullptr};
  FrozenEmbedding position_embedding{nullptr};
};
TORCH_MODULE(ClipVisionEmbeddings);

// Tensors: embeddings.*, pre_layrnorm.* (sic, as published), encoder.layers.N.*, post_layernorm.*
struct ClipVisionTransformerImpl : torch::nn::Module {
  ClipVisionTransformerImpl(const ClipVisionConfig& c, const torch::TensorOptions& options);
  ClipVisionEmbeddings embeddings{nullptr};
  FrozenLayerNorm pre_layrnorm{nullptr};
  ClipEncoder encoder{nullptr};
  FrozenLayerNorm post_layernorm{nullptr};
};
TORCH_MODULE(ClipVisionTransformer);

struct ClipVisionOutput {
  torch::Tensor last_hidden_state;  // [B,N+1,D], the last layer's output (no final norm, as HF)
  torch::Tensor pooler_output;      // [B,D], post_layernorm(last_hidden_state[:, 0])
  torch::Tensor image_embeds;       // [B,P], visual_projection(pooler_output)
};

// Tensors: vision_model.*, visual_projection.weight [P,D] (no bias).
struct ClipVisionModelImpl : torch::nn::Module {
  // Parameters are uninitialised (see init_weights) and do not require gradients until asked.
  explicit ClipVisionModelImpl(const ClipVisionConfig& config, const torch::TensorOptions& options = {});
  // pixels [B,C,S,S] float, already normalised (see clip_pixels).
  ClipVisionOutput forward(const torch::Tensor& pixels);
  // Hugging Face's random initialisation with initializer_factor `factor` (initializer_range 0.02).
  void init_weights(uint64_t seed = 0, double factor = 1.0);
  const ClipVisionConfig& config() const { return config_; }
  torch::Device device() const;

  ClipVisionTransformer vision_model{nullptr};
  FrozenLinear visual_projection{nullptr};

 private:
  ClipVisionConfig config_;
};
TORCH_MODULE(ClipVisionModel);

// ---------------------------------------------------------------------------------------------
// Pixels: Hugging Face CLIPImageProcessor's preprocessor_config.json and its transform.
// ---------------------------------------------------------------------------------------------
struct ClipImageProcessorConfig {
  int64_t image_size = 224;  // "size": {"shortest_edge"} and "crop_size": {"height","width"}
  std::array<double, 3> image_mean{0.48145466, 0.4578275, 0.40821073};  // OpenAI CLIP's
  std::array<double, 3> image_std{0.26862954, 0.26130258, 0.27577711};
  bool do_resize = true;
  bool do_normalize = true;

  static ClipImageProcessorConfig from_file(const std::string& path);
  // CLIPImageProcessor fields, resample 2 (bilinear, what clip_pixels does).
  std::string to_json() const;
};

// images [B,3,H,W] in [-1,1] (core/image_tensor.h) -> [B,3,S,S] still in [-1,1]: a centred square
// crop when H != W, then a bilinear resize with antialiasing when the size differs from S.
torch::Tensor clip_resize(const torch::Tensor& images, int64_t image_size);
// images [B,3,H,W] in [-1,1] -> the vision tower's input [B,3,S,S] float32: resized (clip_resize,
// when do_resize), mapped to [0,1] and normalised with the mean and std (when do_normalize).
torch::Tensor clip_pixels(const torch::Tensor& images, const ClipImageProcessorConfig& processor);
torch::Tensor clip_pixels(const torch::Tensor& images, int64_t image_size);  // CLIP's mean and std

}  // namespace luminars
