// LuminaRS public API: the denoiser, its config and checkpoints, flow matching, the samplers and
// the frozen CLIP text encoder (tokenizer + text model).
//   luminars::LuminaRS model(luminars::Config::preset("default"));
//   auto latents = luminars::sample_flow(model, ctx, pooled, {1, 16, 32, 32}, /*steps=*/12);
#pragma once
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "text/text_encoder.h"
