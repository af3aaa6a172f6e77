// Calibration for 4-bit export: the denoiser draws a few prompts as `generate` would (the folder's
// sampler, guidance and size) while its channel-mixing layers record their inputs' moments
// (core/input_stats.h), which quant::quantize rounds their weights by (GPTQ, or each channel's
// rounding error weighted by its mean square).
#pragma once
#include <torch/torch.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/input_stats.h"
#include "flow/sampler.h"
#include "model/luminars.h"
#include "pipeline/model_folder.h"
#include "text/text_encoder.h"

namespace luminars {

// Prompts unlike the evidence's (bench/quantized_pictures.sh), so the figures measured there are
// not those of the pictures the weights were fitted to.
const std::vector<std::string>& default_calibration_prompts();

// Draws each of `prompts` `seeds` times as `generate` would (the folder's size, sampler steps,
// shift and guidance; noise seeded first_seed + i·seeds + k), without autograd, under a progress
// bar labelled `label`. `wrap` (optional) may wrap the guided velocity each drawing integrates,
// given the prompt's index and its encoding ({prompt, ""}).
using WrapVelocity = std::function<VelocityFn(std::size_t prompt, const TextEncoding& encoding, VelocityFn velocity)>;
void draw_prompts(const ModelFolder& folder, LuminaRS& denoiser, const TextEncoder& text,
                  const std::vector<std::string>& prompts, int64_t seeds, uint64_t first_seed, const std::string& label,
                  const WrapVelocity& wrap = {});

// Per parameter name of `denoiser`, the moments of its inputs over `prompts` (one seed each, seeds
// 1000, 1001, …), drawn with `folder`'s text encoder and sampler defaults.
std::map<std::string, InputMoments> denoiser_input_moments(const ModelFolder& folder, LuminaRS& denoiser,
                                                               const std::vector<std::string>& prompts);

}  // namespace luminars
