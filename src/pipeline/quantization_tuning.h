// Quantization-aware tuning for 4-bit export: the float denoiser is distilled into its own
// quantized self. The model as it ships (the teacher) draws prompts as `generate` would, and
// every step's latents, time and guided velocity are kept. A copy (the student) then learns to
// give those velocities with its weights rounded as export will store them: each optimizer step
// rounds float master weights to their blocks (quant::quantize, dequantized), runs the student on
// the rounded weights, and applies the gradient to the masters (a straight-through estimator).
// Rounding alone moves each weight by up to half a step without regard to the others; tuning lets
// the weights the rounding cannot place well be compensated by the ones it can. Block scales are
// searched every 16 steps and at the last (between, the masters are rounded at the last scales);
// Adam's rate decays to 0 by a cosine. Measured on the shipped model: README, 8- and 4-bit weights.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "core/quantize.h"
#include "model/luminars.h"
#include "pipeline/model_folder.h"

namespace luminars {

// 256 emoji prompts (64 subjects in four of the eight styles each, in the training captions' forms), none of them a calibration or evidence
// prompt (pipeline/calibration.h, bench/quantized_pictures.sh).
const std::vector<std::string>& default_tuning_prompts();

struct QuantizationTuning {
  int64_t steps = 0;        // optimizer steps (0: no tuning)
  int64_t batch = 32;       // teacher states a step
  double lr = 3e-5;         // Adam's learning rate for the master weights, decayed to 0 by a cosine
  int64_t seeds = 2;        // teacher trajectories per prompt (seeds 2000, 2001, …)
  std::vector<std::string> prompts;   // the trajectories tuned on (default_tuning_prompts())
  std::vector<std::string> held_out;  // measured only (one seed each); may be empty
  quant::Scheme scheme = quant::Scheme::q4_0;
  quant::WeightScheme scheme_of;  // weights rounded in another scheme (as export stores them)
  uint64_t seed = 0;        // batches' order
  // Where the master weights start, by name (a calibrated rounding: GPTQ's weights); others start
  // from the model's float weights, which stay the teacher either way.
  std::map<std::string, torch::Tensor> start;
};

struct QuantizationTuningReport {
  // Relative error ‖v_student − v_teacher‖ / ‖v_teacher‖ of the guided velocity over every
  // teacher state, with the weights rounded before and after tuning.
  double error_before = 0, error_after = 0;
  // The same over the held-out prompts' states (0 when there are none).
  double held_out_before = 0, held_out_after = 0;
  int64_t states = 0;
};

// Tunes `denoiser`'s float weights in place so that, rounded by quant::quantize in `o.scheme`
// (uncalibrated) or where scheme_of says in its scheme, the model follows its own float trajectories
// (drawn with `folder`'s text encoder, size and sampler defaults). Export then rounds the tuned
// weights exactly as the student saw them. Throws on an empty prompt list or steps < 0.
QuantizationTuningReport tune_for_quantization(const ModelFolder& folder, LuminaRS& denoiser,
                                               const QuantizationTuning& o);

}  // namespace luminars
