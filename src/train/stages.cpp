#include "train/stages.h"

#include "core/error.h"

namespace luminars {

double default_stage_lr(int stage) {
  switch (stage) {
    case 1: return 1e-4;
    case 2: return 1e-5;
    case 3: return 1e-6;
  }
  throw Error("stage must be 1, 2 or 3, got " + std::to_string(stage));
}

bool trains_in_stage(const std::string& name, int stage) {
  if (stage == 1 || stage == 3) return true;
  if (stage != 2) throw Error("stage must be 1, 2 or 3, got " + std::to_string(stage));
  if (name.rfind("context_embed.", 0) == 0) return true;
  // Cross-attention of every ConvNeXt block: "….blocks.N.attn.…" (the bottleneck's
  // self-attention "unet.mid.attn.…" is not under a block and stays frozen).
  auto blocks = name.find(".blocks.");
  return blocks != std::string::npos && name.find(".attn.", blocks) != std::string::npos;
}

NamedTensors apply_stage(LuminaRS& model, int stage) {
  NamedTensors trainable;
  for (auto& p : model->named_parameters()) {
    bool on = trains_in_stage(p.key(), stage);
    p.value().set_requires_grad(on);
    if (on) trainable.emplace_back(p.key(), p.value());
  }
  return trainable;
}

}  // namespace luminars
