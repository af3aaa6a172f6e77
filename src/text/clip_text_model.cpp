#include "text/clip_text_model.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <set>
#include <sstream>
#include <tuple>

#include "core/error.h"
#include "core/json_fields.h"
#include "core/pointwise.h"
#include "core/quantize.h"
#include "core/streamed_weights.h"
#include "core/files.h"
#include "core/weight_loader.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"

namespace luminars {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;
using json = nlohmann::json;

namespace {

const std::set<std::string> kActivations{"quick_gelu", "gelu", "gelu_new", "gelu_pytorch_tanh"};
// Buffers some published files still hold; the model recomputes them.
const std::set<std::string> kIgnoredTensors{"text_model.embeddings.position_ids"};

void check_text_config(bool ok, const std::string& message) {
  if (!ok) throw Error("invalid CLIP text config: " + message);
}

}  // namespace

bool is_clip_activation(const std::string& hidden_act) { return kActivations.count(hidden_act) > 0; }

// ---------------------------------------------------------------------------------------------
// ClipTextConfig
// ---------------------------------------------------------------------------------------------
void ClipTextConfig::validate() const {
  check_text_config(vocab_size > 0, "vocab_size must be positive");
  check_text_config(hidden_size > 0, "hidden_size must be positive");
  check_text_config(intermediate_size > 0, "intermediate_size must be positive");
  check_text_config(num_hidden_layers > 0, "num_hidden_layers must be positive");
  check_text_config(num_attention_heads > 0 && hidden_size % num_attention_heads == 0,
        "num_attention_heads " + std::to_string(num_attention_heads) + " must divide hidden_size " +
            std::to_string(hidden_size));
  check_text_config(max_position_embeddings > 0, "max_position_embeddings must be positive");
  check_text_config(!with_projection || projection_dim > 0, "projection_dim must be positive");
  check_text_config(layer_norm_eps > 0, "layer_norm_eps must be positive");
  // Upper bounds far above any published CLIP, so absurd values are named here, not by the allocator.
  for (auto [name, v, limit] : {std::tuple<const char*, int64_t, int64_t>{"vocab_size", vocab_size, 1 << 22},
                                {"hidden_size", hidden_size, 16384},
                                {"intermediate_size", intermediate_size, 65536},
                                {"num_hidden_layers", num_hidden_layers, 256},
                                {"max_position_embeddings", max_position_embeddings, 16384},
                                {"projection_dim", projection_dim, 16384}})
    check_text_config(v <= limit, std::string(name) + " = " + std::to_string(v) + " is above the limit of " + std::to_string(limit));
  check_text_config(is_clip_activation(hidden_act),
        "hidden_act '" + hidden_act + "' is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)");
}

ClipTextConfig ClipTextConfig::from_json(const std::string& text, const std::string& source) {
  json j = json_fields::parse_object(text, source);
  ClipTextConfig c;
  // A whole CLIPConfig keeps the text tower's fields under "text_config", the projection beside it.
  const json top = j;
  if (j.contains("text_config") && j["text_config"].is_object()) j = j["text_config"];
  using json_fields::read;
  read(j, "vocab_size", c.vocab_size, source);
  read(j, "hidden_size", c.hidden_size, source);
  read(j, "intermediate_size", c.intermediate_size, source);
  read(j, "num_hidden_layers", c.num_hidden_layers, source);
  read(j, "num_attention_heads", c.num_attention_heads, source);
  read(j, "max_position_embeddings", c.max_position_embeddings, source);
  read(j, "projection_dim", c.projection_dim, source);
  read(top, "projection_dim", c.projection_dim, source);
  read(j, "bos_token_id", c.bos_token_id, source);
  read(j, "eos_token_id", c.eos_token_id, source);
  read(j, "pad_token_id", c.pad_token_id, source);
  read(j, "hidden_act", c.hidden_act, source);
  read(j, "layer_norm_eps", c.layer_norm_eps, source);
  if (top.contains("architectures") && top["architectures"].is_array())
    for (const auto& a : top["architectures"])
      if (a == "CLIPTextModelWithProjection") c.with_projection = true;
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  return c;
}

ClipTextConfig ClipTextConfig::from_file(const std::string& path) {
  if (!fs::exists(path)) throw Error(path + ": file not found (CLIP text encoder config)");
  return from_json(read_file(path), path);
}

ClipTextConfig ClipTextConfig::vit_l14() {
  ClipTextConfig c;
  c.hidden_size = 768;
  c.intermediate_size = 3072;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.projection_dim = 768;
  c.hidden_act = "quick_gelu";
  c.bos_token_id = 0;  // as published (openai/clip-vit-large-patch14): the legacy ids
  c.eos_token_id = 2;
  c.with_projection = true;
  return c;
}

ClipTextConfig ClipTextConfig::vit_h14() {
  ClipTextConfig c;
  c.hidden_size = 1024;
  c.intermediate_size = 4096;
  c.num_hidden_layers = 24;
  c.num_attention_heads = 16;
  c.projection_dim = 1024;
  c.hidden_act = "gelu";
  c.bos_token_id = 0;
  c.eos_token_id = 2;
  c.with_projection = true;
  return c;
}

ClipLayerConfig layer_config(const ClipTextConfig& c) {
  return {c.hidden_size, c.intermediate_size, c.num_attention_heads, c.hidden_act, c.layer_norm_eps, /*causal=*/true};
}

// ---------------------------------------------------------------------------------------------
// Frozen layers
// ---------------------------------------------------------------------------------------------
FrozenLinearImpl::FrozenLinearImpl(int64_t in, int64_t out, bool with_bias, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({out, in}, options), /*requires_grad=*/false);
  if (with_bias) bias = register_parameter("bias", torch::empty({out}, options), /*requires_grad=*/false);
}

