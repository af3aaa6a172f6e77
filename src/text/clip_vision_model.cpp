#include "text/clip_vision_model.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "core/json_fields.h"
#include "core/files.h"

namespace luminars {

namespace fs = std::filesystem;
namespace F = torch::nn::functional;
using json = nlohmann::json;

namespace {

void check_vision_config(bool ok, const std::string& message) {
  if (!ok) throw Error("invalid CLIP vision config: " + message);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ClipVisionConfig
// ---------------------------------------------------------------------------------------------
void ClipVisionConfig::validate() const {
  check_vision_config(hidden_size > 0, "hidden_size must be positive");
  check_vision_config(intermediate_size > 0, "intermediate_size must be positive");
  check_vision_config(num_hidden_layers > 0, "num_hidden_layers must be positive");
  check_vision_config(num_attention_heads > 0 && hidden_size % num_attention_heads == 0,
        "num_attention_heads " + std::to_string(num_attention_heads) + " must divide hidden_size " +
            std::to_string(hidden_size));
  check_vision_config(num_channels > 0, "num_channels must be positive");
  check_vision_config(image_size > 0, "image_size must be positive");
  check_vision_config(patch_size > 0 && image_size % patch_size == 0,
        "patch_size " + std::to_string(patch_size) + " must divide image_size " + std::to_string(image_size));
  check_vision_config(projection_dim > 0, "projection_dim must be positive");
  check_vision_config(layer_norm_eps > 0, "layer_norm_eps must be positive");
  // Upper bounds far above any published CLIP, so absurd values are named here, not by the allocator.
  for (auto [name, v, limit] : {std::tuple<const char*, int64_t, int64_t>{"hidden_size", hidden_size, 16384},
                                {"intermediate_size", intermediate_size, 65536},
                                {"num_hidden_layers", num_hidden_layers, 256},
                                {"num_channels", num_channels, 64},
                                {"image_size", image_size, 4096},
                                {"projection_dim", projection_dim, 16384}})
    check_vision_config(v <= limit, std::string(name) + " = " + std::to_string(v) + " is above the limit of " + std::to_string(limit));
  check_vision_config(is_clip_activation(hidden_act),
        "hidden_act '" + hidden_act + "' is not supported (quick_gelu, gelu, gelu_new, gelu_pytorch_tanh)");
}

ClipVisionConfig ClipVisionConfig::from_json(const std::string& text, const std::string& source) {
  const json top = json_fields::parse_object(text, source);
  // A whole CLIPConfig keeps the vision tower's fields under "vision_config", the projection beside it.
  json j = top;
  if (top.contains("vision_config") && top["vision_config"].is_object()) j = top["vision_config"];
  ClipVisionConfig c;
  using json_fields::read;
  read(j, "hidden_size", c.hidden_size, source);
  read(j, "intermediate_size", c.intermediate_size, source);
  read(j, "num_hidden_layers", c.num_hidden_layers, source);
  read(j, "num_attention_heads", c.num_attention_heads, source);
  read(j, "num_channels", c.num_channels, source);
  read(j, "image_size", c.image_size, source);
  read(j, "patch_size", c.patch_size, source);
  read(j, "projection_dim", c.projection_dim, source);
  read(top, "projection_dim", c.projection_dim, source);  // a CLIPConfig's own value wins
  read(j, "hidden_act", c.hidden_act, source);
  read(j, "layer_norm_eps", c.layer_norm_eps, source);
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  return c;
}

json ClipVisionConfig::to_json() const {
  return {{"model_type", "clip_vision_model"},
          {"hidden_size", hidden_size},
          {"intermediate_size", intermediate_size},
          {"num_hidden_layers", num_hidden_layers},
          {"num_attention_heads", num_attention_heads},
          {"num_channels", num_channels},
          {"image_size", image_size},
          {"patch_size", patch_size},
          {"projection_dim", projection_dim},
          {"hidden_act", hidden_act},
          {"layer_norm_eps", layer_norm_eps},
          {"attention_dropout", 0.0},
          {"initializer_range", 0.02},
          {"initializer_factor", 1.0}};
}

ClipLayerConfig layer_config(const ClipVisionConfig& c) {
  return {c.hidden_size, c.intermediate_size, c.num_attention_heads, c.hidden_act, c.layer_norm_eps, /*causal=*/false};
}

// ---------------------------------------------------------------------------------------------
// Embeddings, transformer, model
// ---------------------------------------------------------------------------------------------
ClipPatchEmbeddingImpl::ClipPatchEmbeddingImpl(int64_t channels, int64_t dim, int64_t patch_,
                                               const torch::TensorOptions& options)
    : patch(patch_) {
  weight = register_parameter("weight", torch::empty({dim, channels, patch, patch}, options), /*requires_grad=*/false);
}

torch::Tensor ClipPatchEmbeddingImpl::forward(const torch::Tensor& pixels) {
  return torch::conv2d(pixels, weight, /*bias=*/{}, /*stride=*/patch);  // [B,D,S/p,S/p]
}

ClipVisionEmbeddingsImpl::ClipVisionEmbeddingsImpl(const ClipVisionConfig& c, const torch::TensorOptions& options) {
  class_embedding = register_parameter("class_embedding", torch::empty({c.hidden_size}, options), /*requires_grad=*/false);
  patch_embedding =
      register_module("patch_embedding", ClipPatchEmbedding(c.num_channels, c.hidden_size, c.patch_size, options));
  position_embedding =
      register_module("position_embedding", FrozenEmbedding(c.num_patches() + 1, c.hidden_size, options));
}

torch::Tensor ClipVisionEmbeddingsImpl::forward(const torch::Tensor& pixels) {
  const int64_t B = pixels.size(0), D = class_embedding.size(0);
  auto patches = patch_embedding(pixels).flatten(2).transpose(1, 2);  // [B,N,D]
  auto cls = class_embedding.view({1, 1, D}).expand({B, 1, D});       // [B,1,D]
  return torch::cat({cls, patches}, 1) + position_embedding->weight.unsqueeze(0);  // [B,N+1,D]
}

ClipVisionTransformerImpl::ClipVisionTransformerImpl(const ClipVisionConfig& c, const torch::TensorOptions& options) {
  embeddings = register_module("embeddings", ClipVisionEmbeddings(c, options));
  pre_layrnorm = register_module("pre_layrnorm", FrozenLayerNorm(c.hidden_size, c.layer_norm_eps, options));
  encoder = register_module("encoder", ClipEncoder(layer_config(c), c.num_hidden_layers, options));
  post_layernorm = register_module("post_layernorm", FrozenLayerNorm(c.hidden_size, c.layer_norm_eps, options));
}

ClipVisionModelImpl::ClipVisionModelImpl(const ClipVisionConfig& config, const torch::TensorOptions& options_in)
    : config_(config) {
  config_.validate();
  const auto options = options_in.has_dtype() ? options_in : options_in.dtype(torch::kFloat32);
  vision_model = register_module("vision_model", ClipVisionTransformer(config_, options));
  visual_projection = register_module(
      "visual_projection", FrozenLinear(config_.hidden_size, config_.projection_dim, /*bias=*/false, options));
}

torch::Device ClipVisionModelImpl::device() const { return vision_model->post_layernorm->weight.device(); }

ClipVisionOutput ClipVisionModelImpl::forward(const torch::Tensor& pixels_in) {
  const auto& c = config_;
  if (pixels_in.dim() != 4 || pixels_in.size(1) != c.num_channels || pixels_in.size(2) != c.image_size ||
      pixels_in.size(3) != c.image_size) {
    std::string shape;
    for (int64_t i = 0; i < pixels_in.dim(); ++i) shape += (i ? ", " : "") + std::to_string(pixels_in.size(i));
    throw Error("CLIP vision model: pixels have shape [" + shape + "], expected [batch, " +
                std::to_string(c.num_channels) + ", " + std::to_string(c.image_size) + ", " +
                std::to_string(c.image_size) + "] (image_size " + std::to_string(c.image_size) + ")");
  }
  auto x = vision_model->pre_layrnorm(vision_model->embeddings(pixels_in.to(device(), visual_projection->weight.scalar_type())));  // [B,N+1,D]
  for (const auto& layer : *vision_model->encoder->layers)
    x = layer->as<ClipEncoderLayerImpl>()->forward(x, /*causal_mask=*/{});
  ClipVisionOutput out;
  out.last_hidden_state = x;
  out.pooler_output = vision_model->post_layernorm(x.select(1, 0));  // [B,D]
  out.image_embeds = visual_projection(out.pooler_output);           // [B,P]
  return out;
}

void ClipVisionModelImpl::init_weights(uint64_t seed, double factor) {
  if (device().type() == torch::kMeta) return;
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  auto normal = [&](torch::Tensor& t, double std) { t.copy_(torch::empty(t.sizes()).normal_(0.0, std, gen)); };
  const double d = static_cast<double>(config_.hidden_size), range = 0.02;
  auto& emb = *vision_model->embeddings;
  normal(emb.class_embedding, std::pow(d, -0.5) * factor);
  normal(emb.patch_embedding->weight, range * factor);
  normal(emb.position_embedding->weight, range * factor);
  for (const auto& m : *vision_model->encoder->layers)
    init_encoder_layer(*m->as<ClipEncoderLayerImpl>(), config_.num_hidden_layers, factor, gen);
  for (auto* ln : {&vision_model->pre_layrnorm, &vision_model->post_layernorm}) {
    (*ln)->weight.fill_(1.0);
    (*ln)->bias.zero_();
  }
  normal(visual_projection->weight, std::pow(d, -0.5) * factor);
}

// ---------------------------------------------------------------------------------------------
// Pixels
// ---------------------------------------------------------------------------------------------
ClipImageProcessorConfig ClipImageProcessorConfig::from_file(const std::string& path) {
  if (!fs::exists(path)) throw Error(path + ": file not found (CLIP image processor config)");
  const json j = json_fields::parse_object(read_file(path), path);
  ClipImageProcessorConfig p;
  auto size_of = [&](const char* key) -> int64_t {  // an integer, or {"height","width"} / {"shortest_edge"}
    const json& v = j[key];
    if (v.is_number_integer()) return v.get<int64_t>();
    if (v.is_object() && v.contains("shortest_edge") && v["shortest_edge"].is_number_integer())
      return v["shortest_edge"].get<int64_t>();
    if (v.is_object() && v.contains("height") && v.contains("width") && v["height"].is_number_integer() &&
        v["height"] == v["width"])
      return v["height"].get<int64_t>();
    throw Error(path + ": field '" + key + "' must be an integer, {\"shortest_edge\": N} or a square {\"height\", \"width\"}");
  };
  if (j.contains("crop_size")) p.image_size = size_of("crop_size");
  else if (j.contains("size")) p.image_size = size_of("size");
  if (p.image_size <= 0) throw Error(path + ": the image size must be positive");
  auto triple = [&](const char* key, std::array<double, 3>& field) {
    if (!j.contains(key)) return;
    const json& v = j[key];
    if (!v.is_array() || v.size() != 3 || !v[0].is_number() || !v[1].is_number() || !v[2].is_number())
      throw Error(path + ": field '" + key + "' must be an array of 3 numbers");
    for (int i = 0; i < 3; ++i) field[i] = v[i].get<double>();
  };
  triple("image_mean", p.image_mean);
  triple("image_std", p.image_std);
  for (double s : p.image_std)
    if (!(s > 0)) throw Error(path + ": field 'image_std' must be positive");
  auto flag = [&](const char* key, bool& field) {
    if (!j.contains(key)) return;
    if (!j[key].is_boolean()) throw Error(path + ": field '" + key + "' must be true or false");
    field = j[key].get<bool>();
  };
  flag("do_resize", p.do_resize);
  flag("do_normalize", p.do_normalize);
  return p;
}

std::string ClipImageProcessorConfig::to_json() const {
  json j = {{"image_processor_type", "CLIPImageProcessor"},
            {"crop_size", {{"height", image_size}, {"width", image_size}}},
            {"size", {{"shortest_edge", image_size}}},
            {"do_resize", do_resize},
            {"do_center_crop", true},
            {"do_rescale", true},
            {"rescale_factor", 1.0 / 255.0},
            {"do_normalize", do_normalize},
            {"do_convert_rgb", true},
            {"image_mean", image_mean},
            {"image_std", image_std},
            {"resample", 2}};  // PIL bilinear
  return j.dump(2) + "\n";
}

torch::Tensor clip_resize(const torch::Tensor& images, int64_t image_size) {
  if (images.dim() != 4 || images.size(1) != 3)
    throw Error("clip_resize: images must be [batch, 3, height, width]");
  auto x = images.to(torch::kFloat32);
  const int64_t H = x.size(2), W = x.size(3), s = std::min(H, W);
  if (H != W) x = x.narrow(2, (H - s) / 2, s).narrow(3, (W - s) / 2, s);  // centred square [B,3,s,s]
  if (s != image_size)
    x = F::interpolate(x, F::InterpolateFuncOptions()
                              .size(std::vector<int64_t>{image_size, image_size})
                              .mode(torch::kBilinear)
                              .align_corners(false)
                              .antialias(true));  // [B,3,S,S]
  return x;
}

torch::Tensor clip_pixels(const torch::Tensor& images, const ClipImageProcessorConfig& p) {
  auto x = p.do_resize ? clip_resize(images, p.image_size) : images.to(torch::kFloat32);
  x = (x + 1.0) * 0.5;  // [0,1], HF's rescale of 8-bit values
  if (!p.do_normalize) return x;
  auto opts = x.options();
  auto mean = torch::tensor({p.image_mean[0], p.image_mean[1], p.image_mean[2]}, opts.dtype(torch::kFloat64));
  auto sd = torch::tensor({p.image_std[0], p.image_std[1], p.image_std[2]}, opts.dtype(torch::kFloat64));
  return (x - mean.to(torch::kFloat32).view({1, 3, 1, 1})) / sd.to(torch::kFloat32).view({1, 3, 1, 1});
}

torch::Tensor clip_pixels(const torch::Tensor& images, int64_t image_size) {
  ClipImageProcessorConfig p;
  p.image_size = image_size;
  return clip_pixels(images, p);
}

}  // namespace luminars
