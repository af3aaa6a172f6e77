// Low-rank adapters on the CLIP text encoder (target group "text" of model/lora.h): the
// self-attention projections q_proj, k_proj, v_proj and out_proj of every encoder layer, at the
// module paths diffusers' PEFT files use, "text_encoder.text_model.encoder.layers.N.self_attn.q_proj".
#pragma once
#include <vector>

#include "model/lora.h"
#include "text/clip_text_model.h"

namespace luminars {

std::vector<LoraTarget> text_lora_targets(ClipTextModel& model);

}  // namespace luminars
