// The three freeze/thaw stages of DESIGN §5: which denoiser parameters each trains, at what rate.
//   1: every parameter, 1e-4   2: cross-attention only (blocks' attn.*, context_embed.*), 1e-5
//   3: every parameter, jointly, 1e-6
#pragma once
#include <string>

#include "core/tensor_io.h"
#include "model/luminars.h"

namespace luminars {

double default_stage_lr(int stage);
// Whether `name` (a denoiser tensor name) trains in `stage`.
bool trains_in_stage(const std::string& name, int stage);
// Sets requires_grad on every parameter for `stage`; returns the trainable ones by name.
NamedTensors apply_stage(LuminaRS& model, int stage);

}  // namespace luminars
