// Flow-matching ODE samplers: integrate dx/dt = v(x, t) from t = 0 (noise) to t = 1 (clean).
// The integrator sees only a velocity function; guided_velocity() makes one from the model.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>

#include "model/luminars.h"

namespace luminars {

enum class SamplerMethod { Euler, Heun };
SamplerMethod sampler_from_name(const std::string& name);  // "euler" | "heun"

// v(x, t) for a batch x at one time t.
using VelocityFn = std::function<torch::Tensor(const torch::Tensor& x, float t)>;
// Called after each step with (steps done, steps in all).
using StepCallback = std::function<void(int64_t, int64_t)>;

// Called after each step with the new x and its time; returns the x to go on with (inpainting
// re-imposes the known region here).
using StepHook = std::function<torch::Tensor(const torch::Tensor& x, float t)>;

// Euler: x += (t1−t0)·v(x,t0). Heun: trapezoidal correction with v(x_pred,t1), last step Euler.
torch::Tensor integrate(const VelocityFn& v, torch::Tensor x, int64_t steps, double shift = 1.0,
                        SamplerMethod method = SamplerMethod::Euler, const StepCallback& on_step = nullptr);
// The same over given increasing times [n+1] (image-to-image integrates a tail of sample_times()).
torch::Tensor integrate_over(const VelocityFn& v, torch::Tensor x, const torch::Tensor& times,
                             SamplerMethod method = SamplerMethod::Euler, const StepCallback& on_step = nullptr,
                             const StepHook& after_step = nullptr);

struct Guidance {
  double scale = 1.0;       // 1 = no guidance: only the conditional branch is evaluated
  torch::Tensor null_ctx;   // [B,L,D] encoder output for "" (needed when scale != 1)
  torch::Tensor null_pooled;
  torch::Tensor mask, null_mask;  // optional [B,L] masks for the two branches
};

// v = v_u + s·(v_c − v_u), conditional and unconditional evaluated as one batch [cond; uncond].
// The prompt's part of the denoiser (LuminaRS::encode_prompt) is computed here, once.
VelocityFn guided_velocity(LuminaRS& model, const torch::Tensor& ctx, const torch::Tensor& pooled,
                           const Guidance& guidance = {});

struct SampleOptions {
  int64_t steps = 12;
  double shift = 1.0;
  SamplerMethod method = SamplerMethod::Euler;
  Guidance guidance;
  StepCallback on_step;
};

// Samples latents from given noise [B,C,H,W] (no autograd).
torch::Tensor sample_flow(LuminaRS& model, const torch::Tensor& noise, const torch::Tensor& ctx,
                          const torch::Tensor& pooled, const SampleOptions& options);

// Quick start: seeded noise of `shape`, Euler, no guidance.
torch::Tensor sample_flow(LuminaRS& model, const torch::Tensor& ctx, const torch::Tensor& pooled,
                          torch::IntArrayRef shape, int64_t steps = 12, uint64_t seed = 0);

}  // namespace luminars
