// Learning-rate schedule: linear warm-up from 0, then constant or cosine decay to min_lr_ratio·lr.
#pragma once
#include <cstdint>
#include <string>

namespace luminars {

enum class LrDecay { Constant, Cosine };
LrDecay lr_decay_from_name(const std::string& name);  // "constant" | "cosine"

// lr at `step` (0-based) of `total` steps.
double scheduled_lr(double base_lr, int64_t step, int64_t total, int64_t warmup, LrDecay decay,
                    double min_lr_ratio = 0.1);

}  // namespace luminars
