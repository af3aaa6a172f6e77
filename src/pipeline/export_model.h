// A self-contained copy of a model folder: every component (tokenizer, text encoder, VAE,
// denoiser) copied under the folder with relative paths in luminars.json, floating-point weights
// stored in F16, BF16 or F32, or with the weights of every linear and convolution layer (and the
// embedding tables) in 8 or 4 bits a value (q8_0, q4_0: core/quantize.h), the rest in F16. Every
// loader computes in float32. This is how a trained run becomes a model that ships (models/emoji/).
#pragma once
#include <optional>
#include <string>

#include <torch/torch.h>

#include <vector>

#include "pipeline/generation.h"
#include "core/quantize.h"
#include "pipeline/quantization_tuning.h"

namespace luminars {

struct ExportOptions {
  std::string model_dir;                  // a model folder (RUN/model), components anywhere
  std::string out_dir;                    // written afresh: tokenizer/, text_encoder/, vae/, denoiser/, luminars.json
  torch::Dtype dtype = torch::kFloat16;   // storage of floating-point weights
  std::optional<quant::Scheme> quantize;  // q8_0 or q4_0 for the quantizable weights (dtype: the rest)
  // The denoiser's scheme where it differs (q8_0 in a q4_0 folder: the part 4 bits hurt most).
  std::optional<quant::Scheme> denoiser_quantize;
  // The scheme the denoiser is stored in (denoiser_quantize, else quantize; nullopt: dtype).
  std::optional<quant::Scheme> denoiser_scheme() const { return denoiser_quantize ? denoiser_quantize : quantize; }
  // Weights stored in another scheme than their part's (llama.cpp's `--tensor-type`): the first
  // pattern, an ECMAScript regular expression searched in the weight's name (text_model.…, encoder.…
  // / decoder.…, unet.…), that matches a quantizable weight decides its scheme. Each pattern must
  // match one; a quantized dtype is needed. luminars.json's "weights" names them.
  struct TensorScheme {
    std::string pattern;
    quant::Scheme scheme;
  };
  std::vector<TensorScheme> tensor_schemes;
  // Sampler defaults written into luminars.json (unset: the source folder's).
  int64_t steps = 0;
  double cfg_scale = 0;
  // The two-pass default written to luminars.json (sampler.hires_fix): -1 keeps the source's, 0 turns it off.
  int64_t hires_from = -1;
  double hires_strength = -1;  // < 0: the source's
  // LoRAs merged into the exported denoiser's weights (W + Σ alpha/r·weight·B·A), each checked
  // against the source denoiser as generation checks it.
  std::vector<LoraSpec> merge_loras;
  // The denoiser's 4-bit weights (q4_0's, or tensor_schemes') are rounded by GPTQ for the inputs
  // their layers see while the model draws these prompts (pipeline/calibration.h); empty = every
  // value alike; unused without 4-bit denoiser weights. The prompts' count is recorded in the
  // denoiser file's metadata.
  std::vector<std::string> calibration_prompts;
  // Quantization-aware tuning of the denoiser (pipeline/quantization_tuning.h) before it is
  // rounded, on tuning_prompts (every 8th held out and only measured): tune_steps > 0 turns it
  // on. 4-bit denoiser weights with calibration_prompts start from their calibrated rounding; the tuned
  // weights are then rounded as the tuning saw them. Recorded in the denoiser file's metadata.
  int64_t tune_steps = 0;
  double tune_lr = 3e-5;
  int64_t tune_seeds = 2;
  std::vector<std::string> tuning_prompts;  // empty: default_tuning_prompts()
  // Another VAE for the same latents (a decoder fine-tuned by train-vae --decoder-only) in place of
  // the model's; refused unless its class, latent channels, downscale, scaling and shift match.
  std::string vae_dir;
};

struct ExportSummary {
  int64_t bytes = 0;   // all files written
  std::string text;    // one line per component
};

ExportSummary export_model(const ExportOptions& options);

// The model `luminars generate` uses without --model: $LUMINARS_MODEL, else models/emoji beside
// the running program's folder (build/../models/emoji), else in the current folder. Throws naming
// where it looked when there is none.
std::string default_model_dir();

}  // namespace luminars