torch::Tensor FrozenLinearImpl::forward(const torch::Tensor& x) { return lora.pointwise(x, weight, bias); }

FrozenLayerNormImpl::FrozenLayerNormImpl(int64_t dim, double eps_, const torch::TensorOptions& options) : eps(eps_) {
  weight = register_parameter("weight", torch::empty({dim}, options), /*requires_grad=*/false);
  bias = register_parameter("bias", torch::empty({dim}, options), /*requires_grad=*/false);
}

torch::Tensor FrozenLayerNormImpl::forward(const torch::Tensor& x) {
  return torch::layer_norm(x, {weight.size(0)}, weight, bias, eps);
}

FrozenEmbeddingImpl::FrozenEmbeddingImpl(int64_t rows, int64_t dim, const torch::TensorOptions& options) {
  weight = register_parameter("weight", torch::empty({rows, dim}, options), /*requires_grad=*/false);
}

torch::Tensor FrozenEmbeddingImpl::forward(const torch::Tensor& ids) { return torch::embedding(weight, ids); }

// ---------------------------------------------------------------------------------------------
// Transformer layer
// ---------------------------------------------------------------------------------------------
ClipAttentionImpl::ClipAttentionImpl(const ClipLayerConfig& c, const torch::TensorOptions& options)
    : heads(c.num_attention_heads), head_dim(c.hidden_size / c.num_attention_heads), causal(c.causal) {
  const int64_t d = c.hidden_size;
  k_proj = register_module("k_proj", FrozenLinear(d, d, /*bias=*/true, options));
  v_proj = register_module("v_proj", FrozenLinear(d, d, /*bias=*/true, options));
  q_proj = register_module("q_proj", FrozenLinear(d, d, /*bias=*/true, options));
  out_proj = register_module("out_proj", FrozenLinear(d, d, /*bias=*/true, options));
}

