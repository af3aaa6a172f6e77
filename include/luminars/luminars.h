// LuminaRS public API: the generation Pipeline (text-to-image, image-to-image, inpainting over a
// model folder), the denoiser, its config and checkpoints, flow matching, the samplers and the
// frozen CLIP text encoder (tokenizer + text model).
//   luminars::Pipeline pipe({.model_dir = "models/emoji"});
//   luminars::Generation out = pipe.generate({.prompt = "a red heart, noto style", .seed = 1});
//   luminars::LuminaRS model(luminars::Config::preset("default"));
//   auto latents = luminars::sample_flow(model, ctx, pooled, {1, 16, 32, 32}, /*steps=*/12);
#pragma once
#include "flow/flow_matching.h"
#include "flow/sampler.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/luminars.h"
#include "pipeline/pipeline.h"
#include "text/text_encoder.h"
