#include "model/lora_info.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace luminars {

std::unique_ptr<safetensors::Reader> open_lora_file(const std::string& path) {
  if (!std::filesystem::is_regular_file(path)) throw Error("LoRA file " + path + " does not exist");
  try {
    return std::make_unique<safetensors::Reader>(path);
  } catch (const std::exception& e) {
    throw Error("LoRA file " + path + " is not a readable safetensors file: " + e.what());
  }
}

LoraFileInfo lora_info_from_metadata(const std::map<std::string, std::string>& meta, const std::string& path) {
  LoraFileInfo info;
  auto get = [&](const char* key) -> std::string {
    auto it = meta.find(key);
    return it == meta.end() ? "" : it->second;
  };
  try {
    if (auto v = get("luminars_lora_format"); !v.empty()) info.format_version = std::stoi(v);
    if (info.format_version > kLoraFormatVersion)
      throw Error("format version " + std::to_string(info.format_version) + " is newer than this program reads (" +
                  std::to_string(kLoraFormatVersion) + ")");
    if (auto v = get("lora_alpha"); !v.empty()) info.alpha = std::stod(v);
    if (auto v = get("lora_dropout"); !v.empty()) info.dropout = std::stod(v);
    if (auto v = get("training_steps"); !v.empty()) info.steps = std::stoll(v);
    if (auto v = get("target_modules"); !v.empty()) info.targets = nlohmann::json::parse(v).get<std::vector<std::string>>();
    if (auto v = get("trigger_words"); !v.empty()) info.trigger_words = nlohmann::json::parse(v).get<std::vector<std::string>>();
    if (auto v = get("r"); !v.empty()) info.rank = std::stoll(v);
  } catch (const Error& e) {
    throw Error("LoRA file " + path + ": " + e.what());
  } catch (const std::exception& e) {
    throw Error("LoRA file " + path + ": unreadable metadata (" + e.what() + ")");
  }
  info.base_model = get("base_model");
  info.base_hash = get("base_model_sha256");
  info.training_data = get("training_data");
  return info;
}

LoraFileInfo read_lora_info(const std::string& path) { return lora_info_from_metadata(open_lora_file(path)->metadata(), path); }

std::vector<int64_t> lora_trained_sides(const LoraFileInfo& info) {
  std::vector<int64_t> sides;
  const auto j = nlohmann::json::parse(info.training_data, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return sides;
  auto add = [&](const nlohmann::json& v) {
    if (v.is_number_integer() && v.get<int64_t>() > 0 && std::find(sides.begin(), sides.end(), v.get<int64_t>()) == sides.end())
      sides.push_back(v.get<int64_t>());
  };
  if (j.contains("resolution")) add(j["resolution"]);
  if (j.contains("buckets") && j["buckets"].is_array())
    for (const auto& b : j["buckets"])
      if (b.is_array())
        for (const auto& side : b) add(side);
  std::sort(sides.begin(), sides.end());
  return sides;
}

}  // namespace luminars