torch::Tensor ClipAttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& causal_mask) {
  const int64_t B = x.size(0), L = x.size(1), D = x.size(2);
  auto split = [&](const torch::Tensor& t) { return t.view({B, L, heads, head_dim}).transpose(1, 2); };  // [B,H,L,hd]
  auto q = split(q_proj(x)), k = split(k_proj(x)), v = split(v_proj(x));
#if TORCH_VERSION_MAJOR >= 2
  auto o = at::scaled_dot_product_attention(q, k, v, /*attn_mask=*/{}, /*dropout_p=*/0.0, /*is_causal=*/causal);
#else
  auto a = torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(head_dim)));  // [B,H,L,L]
  if (causal) a = a + causal_mask;
  auto o = torch::matmul(a.softmax(-1), v);  // [B,H,L,hd]
#endif
  return out_proj(o.transpose(1, 2).reshape({B, L, D}));  // [B,L,D]
}

ClipMlpImpl::ClipMlpImpl(const ClipLayerConfig& c, const torch::TensorOptions& options) : act(c.hidden_act) {
  fc1 = register_module("fc1", FrozenLinear(c.hidden_size, c.intermediate_size, /*bias=*/true, options));
  fc2 = register_module("fc2", FrozenLinear(c.intermediate_size, c.hidden_size, /*bias=*/true, options));
}

torch::Tensor ClipMlpImpl::forward(const torch::Tensor& x) {
  auto h = fc1(x);
  if (act == "quick_gelu") h = h * torch::sigmoid(1.702 * h);
  else if (act == "gelu") h = torch::gelu(h);  // exact (erf)
  else h = torch::gelu(h, "tanh");              // gelu_new, gelu_pytorch_tanh
  return fc2(h);
}

ClipEncoderLayerImpl::ClipEncoderLayerImpl(const ClipLayerConfig& c, const torch::TensorOptions& options) {
  self_attn = register_module("self_attn", ClipAttention(c, options));
  layer_norm1 = register_module("layer_norm1", FrozenLayerNorm(c.hidden_size, c.layer_norm_eps, options));
  mlp = register_module("mlp", ClipMlp(c, options));
  layer_norm2 = register_module("layer_norm2", FrozenLayerNorm(c.hidden_size, c.layer_norm_eps, options));
}

torch::Tensor ClipEncoderLayerImpl::forward(const torch::Tensor& x, const torch::Tensor& causal_mask) {
  auto h = x + self_attn(layer_norm1(x), causal_mask);
  return h + mlp(layer_norm2(h));
}

void init_encoder_layer(ClipEncoderLayerImpl& layer, int64_t num_layers, double factor, at::Generator& gen) {
  torch::NoGradGuard no_grad;
  auto normal = [&](torch::Tensor& t, double std) { t.copy_(torch::empty(t.sizes()).normal_(0.0, std, gen)); };
  const double d = static_cast<double>(layer.layer_norm1->weight.size(0));
  const double in_std = std::pow(d, -0.5) * std::pow(2.0 * num_layers, -0.5) * factor;
  const double out_std = std::pow(d, -0.5) * factor, fc_std = std::pow(2.0 * d, -0.5) * factor;
  for (auto* lin : {&layer.self_attn->q_proj, &layer.self_attn->k_proj, &layer.self_attn->v_proj})
    normal((*lin)->weight, in_std);
  normal(layer.self_attn->out_proj->weight, out_std);
  normal(layer.mlp->fc1->weight, fc_std);
  normal(layer.mlp->fc2->weight, in_std);
  for (auto* lin : {&layer.self_attn->q_proj, &layer.self_attn->k_proj, &layer.self_attn->v_proj,
                    &layer.self_attn->out_proj, &layer.mlp->fc1, &layer.mlp->fc2})
    (*lin)->bias.zero_();
  for (auto* ln : {&layer.layer_norm1, &layer.layer_norm2}) {
    (*ln)->weight.fill_(1.0);
    (*ln)->bias.zero_();
  }
}

