#include "model/bf16_weights.h"

#include <string>

namespace luminars {

namespace {

// Module names whose weights autocast leaves (or this project computes) in float32.
bool stays_float32(const std::string& name) {
  return name.ends_with("dwconv") || name.find("upsample") != std::string::npos;
}

}  // namespace

int64_t cast_matmul_weights(LuminaRS& model, torch::ScalarType dtype) {
  torch::NoGradGuard no_grad;
  int64_t cast = 0;
  auto to = [&](torch::Tensor& t) {
    if (t.defined() && t.is_floating_point() && t.scalar_type() != dtype) {
      t.set_data(t.data().to(dtype));
      ++cast;
    }
  };
  for (const auto& item : model->named_modules()) {
    const std::string& name = item.key();
    auto& module = item.value();
    if (stays_float32(name)) continue;
    if (auto* linear = module->as<torch::nn::Linear>()) {
      to(linear->weight);
      to(linear->bias);
    } else if (auto* conv = module->as<torch::nn::Conv2d>()) {
      if (conv->options.groups() != 1) continue;  // depthwise: float32 (see above)
      to(conv->weight);
      to(conv->bias);
    } else if (auto* attention = module->as<SelfAttention>()) {
      to(attention->in_proj_weight);
      to(attention->in_proj_bias);
    }
  }
  return cast;
}

}  // namespace luminars
