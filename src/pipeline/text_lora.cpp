#include "pipeline/text_lora.h"

namespace luminars {

std::vector<LoraTarget> text_lora_targets(ClipTextModel& model) {
  std::vector<LoraTarget> t;
  const auto& layers = *model->text_model->encoder->layers;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    std::string p = kTextLoraPrefix;  // appended, not concatenated: GCC 12's -Warray-bounds misfires on the sum at -O3
    p += "text_model.encoder.layers." + std::to_string(i) + ".self_attn.";
    auto& a = layers[i]->as<ClipEncoderLayerImpl>()->self_attn;
    for (auto [name, lin] : {std::pair<const char*, FrozenLinear*>{"q_proj", &a->q_proj}, {"k_proj", &a->k_proj},
                             {"v_proj", &a->v_proj}, {"out_proj", &a->out_proj}})
      t.push_back({p + name, "text", (*lin)->weight, &(*lin)->lora});
  }
  return t;
}

}  // namespace luminars