// ---------------------------------------------------------------------------------------------
// Embeddings, encoder, model
// ---------------------------------------------------------------------------------------------
ClipTextEmbeddingsImpl::ClipTextEmbeddingsImpl(const ClipTextConfig& c, const torch::TensorOptions& options) {
  token_embedding = register_module("token_embedding", FrozenEmbedding(c.vocab_size, c.hidden_size, options));
  position_embedding =
      register_module("position_embedding", FrozenEmbedding(c.max_position_embeddings, c.hidden_size, options));
}

torch::Tensor ClipTextEmbeddingsImpl::forward(const torch::Tensor& input_ids) {
  const int64_t L = input_ids.size(1);
  // Under low-memory loading the token table stays packed and only the prompt's rows are
  // dequantized (CLIP ViT-L's is 152 MB in float32); the position table is dequantized while used.
  auto tokens = quant::streamed_rows(token_embedding->weight, input_ids);
  quant::WeightScope weights(*position_embedding);
  return (tokens ? *tokens : token_embedding(input_ids)) + position_embedding->weight.narrow(0, 0, L).unsqueeze(0);  // [B,L,D]
}

ClipEncoderImpl::ClipEncoderImpl(const ClipLayerConfig& c, int64_t num_layers, const torch::TensorOptions& options) {
  for (int64_t i = 0; i < num_layers; ++i) layers->push_back(ClipEncoderLayer(c, options));
  register_module("layers", layers);
}

ClipTextTransformerImpl::ClipTextTransformerImpl(const ClipTextConfig& c, const torch::TensorOptions& options) {
  embeddings = register_module("embeddings", ClipTextEmbeddings(c, options));
  encoder = register_module("encoder", ClipEncoder(layer_config(c), c.num_hidden_layers, options));
  final_layer_norm = register_module("final_layer_norm", FrozenLayerNorm(c.hidden_size, c.layer_norm_eps, options));
}

ClipTextModelImpl::ClipTextModelImpl(const ClipTextConfig& config, const torch::TensorOptions& options_in)
    : config_(config) {
  config_.validate();
  const auto options = options_in.has_dtype() ? options_in : options_in.dtype(torch::kFloat32);
  text_model = register_module("text_model", ClipTextTransformer(config_, options));
  if (config_.with_projection)
    text_projection = register_module(
        "text_projection", FrozenLinear(config_.hidden_size, config_.projection_dim, /*bias=*/false, options));
}

torch::Device ClipTextModelImpl::device() const { return text_model->final_layer_norm->weight.device(); }

ClipTextOutput ClipTextModelImpl::forward(const torch::Tensor& input_ids_in) {
  if (input_ids_in.dim() != 2) throw Error("CLIP text model: input_ids must be [batch, tokens]");
  const int64_t B = input_ids_in.size(0), L = input_ids_in.size(1);
  if (L < 1 || L > config_.max_position_embeddings)
    throw Error("CLIP text model: input_ids length " + std::to_string(L) + " is outside [1, max_position_embeddings " +
                std::to_string(config_.max_position_embeddings) + "]");
  auto input_ids = input_ids_in.to(device(), torch::kInt64);
  if (B > 0) {
    const int64_t lo = input_ids.min().item<int64_t>(), hi = input_ids.max().item<int64_t>();
    if (lo < 0 || hi >= config_.vocab_size)
      throw Error("CLIP text model: token id " + std::to_string(lo < 0 ? lo : hi) + " is outside the vocabulary (vocab_size " +
                  std::to_string(config_.vocab_size) + ")");
  }
  // Causal mask: position i attends to positions ≤ i.
  auto causal_mask = torch::full({L, L}, -std::numeric_limits<float>::infinity(),
                                 torch::TensorOptions().dtype(torch::kFloat32).device(input_ids.device()))
                         .triu(1);  // [L,L]
  torch::Tensor x = text_model->embeddings(input_ids);  // [B,L,D]
  ClipTextOutput out;
  const auto& layers = *text_model->encoder->layers;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    if (i + 1 == layers.size()) out.penultimate_hidden_state = x;
    quant::WeightScope weights(*layers[i]);
    x = layers[i]->as<ClipEncoderLayer>()->forward(x, causal_mask);
  }
  out.last_hidden_state = text_model->final_layer_norm(x);
  // Pooling position: the legacy rule (eos_token_id 2, from before the EOS id was fixed) takes the
  // largest id, which is EOS in CLIP's vocabulary; otherwise the first occurrence of EOS.
  auto eos_at = config_.eos_token_id == 2 ? input_ids.argmax(-1)
                                          : input_ids.eq(config_.eos_token_id).to(torch::kInt32).argmax(-1);  // [B]
  out.pooler_output = out.last_hidden_state.index({torch::arange(B, eos_at.options()), eos_at});  // [B,D]
  if (text_projection) out.text_embeds = text_projection(out.pooler_output);
  return out;
}

