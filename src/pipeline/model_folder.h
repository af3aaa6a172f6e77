// A LuminaRS model folder (DESIGN §6), in the layout of a diffusers pipeline:
//   luminars.json   what is where and the sampler defaults
//   denoiser/       model.safetensors (config in its metadata)
//   text_encoder/, tokenizer/, vae/   published folders, or paths in luminars.json pointing at them
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace luminars {

struct SamplerDefaults {
  int64_t steps = 12;
  std::string method = "euler";
  double cfg_scale = 4.0;
  double shift = 1.0;
  // "hires_fix": {"from": 64, "strength": 0.5}: sides above `from` are drawn in two passes (first at
  // `from`, then upscaled and redrawn at `strength`; pipeline/generation.h). 0: one pass at every size.
  int64_t hires_from = 0;
  double hires_strength = 0.5;  // the strength docs/emoji/ablations.md chose for the shipped model
};

struct ModelFolder {
  std::string dir;
  std::string denoiser = "denoiser/model.safetensors";  // paths relative to `dir` unless absolute
  std::string text_encoder = "text_encoder", tokenizer = "tokenizer", vae = "vae";
  bool penultimate = false;     // ctx from CLIP's penultimate layer
  int64_t resolution = 256;     // image side the model was trained at (the default size)
  // The image sides the model was trained at ("trained_sizes"; folders without it: {resolution}).
  // `generate` and `serve` refuse other sizes unless --any-size.
  std::vector<int64_t> trained_sizes;
  SamplerDefaults sampler;
  // How `luminars export` stored the weights ("weights": f16, bf16, f32, q8_0 or q4_0; empty when
  // not recorded). Informational: each safetensors file describes its own storage (q8_0 and q4_0
  // in its metadata, core/quantize.h), and every loader reads them all.
  std::string weights;

  // Absolute path of a component.
  std::string path_of(const std::string& component) const;
  // Reads DIR/luminars.json (missing entries keep the defaults above); errors name the file.
  static ModelFolder load(const std::string& dir);
  // Writes DIR/luminars.json atomically.
  void save() const;
};

}  // namespace luminars
