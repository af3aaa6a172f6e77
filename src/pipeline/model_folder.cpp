#include "pipeline/model_folder.h"

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/format_version.h"
#include "core/json_fields.h"

namespace luminars {

namespace fs = std::filesystem;

std::string ModelFolder::path_of(const std::string& component) const {
  fs::path p(component);
  return (p.is_absolute() ? p : fs::path(dir) / p).lexically_normal().string();
}

ModelFolder ModelFolder::load(const std::string& dir) {
  const auto file = (fs::path(dir) / "luminars.json").string();
  if (!fs::is_directory(dir)) throw Error("model folder not found: " + dir);
  if (!fs::exists(file)) throw Error("not a LuminaRS model folder (no luminars.json): " + dir);
  ModelFolder m;
  m.dir = fs::absolute(dir).lexically_normal().string();
  try {
    auto j = json_fields::parse(read_file(file), file);
    read_format_version(j, file);
    m.denoiser = j.value("denoiser", m.denoiser);
    m.text_encoder = j.value("text_encoder", m.text_encoder);
    m.tokenizer = j.value("tokenizer", m.tokenizer);
    m.vae = j.value("vae", m.vae);
    m.penultimate = j.value("penultimate", m.penultimate);
    m.weights = j.value("weights", m.weights);
    // Integers type-checked: value() would convert any float, out of int64's range too (undefined).
    json_fields::read(j, "resolution", m.resolution, file);
    if (j.contains("trained_sizes")) {
      const auto& sizes = j["trained_sizes"];
      if (!sizes.is_array() || sizes.empty() || sizes.size() > 64)
        throw Error(file + ": field 'trained_sizes' must be a list of 1 to 64 image sides, e.g. [64]");
      for (const auto& v : sizes) {
        if (!v.is_number_integer() || v.get<int64_t>() < 8 || v.get<int64_t>() > 16384)
          throw Error(file + ": field 'trained_sizes' holds " + json_fields::brief(v) + "; sides are integers from 8 to 16384");
        m.trained_sizes.push_back(v.get<int64_t>());
      }
    }
    if (j.contains("sampler")) {
      const auto& s = j["sampler"];
      json_fields::read(s, "steps", m.sampler.steps, file);
      m.sampler.method = s.value("method", m.sampler.method);
      m.sampler.cfg_scale = s.value("cfg_scale", m.sampler.cfg_scale);
      m.sampler.shift = s.value("shift", m.sampler.shift);
      if (s.contains("hires_fix")) {
        const auto& h = s["hires_fix"];
        if (!h.is_object()) throw Error(file + ": field 'sampler.hires_fix' must be an object, e.g. {\"from\": 64, \"strength\": 0.4}");
        json_fields::read(h, "from", m.sampler.hires_from, file + " (sampler.hires_fix)");
        json_fields::read(h, "strength", m.sampler.hires_strength, file + " (sampler.hires_fix)");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(file + ": " + e.what());
  }
  auto out_of_range = [&](const char* field, const std::string& range) {
    return Error(file + ": field '" + field + "' must be " + range);
  };
  if (m.resolution < 8 || m.resolution > 16384) throw out_of_range("resolution", "between 8 and 16384 pixels");
  if (m.trained_sizes.empty()) m.trained_sizes = {m.resolution};  // folders written before the field
  if (m.sampler.steps < 1 || m.sampler.steps > 1000) throw out_of_range("sampler.steps", "between 1 and 1000");
  if (!std::isfinite(m.sampler.cfg_scale) || m.sampler.cfg_scale < 0 || m.sampler.cfg_scale > 100)
    throw out_of_range("sampler.cfg_scale", "between 0 and 100");
  if (!std::isfinite(m.sampler.shift) || m.sampler.shift <= 0 || m.sampler.shift > 100)
    throw out_of_range("sampler.shift", "above 0 and at most 100");
  if (m.sampler.hires_from < 0 || m.sampler.hires_from > 4096) throw out_of_range("sampler.hires_fix.from", "between 0 (off) and 4096 pixels");
  if (!std::isfinite(m.sampler.hires_strength) || m.sampler.hires_strength <= 0 || m.sampler.hires_strength > 1)
    throw out_of_range("sampler.hires_fix.strength", "above 0 and at most 1");
  return m;
}

void ModelFolder::save() const {
  nlohmann::ordered_json j;
  j["format"] = "luminars";
  j[kFormatVersionKey] = kFormatVersion;
  j["denoiser"] = denoiser;
  j["text_encoder"] = text_encoder;
  j["tokenizer"] = tokenizer;
  j["vae"] = vae;
  j["penultimate"] = penultimate;
  j["resolution"] = resolution;
  j["trained_sizes"] = trained_sizes.empty() ? std::vector<int64_t>{resolution} : trained_sizes;
  if (!weights.empty()) j["weights"] = weights;
  j["sampler"] = {{"steps", sampler.steps}, {"method", sampler.method}, {"cfg_scale", sampler.cfg_scale}, {"shift", sampler.shift}};
  if (sampler.hires_from > 0) j["sampler"]["hires_fix"] = {{"from", sampler.hires_from}, {"strength", sampler.hires_strength}};
  fs::create_directories(dir);
  write_file_atomic((fs::path(dir) / "luminars.json").string(), [&](std::ostream& o) { o << j.dump(2) << "\n"; });
}

}  // namespace luminars