void ClipTextModelImpl::init_weights(uint64_t seed, double factor) {
  if (device().type() == torch::kMeta) return;
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto normal = [&](torch::Tensor& t, double std) { t.copy_(torch::empty(t.sizes()).normal_(0.0, std, gen)); };
  const double out_std = std::pow(static_cast<double>(config_.hidden_size), -0.5) * factor;
  normal(text_model->embeddings->token_embedding->weight, 0.02 * factor);
  normal(text_model->embeddings->position_embedding->weight, 0.02 * factor);
  for (const auto& m : *text_model->encoder->layers)
    init_encoder_layer(*m->as<ClipEncoderLayerImpl>(), config_.num_hidden_layers, factor, gen);
  text_model->final_layer_norm->weight.fill_(1.0);
  text_model->final_layer_norm->bias.zero_();
  if (text_projection) normal(text_projection->weight, out_std);
}

// ---------------------------------------------------------------------------------------------
// Loading
// ---------------------------------------------------------------------------------------------
ClipTextModel load_clip_text_model(const std::string& dir, torch::Device device) {
  if (!fs::is_directory(dir))
    throw Error("text encoder folder not found: " + fs::absolute(dir).lexically_normal().string() + " (config.json and model.safetensors)");
  const std::string config_path = (fs::path(dir) / "config.json").string();
  ClipTextConfig config = ClipTextConfig::from_file(config_path);

  std::string path = (fs::path(dir) / "model.safetensors").string();
  if (!fs::exists(path) && fs::exists(fs::path(dir) / "model.fp16.safetensors"))
    path = (fs::path(dir) / "model.fp16.safetensors").string();
  if (!fs::exists(path)) throw Error(path + ": file not found (CLIP text encoder weights)");
  safetensors::Reader reader(path);

  const quant::QuantizedWeights quantized(reader);  // 8- or 4-bit weights, when exported so
  if (reader.contains("text_projection.weight") || quantized.contains("text_projection.weight")) config.with_projection = true;
  const std::string token_name = "text_model.embeddings.token_embedding.weight";
  std::vector<int64_t> token_shape;
  if (const auto* tok = reader.find(token_name)) token_shape = tok->shape;
  if (quantized.contains(token_name)) token_shape = quantized.shape(token_name);
  if (token_shape.size() == 2 && token_shape[0] != config.vocab_size)
    throw Error(config_path + ": vocab_size " + std::to_string(config.vocab_size) + " does not match the " +
                std::to_string(token_shape[0]) + " rows of " + token_name + " in " + path);

  ClipTextModel model(config, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  // Tensor by tensor from the mapped file into the parameters: peak memory stays near the model's.
  WeightLoadOptions lo;
  lo.rename = [](const std::string& name) { return kIgnoredTensors.count(name) ? std::string() : name; };
  // Low-memory loading keeps the encoder layers' and the embeddings' quantized weights packed
  // (forward opens a quant::WeightScope over each).
  lo.streamed = [](const std::string& name) {
    return name.rfind("text_model.encoder.layers.", 0) == 0 || name.rfind("text_model.embeddings.", 0) == 0;
  };
  load_module_state(*model, reader, lo);
  model->eval();
  return model;
}

}  // namespace luminars
