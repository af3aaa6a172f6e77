#include "pipeline/export_model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <map>
#include <regex>
#include <set>

#include "core/error.h"
#include "core/number_text.h"
#include "core/format_version.h"
#include "core/module_state.h"
#include "core/tensor_io.h"
#include "model/checkpoint.h"
#include "model/lora_file.h"
#include "pipeline/calibration.h"
#include "pipeline/model_folder.h"
#include "vae/autoencoder_kl.h"
#include "vae/vae.h"

namespace luminars {

namespace fs = std::filesystem;

namespace {

int64_t folder_bytes(const fs::path& dir) {
  int64_t n = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) n += static_cast<int64_t>(e.file_size());
  return n;
}

// Every tensor of a weights file as float (quantized weights dequantized), and its metadata less
// the quantization entry.
NamedTensors read_float_tensors(const std::string& path, std::map<std::string, std::string>& metadata) {
  safetensors::Reader reader(path);
  const quant::QuantizedWeights quantized(reader);
  NamedTensors tensors;
  for (const auto& v : reader.tensors())
    if (!quantized.is_part(v.name)) tensors.emplace_back(v.name, to_tensor(v));
  for (const auto& name : quantized.names()) tensors.emplace_back(name, quantized.dequantize(name));
  metadata = reader.metadata();
  metadata.erase(quant::kMetadataKey);
  return tensors;
}

// ExportOptions::tensor_schemes compiled, with which patterns have matched a weight so far.
class TensorSchemes {
 public:
  explicit TensorSchemes(const std::vector<ExportOptions::TensorScheme>& specs) : specs_(specs), used_(specs.size(), false) {
    for (const auto& spec : specs) {
      try {
        patterns_.emplace_back(spec.pattern);
      } catch (const std::regex_error& e) {
        throw Error("--tensor-dtype '" + spec.pattern + "': not a regular expression (" + e.what() + ")");
      }
    }
  }
  // The schemes of a part's weights in a file of scheme `file`: the first matching pattern's, else
  // q8_0 where a q4_0 file keeps 8 bits (`keep`), else the file's. None for an unquantized file.
  quant::WeightScheme of_part(std::optional<quant::Scheme> file, quant::KeepEightBits keep = {}) {
    if (!file) return {};
    const auto kept = quant::eight_bits_where(*file, std::move(keep));
    return [this, kept](const std::string& name, const torch::Tensor& weight) -> std::optional<quant::Scheme> {
      for (std::size_t i = 0; i < patterns_.size(); ++i)
        if (std::regex_search(name, patterns_[i])) {
          used_[i] = true;
          return specs_[i].scheme;
        }
      return kept(name, weight);
    };
  }
  // Throws naming a pattern that matched no quantizable weight (a typo would otherwise change nothing).
  void check_all_used() const {
    for (std::size_t i = 0; i < specs_.size(); ++i)
      if (!used_[i])
        throw Error("--tensor-dtype '" + specs_[i].pattern + "=" + quant::scheme_name(specs_[i].scheme) +
                    "': the pattern matches no quantizable weight (names like unet.up.0.blocks.0.mlp_in.weight, "
                    "text_model.encoder.layers.0.mlp.fc1.weight, decoder.up_blocks.0.resnets.0.conv1.weight)");
  }
  // "…, mlp_in=q8_0, ada=q8_0" for luminars.json's "weights".
  std::string describe() const {
    std::string out;
    for (const auto& spec : specs_) out += ", " + spec.pattern + "=" + quant::scheme_name(spec.scheme);
    return out;
  }

