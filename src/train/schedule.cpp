#include "train/schedule.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace luminars {

LrDecay lr_decay_from_name(const std::string& name) {
  if (name == "constant") return LrDecay::Constant;
  if (name == "cosine") return LrDecay::Cosine;
  throw Error("unknown learning-rate schedule '" + name + "' (known: constant, cosine)");
}

double scheduled_lr(double base_lr, int64_t step, int64_t total, int64_t warmup, LrDecay decay, double min_lr_ratio) {
  if (warmup > 0 && step < warmup) return base_lr * static_cast<double>(step + 1) / static_cast<double>(warmup);
  if (decay == LrDecay::Constant || total <= warmup) return base_lr;
  const double progress = std::clamp(static_cast<double>(step - warmup) / static_cast<double>(total - warmup), 0.0, 1.0);
  const double cosine = 0.5 * (1 + std::cos(M_PI * progress));
  return base_lr * (min_lr_ratio + (1 - min_lr_ratio) * cosine);
}

}  // namespace luminars
