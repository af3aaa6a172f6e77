#include "pipeline/lora_prompt.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "model/lora_info.h"

namespace luminars {

namespace fs = std::filesystem;

namespace {

std::optional<double> finite_number(const std::string& text) {
  double v = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, v);
  if (ec != std::errc() || ptr != end || !std::isfinite(v)) return std::nullopt;
  return v;
}

}  // namespace

std::string strip_lora_tags(const std::string& prompt, std::vector<PromptLora>* found) {
  static const std::string open = "<lora:";
  if (prompt.find(open) == std::string::npos) return prompt;
  std::string out;
  std::size_t i = 0;
  while (i < prompt.size()) {
    const std::size_t at = prompt.find(open, i);
    const std::size_t close = at == std::string::npos ? at : prompt.find('>', at);
    if (close == std::string::npos) {
      out += prompt.substr(i);
      break;
    }
    out += prompt.substr(i, at - i);
    const std::string body = prompt.substr(at + open.size(), close - at - open.size());
    PromptLora l;
    const std::size_t colon = body.find(':');
    if (colon == std::string::npos) {
      l.name = body;
    } else {
      // A1111 also reads <lora:NAME:TE_WEIGHT:UNET_WEIGHT>; here the weight is one number.
      l.name = body.substr(0, colon);
      const std::string weight = body.substr(colon + 1);
      auto w = finite_number(weight);
      if (!w) throw Error("the prompt's <lora:" + body + "> has weight '" + weight + "', not a finite number");
      l.weight = *w;
    }
    if (l.name.empty()) throw Error("the prompt's <lora:" + body + "> names no LoRA");
    if (found) found->push_back(l);
    i = close + 1;
  }
  // Spaces the tags leave behind: "a cat <lora:x:1>, red" reads "a cat, red".
  std::string tidy;
  for (char c : out) {
    if ((c == ' ' || c == ',') && !tidy.empty() && tidy.back() == ' ') tidy.pop_back();
    if (c == ' ' && tidy.empty()) continue;
    tidy += c;
  }
  while (!tidy.empty() && (tidy.back() == ' ' || tidy.back() == ',')) tidy.pop_back();
  return tidy;
}

std::string resolve_lora(const std::string& name, const std::string& dir) {
  if (dir.empty()) throw Error("the prompt names LoRA '" + name + "' but no LoRA folder was given (--lora-dir)");
  if (name.find('/') != std::string::npos || name.find('\\') != std::string::npos || name == "." || name == "..")
    throw Error("LoRA name '" + name + "' must be a file name in the LoRA folder, not a path");
  const fs::path path = fs::path(dir) / (name + ".safetensors");
  if (!fs::is_regular_file(path)) throw Error("LoRA '" + name + "' is not in " + dir + " (no " + path.string() + ")");
  return path.string();
}

LoraSpec parse_lora_argument(const std::string& argument) {
  LoraSpec spec;
  spec.path = argument;
  const std::size_t colon = argument.rfind(':');
  if (colon != std::string::npos && colon + 1 < argument.size()) {
    const std::string tail = argument.substr(colon + 1);
    if (auto w = finite_number(tail)) {
      spec.path = argument.substr(0, colon);
      spec.weight = *w;
    } else if (!fs::exists(argument)) {
      throw Error("--lora " + argument + ": weight '" + tail + "' is not a finite number");
    }
  }
  if (spec.path.empty()) throw Error("--lora " + argument + " names no file");
  return spec;
}

std::vector<std::string> list_loras(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  if (dir.empty() || !fs::is_directory(dir, ec)) return names;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file() && e.path().extension() == ".safetensors") names.push_back(e.path().stem().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string default_lora_dir(const std::string& model_dir) { return (fs::path(model_dir) / "loras").string(); }

std::vector<LoraSpec> request_loras(const GenerationRequest& r, const std::string& lora_dir) {
  std::vector<PromptLora> tags;
  strip_lora_tags(r.prompt, &tags);
  std::vector<LoraSpec> out;
  for (const auto& t : tags) out.push_back({resolve_lora(t.name, lora_dir), t.weight, t.name});
  for (const auto& spec : r.loras) {
    if (!std::isfinite(spec.weight)) throw Error("LoRA " + spec.path + ": weight must be a finite number");
    if (!fs::is_regular_file(spec.path)) throw Error("LoRA file " + spec.path + " does not exist");
    out.push_back(spec);
  }
  return out;
}

SizeRule widen_for_loras(SizeRule rule, const std::vector<LoraSpec>& loras) {
  if (rule.trained.empty()) return rule;
  for (const auto& spec : loras)
    for (int64_t side : lora_trained_sides(read_lora_info(spec.path)))
      if (std::find(rule.trained.begin(), rule.trained.end(), side) == rule.trained.end()) rule.trained.push_back(side);
  return rule;
}

std::string lora_name(const LoraSpec& spec) { return spec.name.empty() ? fs::path(spec.path).stem().string() : spec.name; }

}  // namespace luminars
