#include "text/clip_model.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <functional>

#include "core/error.h"
#include "core/json_fields.h"
#include "core/files.h"
#include "core/weight_loader.h"
#include "core/tensor_io.h"
#include "text/clip_tokenizer.h"
#include "text/text_encoder.h"

namespace luminars {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Buffers that transformers before 4.31 saved; the towers recompute them.
const char* kIgnoredClipTensors[] = {"text_model.embeddings.position_ids", "vision_model.embeddings.position_ids"};

json text_config_object(const ClipTextConfig& t) {
  return {{"model_type", "clip_text_model"},
          {"vocab_size", t.vocab_size},
          {"hidden_size", t.hidden_size},
          {"intermediate_size", t.intermediate_size},
          {"num_hidden_layers", t.num_hidden_layers},
          {"num_attention_heads", t.num_attention_heads},
          {"max_position_embeddings", t.max_position_embeddings},
          {"projection_dim", t.projection_dim},
          {"hidden_act", t.hidden_act},
          {"layer_norm_eps", t.layer_norm_eps},
          {"bos_token_id", t.bos_token_id},
          {"eos_token_id", t.eos_token_id},
          {"pad_token_id", t.pad_token_id},
          {"attention_dropout", 0.0},
          {"initializer_range", 0.02},
          {"initializer_factor", 1.0}};
}

void write_text_file(const std::string& path, const std::string& text) {
  write_file_atomic(path, [&](std::ostream& o) { o << text; });
}

// The config with projection_dim copied into both towers and the text projection switched on.
ClipConfig normalised(ClipConfig c) {
  c.text.projection_dim = c.vision.projection_dim = c.projection_dim;
  c.text.with_projection = true;
  c.validate();
  return c;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// ClipConfig
// ---------------------------------------------------------------------------------------------
void ClipConfig::validate() const {
  if (projection_dim <= 0) throw Error("invalid CLIP config: projection_dim must be positive");
  if (!(initializer_factor > 0)) throw Error("invalid CLIP config: initializer_factor must be positive");
  auto tower = [](const char* name, const std::function<void()>& fn) {
    try {
      fn();
    } catch (const Error& e) {
      throw Error(std::string(name) + ": " + e.what());
    }
  };
  tower("text_config", [&] {
    ClipTextConfig t = text;
    t.projection_dim = projection_dim;
    t.validate();
  });
  tower("vision_config", [&] {
    ClipVisionConfig v = vision;
    v.projection_dim = projection_dim;
    v.validate();
  });
}

ClipConfig ClipConfig::from_json(const std::string& text, const std::string& source) {
  json j = json_fields::parse_object(text, source);
  if (j.contains("model_type") && j["model_type"] != "clip")
    throw Error(source + ": model_type " + json_fields::brief(j["model_type"]) + " is not \"clip\" (a CLIPModel config)");
  for (const char* key : {"text_config", "vision_config"})
    if (!j.contains(key) || !j[key].is_object()) throw Error(source + ": field '" + std::string(key) + "' (an object) is missing");
  ClipConfig c;
  json_fields::read(j, "projection_dim", c.projection_dim, source);
  json_fields::read(j, "logit_scale_init_value", c.logit_scale_init_value, source);
  json_fields::read(j, "initializer_factor", c.initializer_factor, source);
  // The towers read their own objects; a top-level projection_dim wins over theirs (as in CLIPModel).
  json towers = {{"text_config", j["text_config"]}, {"vision_config", j["vision_config"]},
                 {"projection_dim", c.projection_dim}};
  c.text = ClipTextConfig::from_json(towers.dump(), source + " text_config");
  c.vision = ClipVisionConfig::from_json(towers.dump(), source + " vision_config");
  c.text.with_projection = true;
  try {
    c.validate();
  } catch (const Error& e) {
    throw Error(source + ": " + e.what());
  }
  return c;
}

ClipConfig ClipConfig::from_file(const std::string& path) {
  if (!fs::exists(path)) throw Error(path + ": file not found (CLIP model config)");
  return from_json(read_file(path), path);
}

std::string ClipConfig::to_json() const {
  const ClipConfig c = normalised(*this);
  json j = {{"architectures", {"CLIPModel"}},
            {"model_type", "clip"},
            {"projection_dim", c.projection_dim},
            {"logit_scale_init_value", c.logit_scale_init_value},
            {"initializer_factor", c.initializer_factor},
            {"torch_dtype", "float32"},
            {"text_config", text_config_object(c.text)},
            {"vision_config", c.vision.to_json()}};
  return j.dump(2) + "\n";
}

std::string clip_text_config_json(const ClipTextConfig& text) {
  json j = text_config_object(text);
  j["architectures"] = {"CLIPTextModelWithProjection"};
  j["torch_dtype"] = "float32";
  return j.dump(2) + "\n";
}

// ---------------------------------------------------------------------------------------------
// ClipModel
// ---------------------------------------------------------------------------------------------
ClipModelImpl::ClipModelImpl(const ClipConfig& config, const torch::TensorOptions& options_in)
    : config_(normalised(config)) {
  const auto options = options_in.has_dtype() ? options_in : options_in.dtype(torch::kFloat32);
  text = ClipTextModel(config_.text, options);
  vision = ClipVisionModel(config_.vision, options);
  // CLIPModel's attribute names; the modules are the towers' own.
  text_model = register_module("text_model", text->text_model);
  vision_model = register_module("vision_model", vision->vision_model);
  visual_projection = register_module("visual_projection", vision->visual_projection);
  text_projection = register_module("text_projection", text->text_projection);
  logit_scale = register_parameter("logit_scale", torch::empty({}, options), /*requires_grad=*/false);
  processor.image_size = config_.vision.image_size;
}

torch::Device ClipModelImpl::device() const { return logit_scale.device(); }

torch::Tensor ClipModelImpl::encode_text(const torch::Tensor& input_ids) { return text->forward(input_ids).text_embeds; }

torch::Tensor ClipModelImpl::encode_image(const torch::Tensor& pixels) { return vision->forward(pixels).image_embeds; }

torch::Tensor ClipModelImpl::preprocess(const torch::Tensor& images) const { return clip_pixels(images, processor); }

torch::Tensor ClipModelImpl::tokenize(const ClipTokenizer& tokenizer, const std::vector<std::string>& prompts) const {
  const auto& t = config_.text;
  if (t.eos_token_id != 2 && tokenizer.eos_id != t.eos_token_id)
    throw Error("CLIP model: the tokenizer's EOS id " + std::to_string(tokenizer.eos_id) +
                " is not text_config.eos_token_id " + std::to_string(t.eos_token_id));
  if (tokenizer.context_length <= t.max_position_embeddings) return encode_batch(tokenizer, prompts);
  // A shorter position table: truncate with EOS kept last, then pad, as the tokenizer itself does.
  const int64_t L = t.max_position_embeddings;
  auto ids = torch::full({static_cast<int64_t>(prompts.size()), L}, tokenizer.pad_id, torch::kInt64);  // [B,L]
  auto acc = ids.accessor<int64_t, 2>();
  for (std::size_t b = 0; b < prompts.size(); ++b) {
    auto row = tokenizer.encode(prompts[b], /*pad=*/false, /*truncate=*/false);
    if (static_cast<int64_t>(row.size()) > L) {
      row.resize(L);
      row.back() = tokenizer.eos_id;
    }
    for (std::size_t i = 0; i < row.size(); ++i) acc[b][i] = row[i];
  }
  return ids;
}

void ClipModelImpl::init_weights(uint64_t seed) {
  if (device().type() == torch::kMeta) return;
  text->init_weights(seed, config_.initializer_factor);
  vision->init_weights(seed + 1, config_.initializer_factor);
  torch::NoGradGuard no_grad;
  logit_scale.fill_(config_.logit_scale_init_value);
}

void ClipModelImpl::set_trainable(bool trainable) {
  for (auto& p : parameters()) p.requires_grad_(trainable);
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------
void save_clip_model(const std::string& dir, const ClipModel& model, const std::string& tokenizer_dir) {
  fs::create_directories(dir);
  const fs::path d(dir);
  save_tensors((d / "model.safetensors").string(), module_state(*model), {{"format", "pt"}}, torch::kFloat32);
  write_text_file((d / "config.json").string(), model->config().to_json());
  write_text_file((d / "preprocessor_config.json").string(), model->processor.to_json());
  if (tokenizer_dir.empty()) return;
  const fs::path t(tokenizer_dir);
  for (const char* name : {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"}) {
    const bool required = std::string(name) == "vocab.json" || std::string(name) == "merges.txt";
    if (!fs::exists(t / name)) {
      if (required) throw Error((t / name).string() + ": file not found (tokenizer for the CLIP model)");
      continue;
    }
    const std::string content = read_file((t / name).string());
    write_text_file((d / name).string(), content);
  }
}

ClipModel load_clip_model(const std::string& dir, torch::Device device) {
  if (!fs::is_directory(dir)) throw Error(dir + ": CLIP model folder not found");
  const fs::path d(dir);
  ClipConfig config = ClipConfig::from_file((d / "config.json").string());
  const std::string path = (d / "model.safetensors").string();
  if (!fs::exists(path)) throw Error(path + ": file not found (CLIP model weights)");
  ClipModel model(config, torch::TensorOptions().dtype(torch::kFloat32).device(device));
  WeightLoadOptions lo;
  lo.rename = [](const std::string& name) {
    for (const char* ignored : kIgnoredClipTensors)
      if (name == ignored) return std::string();
    return name;
  };
  load_module_state(*model, safetensors::Reader(path), lo);
  const std::string processor_path = (d / "preprocessor_config.json").string();
  if (fs::exists(processor_path)) {
    model->processor = ClipImageProcessorConfig::from_file(processor_path);
    if (model->processor.image_size != config.vision.image_size)
      throw Error(processor_path + ": image size " + std::to_string(model->processor.image_size) +
                  " differs from vision_config.image_size " + std::to_string(config.vision.image_size));
  }
  model->eval();
  return model;
}

void save_clip_text_encoder(const std::string& dir, const ClipModel& model) {
  fs::create_directories(dir);
  const fs::path d(dir);
  save_tensors((d / "model.safetensors").string(), module_state(*model->text), {{"format", "pt"}}, torch::kFloat32);
  write_text_file((d / "config.json").string(), clip_text_config_json(model->config().text));
}

std::string clip_tokenizer_dir(const std::string& clip_dir) {
  fs::path d(clip_dir);
  if (fs::exists(d / "vocab.json")) return d.string();
  if (!d.has_filename()) d = d.parent_path();  // "clip/" -> "clip"
  const fs::path beside = d.parent_path() / "tokenizer";
  if (fs::exists(beside / "vocab.json")) return beside.string();
  throw Error(clip_dir + ": no tokenizer (vocab.json and merges.txt) in the CLIP folder or in " + beside.string());
}

}  // namespace luminars
