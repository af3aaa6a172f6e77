#include "model/lora_file.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/number_text.h"
#include "core/safetensors.h"
#include "core/sha256.h"
#include "core/tensor_io.h"

namespace luminars {

namespace {

constexpr const char* kSuffixA = ".lora_A.weight";
constexpr const char* kSuffixB = ".lora_B.weight";
constexpr const char* kPeftPrefix = "base_model.model.";

}  // namespace

void write_lora_file(const std::string& path, const LoraTensors& tensors, LoraFileInfo info) {
  info.rank = tensors.rank;
  info.alpha = tensors.alpha;
  NamedTensors named;
  for (const auto& [p, ab] : tensors.layers) {
    named.emplace_back(p + kSuffixA, ab.first.contiguous());
    named.emplace_back(p + kSuffixB, ab.second.contiguous());
  }
  std::map<std::string, std::string> meta{
      {"luminars_lora_format", std::to_string(info.format_version)},
      {"r", std::to_string(info.rank)},
      {"lora_alpha", format_number(info.alpha)},
      {"lora_dropout", format_number(info.dropout)},
      {"target_modules", nlohmann::json(info.targets).dump()},
      {"base_model", info.base_model},
      {"base_model_sha256", info.base_hash},
      {"trigger_words", nlohmann::json(info.trigger_words).dump()},
      {"training_steps", std::to_string(info.steps)}};
  if (!info.training_data.empty()) meta["training_data"] = info.training_data;
  save_tensors(path, named, meta, torch::kFloat32);
}

LoraFile read_lora_file(const std::string& path) {
  const auto reader = open_lora_file(path);
  LoraFile out;
  out.path = path;
  out.info = lora_info_from_metadata(reader->metadata(), path);

  std::map<std::string, torch::Tensor> a, b;
  for (const auto& view : reader->tensors()) {
    std::string name = view.name;
    std::string module;
    bool is_a = name.ends_with(kSuffixA), is_b = name.ends_with(kSuffixB);
    if (!is_a && !is_b)
      throw Error("LoRA file " + path + ": tensor " + name + " is neither a .lora_A.weight nor a .lora_B.weight");
    module = name.substr(0, name.size() - std::string(is_a ? kSuffixA : kSuffixB).size());
    if (module.rfind(kPeftPrefix, 0) == 0) module = module.substr(std::string(kPeftPrefix).size());
    if (view.dtype != safetensors::DType::F32 && view.dtype != safetensors::DType::F16 && view.dtype != safetensors::DType::BF16 &&
        view.dtype != safetensors::DType::F64)
      throw Error("LoRA file " + path + ": tensor " + name + " is " + safetensors::dtype_name(view.dtype) + ", not a floating-point type");
    auto t = to_tensor(view).to(torch::kFloat32);
    if (t.dim() == 4 && t.size(2) == 1 && t.size(3) == 1) t = t.flatten(1);  // a 1×1 convolution's
    if (t.dim() != 2) throw Error("LoRA file " + path + ": tensor " + name + " is not 2-D");
    if (!torch::isfinite(t).all().item<bool>()) throw Error("LoRA file " + path + ": tensor " + name + " holds NaN or infinite values");
    auto& into = is_a ? a : b;
    if (!into.emplace(module, t).second) throw Error("LoRA file " + path + ": tensor " + name + " appears twice");
  }
  if (a.empty()) throw Error("LoRA file " + path + " holds no LoRA tensors");
  for (const auto& [m, ta] : a)
    if (!b.count(m)) throw Error("LoRA file " + path + ": tensor " + m + ".lora_B.weight is missing (" + m + ".lora_A.weight has no partner)");
  for (const auto& [m, tb] : b)
    if (!a.count(m)) throw Error("LoRA file " + path + ": tensor " + m + ".lora_A.weight is missing (" + m + ".lora_B.weight has no partner)");
  int64_t rank = -1;
  for (const auto& [m, ta] : a) {
    const auto& tb = b.at(m);
    if (ta.size(0) != tb.size(1))
      throw Error("LoRA file " + path + ": tensors " + m + ".lora_A/B.weight disagree on the rank (" + std::to_string(ta.size(0)) +
                  " vs " + std::to_string(tb.size(1)) + ")");
    if (rank >= 0 && ta.size(0) != rank)
      throw Error("LoRA file " + path + ": tensor " + m + ".lora_A.weight has rank " + std::to_string(ta.size(0)) + ", the others " +
                  std::to_string(rank));
    rank = ta.size(0);
    out.tensors.layers[m] = {ta, tb};
  }
  if (out.info.rank != 0 && out.info.rank != rank)
    throw Error("LoRA file " + path + ": metadata r = " + std::to_string(out.info.rank) + " but the tensors have rank " + std::to_string(rank));
  out.info.rank = rank;
  if (out.info.alpha == 0) out.info.alpha = static_cast<double>(rank);  // PEFT's files keep alpha elsewhere: scale 1
  if (!std::isfinite(out.info.alpha)) throw Error("LoRA file " + path + ": lora_alpha is not finite");
  out.tensors.rank = rank;
  out.tensors.alpha = out.info.alpha;
  return out;
}

std::string denoiser_weights_hash(const std::string& denoiser_path) {
  safetensors::Reader reader(denoiser_path);
  std::vector<const safetensors::TensorView*> views;
  for (const auto& v : reader.tensors()) views.push_back(&v);
  std::sort(views.begin(), views.end(), [](auto* x, auto* y) { return x->name < y->name; });
  Sha256 h;
  for (const auto* v : views) {
    std::string head = v->name + ":" + safetensors::dtype_name(v->dtype) + ":";
    for (auto d : v->shape) head += std::to_string(d) + ",";
    h.update(head);
    h.update(v->data, v->nbytes);
  }
  return h.hex();
}

std::string denoiser_lora_identity(const std::string& denoiser_path) {
  safetensors::Reader reader(denoiser_path);
  if (auto it = reader.metadata().find(kLoraBaseKey); it != reader.metadata().end() && !it->second.empty()) return it->second;
  return denoiser_weights_hash(denoiser_path);
}

void check_lora_base(const LoraFile& lora, const std::string& base_name, const std::string& base_hash) {
  if (lora.info.base_hash.empty() || lora.info.base_hash == base_hash) return;
  auto name = [](const std::string& n) { return n.empty() ? std::string("an unnamed model") : n; };
  throw Error("LoRA file " + lora.path + " was made for base model " + name(lora.info.base_model) + " (weights sha256 " +
              lora.info.base_hash.substr(0, 12) + "), not for " + name(base_name) + " (weights sha256 " + base_hash.substr(0, 12) + ")");
}

std::string lora_file_short_hash(const std::string& path) { return sha256_file(path).substr(0, 12); }

}  // namespace luminars
