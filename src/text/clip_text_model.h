// The frozen CLIP text encoder in Hugging Face's CLIPTextModel / CLIPTextModelWithProjection layout,
// configured by its config.json and loaded from model.safetensors with the published tensor names.
// Shapes: B = batch, L = tokens (≤ max_position_embeddings), D = hidden_size, P = projection_dim.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>

#include "core/lora_slot.h"

namespace luminars {

struct ClipTextConfig {
  // Hugging Face CLIPTextConfig's defaults, used for fields a config.json leaves out.
  int64_t vocab_size = 49408;
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_hidden_layers = 12;
  int64_t num_attention_heads = 8;
  int64_t max_position_embeddings = 77;
  int64_t projection_dim = 512;
  std::string hidden_act = "quick_gelu";  // quick_gelu, gelu (erf), gelu_new / gelu_pytorch_tanh (tanh)
  double layer_norm_eps = 1e-5;
  int64_t bos_token_id = 49406;
  int64_t eos_token_id = 49407;  // 2 selects the legacy pooling rule (position of the largest id)
  int64_t pad_token_id = 1;
  bool with_projection = false;  // text_projection present (CLIPTextModelWithProjection)

  // Throws luminars::Error naming the first field at fault.
  void validate() const;
  // Reads a Hugging Face config.json (a CLIPTextConfig object); `source` names it in errors.
  static ClipTextConfig from_json(const std::string& text, const std::string& source = "config.json");
  static ClipTextConfig from_file(const std::string& path);
  // Published text towers: OpenAI CLIP ViT-L/14 (SD 1.x, SDXL, SD3, Flux) and OpenCLIP ViT-H/14 (SD 2.x).
  static ClipTextConfig vit_l14();
  static ClipTextConfig vit_h14();
};

// The shape of one transformer layer, shared by the text tower (causal attention) and the vision
// tower (src/text/clip_vision_model.h, full attention).
struct ClipLayerConfig {
  int64_t hidden_size = 512;
  int64_t intermediate_size = 2048;
  int64_t num_attention_heads = 8;
  std::string hidden_act = "quick_gelu";
  double layer_norm_eps = 1e-5;
  bool causal = true;  // position i attends to positions <= i only (the text tower)
};
ClipLayerConfig layer_config(const ClipTextConfig& c);  // causal
// Whether `hidden_act` names an activation the layers implement (quick_gelu, gelu, gelu_new,
// gelu_pytorch_tanh).
bool is_clip_activation(const std::string& hidden_act);

// Layers whose parameters are created without initialisation (weights come from a file), on any
// device including "meta"; the tensor names are nn.Linear's, nn.LayerNorm's and nn.Embedding's.
// A FrozenLinear may carry low-rank adapters (pipeline/text_lora.h); without any it is nn.Linear.
struct FrozenLinearImpl : torch::nn::Module {
  FrozenLinearImpl(int64_t in, int64_t out, bool bias, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor weight, bias;  // [out, in], [out] or undefined
  LoraSlot lora;
};
TORCH_MODULE(FrozenLinear);

struct FrozenLayerNormImpl : torch::nn::Module {
  FrozenLayerNormImpl(int64_t dim, double eps, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  double eps;
  torch::Tensor weight, bias;
};
TORCH_MODULE(FrozenLayerNorm);

struct FrozenEmbeddingImpl : torch::nn::Module {
  FrozenEmbeddingImpl(int64_t rows, int64_t dim, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& ids);  // int64 [...] -> [..., dim]
  torch::Tensor weight;                             // [rows, dim]
};
TORCH_MODULE(FrozenEmbedding);

// Multi-head self-attention, causal or full (ClipLayerConfig::causal). Tensors: {q,k,v,out}_proj.{weight,bias}
struct ClipAttentionImpl : torch::nn::Module {
  ClipAttentionImpl(const ClipLayerConfig& c, const torch::TensorOptions& options);
  // [B,L,D] -> [B,L,D]; `causal_mask` [L,L] (0 / -inf) is used by causal layers on LibTorch 1.x and
  // may be undefined for full attention.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& causal_mask);
  int64_t heads, head_dim;
  bool causal;
  FrozenLinear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};
};
TORCH_MODULE(ClipAttention);

// fc2(act(fc1(x))). Tensors: fc1.*, fc2.*
struct ClipMlpImpl : torch::nn::Module {
  ClipMlpImpl(const ClipLayerConfig& c, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x);
  std::string act;
  FrozenLinear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(ClipMlp);

// Pre-LayerNorm transformer layer: x + attn(ln1(x)), then + mlp(ln2(·)).
// Tensors: self_attn.*, layer_norm1.*, mlp.*, layer_norm2.*
struct ClipEncoderLayerImpl : torch::nn::Module {
  ClipEncoderLayerImpl(const ClipLayerConfig& c, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& causal_mask);
  ClipAttention self_attn{nullptr};
  FrozenLayerNorm layer_norm1{nullptr}, layer_norm2{nullptr};
  ClipMlp mlp{nullptr};
};
TORCH_MODULE(ClipEncoderLayer);

// Hugging Face's random initialisation of one layer of a `num_layers`-layer tower (CLIPAttention,
// CLIPMLP, LayerNorm in CLIPPreTrainedModel._init_weights) with initializer_factor `factor`.
void init_encoder_layer(ClipEncoderLayerImpl& layer, int64_t num_layers, double factor, at::Generator& gen);

struct ClipTextOutput {
  torch::Tensor last_hidden_state;         // [B,L,D], after final_layer_norm
  torch::Tensor penultimate_hidden_state;  // [B,L,D], input of the last layer (HF hidden_states[-2]), no final norm
  torch::Tensor pooler_output;             // [B,D], last_hidden_state at the EOS position
  torch::Tensor text_embeds;               // [B,P], text_projection(pooler_output); undefined without projection
};

// Tensors: token_embedding.weight [V,D], position_embedding.weight [max_positions,D]
struct ClipTextEmbeddingsImpl : torch::nn::Module {
  ClipTextEmbeddingsImpl(const ClipTextConfig& c, const torch::TensorOptions& options);
  torch::Tensor forward(const torch::Tensor& input_ids);  // [B,L] -> [B,L,D]
  FrozenEmbedding token_embedding{nullptr}, position_embedding{nullptr};
};
TORCH_MODULE(ClipTextEmbeddings);

// Tensors: layers.N.*
struct ClipEncoderImpl : torch::nn::Module {
  ClipEncoderImpl(const ClipLayerConfig& c, int64_t num_layers, const torch::TensorOptions& options);
  torch::nn::ModuleList layers;
};
TORCH_MODULE(ClipEncoder);

// Tensors: embeddings.*, encoder.*, final_layer_norm.*
struct ClipTextTransformerImpl : torch::nn::Module {
  ClipTextTransformerImpl(const ClipTextConfig& c, const torch::TensorOptions& options);
  ClipTextEmbeddings embeddings{nullptr};
  ClipEncoder encoder{nullptr};
  FrozenLayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(ClipTextTransformer);

// Tensors: text_model.*, text_projection.weight (with projection only).
struct ClipTextModelImpl : torch::nn::Module {
  // Parameters are uninitialised (see init_weights) and live on options.device(), "meta" included;
  // they do not require gradients unless asked (requires_grad_ on each; ClipModel::set_trainable).
  explicit ClipTextModelImpl(const ClipTextConfig& config, const torch::TensorOptions& options = {});
  // input_ids int64 [B,L]; checked against the vocabulary size and the position table.
  ClipTextOutput forward(const torch::Tensor& input_ids);
  // Hugging Face's random initialisation (normal weights scaled by width and depth, zero biases,
  // unit norms) with initializer_factor `factor`, for benchmarks, tests and training from scratch.
  void init_weights(uint64_t seed = 0, double factor = 1.0);
  const ClipTextConfig& config() const { return config_; }
  torch::Device device() const;

  ClipTextTransformer text_model{nullptr};
  FrozenLinear text_projection{nullptr};  // [P,D] without bias; null without projection

 private:
  ClipTextConfig config_;
};
TORCH_MODULE(ClipTextModel);

// Builds the model from `dir`/config.json and loads `dir`/model.safetensors (F32, F16 or BF16;
// computed in float32). A text_projection.weight in the file adds the projection; the legacy buffer
// text_model.embeddings.position_ids is ignored. Every other tensor must match by name and shape.
ClipTextModel load_clip_text_model(const std::string& dir, torch::Device device = torch::kCPU);

}  // namespace luminars