 private:
  const std::vector<ExportOptions::TensorScheme>& specs_;
  std::vector<std::regex> patterns_;
  std::vector<bool> used_;
};

void write_weights(const std::string& path, NamedTensors tensors, std::map<std::string, std::string> metadata,
                   const ExportOptions& o, const quant::WeightScheme& scheme_of = {},
                   const std::map<std::string, InputMoments>& calibration = {}) {
  if (o.quantize) tensors = quant::quantize_tensors(tensors, *o.quantize, o.dtype, metadata, scheme_of, calibration);
  save_tensors(path, tensors, metadata, o.dtype);
}

// Copies the small files of a component folder (configs, tokenizer files) and converts its
// safetensors weights, keeping names and metadata; `adjust` may change the weights' values first.
void export_component(const std::string& from, const fs::path& to, const ExportOptions& o,
                      const std::function<void(NamedTensors&, std::map<std::string, std::string>&)>& adjust = {},
                      const quant::WeightScheme& scheme_of = {}) {
  if (!fs::is_directory(from)) throw Error("model component not found: " + from);
  fs::create_directories(to);
  for (const auto& e : fs::directory_iterator(from)) {
    if (!e.is_regular_file()) continue;
    const auto name = e.path().filename().string();
    if (e.path().extension() == ".safetensors") {
      std::map<std::string, std::string> metadata;
      auto tensors = read_float_tensors(e.path().string(), metadata);
      if (adjust) adjust(tensors, metadata);
      write_weights((to / name).string(), std::move(tensors), std::move(metadata), o, scheme_of);
    } else {
      fs::copy_file(e.path(), to / name, fs::copy_options::overwrite_existing);
    }
  }
}

// The VAE to export: the model's, or `replacement` when it makes the same latents (denoisers are
// trained on the encoder's latents, scaled and shifted: a VAE that changes them breaks the model).
std::string vae_to_export(const std::string& model_vae, const std::string& replacement) {
  if (replacement.empty()) return model_vae;
  const VaeGeometry a = read_vae_geometry(model_vae), b = read_vae_geometry(replacement);
  auto differs = [&](const std::string& what, const std::string& was, const std::string& now) {
    if (was != now)
      throw Error("--vae " + replacement + ": its " + what + " is " + now + ", the model's VAE's " + was +
                  ": the denoiser needs the same latents (fine-tune the model's VAE with train-vae --init --decoder-only)");
  };
  differs("class", a.class_name, b.class_name);
  differs("latent channels", std::to_string(a.latent_channels), std::to_string(b.latent_channels));
  differs("downscale factor", std::to_string(a.downscale_factor), std::to_string(b.downscale_factor));
  auto close = [](double x, double y) { return std::abs(x - y) <= 1e-6 * std::max(1.0, std::abs(x)); };
  if (!close(a.scaling_factor, b.scaling_factor)) differs("scaling_factor", std::to_string(a.scaling_factor), std::to_string(b.scaling_factor));
  if (!close(a.shift_factor, b.shift_factor)) differs("shift_factor", std::to_string(a.shift_factor), std::to_string(b.shift_factor));
  return replacement;
}

// "1 prompt", "16 prompts"
std::string count(std::size_t n, const std::string& what) { return std::to_string(n) + " " + what + (n == 1 ? "" : "s"); }

// Tunes the denoiser's float weights for their rounding in `scheme`, or scheme_of's where it says
// (pipeline/quantization_tuning.h), on o's tuning prompts, every 8th held out to measure; the
// weights in `calibrated` start from their calibrated (GPTQ) 4-bit rounding. Records both in
// `metadata`; returns the note.
std::string tune_denoiser(const ModelFolder& src, LuminaRS& denoiser, const ExportOptions& o, quant::Scheme scheme,
                          const quant::WeightScheme& scheme_of, const std::set<std::string>& calibrated,
                          std::map<std::string, std::string>& metadata) {
  QuantizationTuning t;
  t.steps = o.tune_steps;
  t.lr = o.tune_lr;
  t.seeds = o.tune_seeds;
  const auto& prompts = o.tuning_prompts.empty() ? default_tuning_prompts() : o.tuning_prompts;
  for (std::size_t i = 0; i < prompts.size(); ++i)
    (prompts.size() >= 8 && i % 8 == 7 ? t.held_out : t.prompts).push_back(prompts[i]);
  t.scheme = scheme;
  t.scheme_of = scheme_of;
  if (!calibrated.empty()) {
    const auto moments = denoiser_input_moments(src, denoiser, o.calibration_prompts);
    for (const auto& p : denoiser->named_parameters()) {
      const auto c = moments.find(p.key());
      if (c == moments.end() || !calibrated.count(p.key())) continue;
      t.start[p.key()] = quant::dequantize(quant::quantize(p.value(), quant::Scheme::q4_0, c->second), quant::Scheme::q4_0,
                                           p.value().sizes());
    }
    metadata["luminars.calibration"] = count(o.calibration_prompts.size(), "prompt");
  }
  const auto r = tune_for_quantization(src, denoiser, t);
  std::string note = count(t.steps, "step") + " on " + count(r.states, "state") + " of " + count(t.prompts.size(), "prompt") +
                     "; guided velocity's relative error " + format_number(r.error_before) + " -> " + format_number(r.error_after);
  if (!t.held_out.empty())
    note += ", on " + count(t.held_out.size(), "held-out prompt") + " " + format_number(r.held_out_before) + " -> " +
            format_number(r.held_out_after);
  metadata["luminars.quantization_tuning"] = note;
  return note;
}

}  // namespace

ExportSummary export_model(const ExportOptions& o) {
  if (o.dtype != torch::kFloat16 && o.dtype != torch::kBFloat16 && o.dtype != torch::kFloat32)
    throw Error("export: weights are stored as f16, bf16 or f32");
  const ModelFolder src = ModelFolder::load(o.model_dir);
  if (o.out_dir.empty()) throw Error("no output folder given (--out)");
  if (o.hires_strength == 0 || o.hires_strength > 1)
    throw Error("export: the hires fix's strength must be in (0, 1], got " + format_number(o.hires_strength));

  if (o.tune_steps > 0 && !o.quantize) throw Error("export: tuning (--tune-steps) is for quantized weights (--dtype q8_0 or q4_0)");
  if (o.denoiser_quantize && !o.quantize) throw Error("export: a denoiser scheme (--denoiser-dtype) needs a quantized --dtype (q8_0 or q4_0)");
  if (!o.tensor_schemes.empty() && !o.quantize)
    throw Error("export: weights' schemes by name (--tensor-dtype) need a quantized --dtype (q8_0 or q4_0)");
  TensorSchemes tensor_schemes(o.tensor_schemes);
  const fs::path out = fs::absolute(o.out_dir).lexically_normal();
  if (out == fs::path(src.dir)) throw Error("export: the output folder is the model folder itself: " + o.out_dir);
  const fs::path tmp = out.parent_path() / (out.filename().string() + ".tmp-export");
  // The LoRAs to merge, read and checked against this base before anything is written.
  std::vector<std::pair<LoraFile, double>> loras;
  if (!o.merge_loras.empty()) {
    const std::string base_hash = denoiser_lora_identity(src.path_of(src.denoiser));
    for (const auto& spec : o.merge_loras) {
      loras.emplace_back(read_lora_file(spec.path), spec.weight);
      check_lora_base(loras.back().first, fs::path(src.dir).filename().string(), base_hash);
    }
  }
  fs::remove_all(tmp);
  fs::create_directories(tmp);

  ModelFolder m = src;
  m.dir = tmp.string();
  m.tokenizer = "tokenizer";
  m.text_encoder = "text_encoder";
  m.vae = "vae";
  m.denoiser = "denoiser/model.safetensors";
  if (o.steps > 0) m.sampler.steps = o.steps;
  if (o.cfg_scale > 0) m.sampler.cfg_scale = o.cfg_scale;
  if (o.hires_from >= 0) m.sampler.hires_from = o.hires_from;
  if (o.hires_strength > 0) m.sampler.hires_strength = o.hires_strength;
  ExportOptions od = o;  // the denoiser's
  od.quantize = o.denoiser_scheme();
  m.weights = o.quantize ? quant::scheme_name(*o.quantize)
              : o.dtype == torch::kFloat16 ? "f16" : o.dtype == torch::kBFloat16 ? "bf16" : "f32";
  if (od.quantize != o.quantize) m.weights += std::string(", denoiser ") + quant::scheme_name(*od.quantize);
  m.weights += tensor_schemes.describe();
  export_component(src.path_of(src.tokenizer), tmp / "tokenizer", o);
  // LoRA layers of the text encoder (group text) merged into its weights, the others into the denoiser's.
  export_component(src.path_of(src.text_encoder), tmp / "text_encoder", o,
                   [&](NamedTensors& tensors, std::map<std::string, std::string>& metadata) {
                     std::string list;
                     for (const auto& [lora, weight] : loras) {
                       const auto part = lora_part(lora.tensors, /*text=*/true);
                       if (part.layers.empty()) continue;
                       merge_lora_into_tensors(tensors, part, weight, kTextLoraPrefix, "LoRA file " + lora.path);
                       list += (list.empty() ? "" : ", ") + fs::path(lora.path).stem().string() + ":" + std::to_string(weight);
                     }
                     if (!list.empty()) metadata["merged_loras"] = list;
                   },
                   tensor_schemes.of_part(o.quantize));
  const std::string vae_dir = vae_to_export(src.path_of(src.vae), o.vae_dir);
  const VaeConfig vae_config = VaeConfig::from_file((fs::path(vae_dir) / "config.json").string());
  export_component(vae_dir, tmp / "vae", o, {}, tensor_schemes.of_part(o.quantize, [&](const std::string& name, const torch::Tensor&) {
    return vae_keeps_eight_bits(vae_config, name);
  }));
  fs::create_directories(tmp / "denoiser");
  auto denoiser = load_denoiser(src.path_of(src.denoiser));  // checks the file as the model reads it
  std::map<std::string, std::string> merged;
  if (!loras.empty()) {
    std::string list;
    for (const auto& [lora, weight] : loras) {
      attach_lora(denoiser, lora_part(lora.tensors, /*text=*/false), weight, "LoRA file " + lora.path);
      list += (list.empty() ? "" : ", ") + fs::path(lora.path).stem().string() + ":" + std::to_string(weight);
    }
    merge_lora_into_weights(denoiser);
    merged["merged_loras"] = list;
  } else {  // the same weights in another storage: LoRAs of the source apply (model/lora_file.h)
    merged[kLoraBaseKey] = denoiser_lora_identity(src.path_of(src.denoiser));
  }
  merged[kConfigMetadataKey] = denoiser->config().to_json();
  merged[kFormatVersionKey] = std::to_string(kFormatVersion);
  std::map<std::string, InputMoments> calibration;
  std::string tuning_note;
  const auto denoiser_schemes = tensor_schemes.of_part(od.quantize, denoiser_keeps_eight_bits);
  // The denoiser's 4-bit weights, calibrated where prompts are given. Naming them also marks the
  // patterns that match the denoiser, so every pattern must have matched a weight by now (the other
  // parts are written): refused before the calibration and tuning runs, not after.
  std::set<std::string> calibrated;
  if (denoiser_schemes)
    for (const auto& [name, t] : module_state(*denoiser))
      if (quant::quantizable(name, t) && denoiser_schemes(name, t).value_or(*od.quantize) == quant::Scheme::q4_0 &&
          !o.calibration_prompts.empty())
        calibrated.insert(name);
  try {
    tensor_schemes.check_all_used();
  } catch (const Error&) {
    fs::remove_all(tmp);
    throw;
  }
  if (o.tune_steps > 0) {
    tuning_note = tune_denoiser(src, denoiser, o, *od.quantize, denoiser_schemes, calibrated, merged);
  } else if (!calibrated.empty()) {
    calibration = denoiser_input_moments(src, denoiser, o.calibration_prompts);
    merged["luminars.calibration"] = count(o.calibration_prompts.size(), "prompt");
  }
  write_weights((tmp / m.denoiser).string(), module_state(*denoiser), std::move(merged), od, denoiser_schemes, calibration);
  m.save();

  // Replace the old folder only now that the new one is complete.
  fs::remove_all(out);
  fs::rename(tmp, out);
  ExportSummary s;
  s.bytes = folder_bytes(out);
  if (!tuning_note.empty()) s.text += "denoiser tuned for its rounding: " + tuning_note + "\n";
  for (const char* part : {"tokenizer", "text_encoder", "vae", "denoiser"})
    s.text += std::string(part) + ": " + std::to_string(folder_bytes(out / part) / 1024) + " KiB\n";
  s.text += "wrote " + out.string() + " (" + std::to_string(s.bytes / (1024 * 1024)) + " MiB)";
  return s;
}

std::string default_model_dir() {
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("LUMINARS_MODEL"); env && *env) {
    if (fs::exists(fs::path(env) / "luminars.json")) return env;
    throw Error("LUMINARS_MODEL=" + std::string(env) + " is not a model folder (no luminars.json)");
  }
  std::error_code ec;
  const auto exe = fs::canonical("/proc/self/exe", ec);
  if (!ec)  // build/luminars, build/bin/luminars, or an installed bin/luminars beside share/
    for (auto dir = exe.parent_path().parent_path(); tried.size() < 3 && dir.has_relative_path(); dir = dir.parent_path())
      tried.push_back(dir / "models" / "emoji");
  tried.push_back(fs::current_path() / "models" / "emoji");
  std::string where;
  for (const auto& t : tried) {
    if (fs::exists(t / "luminars.json")) return t.lexically_normal().string();
    where += (where.empty() ? "" : ", ") + t.lexically_normal().string();
  }
  throw Error("no --model given and no default model found (looked in " + where + "; set LUMINARS_MODEL)");
}

}  // namespace luminars
