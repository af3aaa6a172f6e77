#include "flow/sampler.h"

#include "core/error.h"
#include "flow/flow_matching.h"

namespace luminars {

SamplerMethod sampler_from_name(const std::string& name) {
  if (name == "euler") return SamplerMethod::Euler;
  if (name == "heun") return SamplerMethod::Heun;
  throw Error("unknown sampler '" + name + "' (known: euler, heun)");
}

torch::Tensor integrate(const VelocityFn& v, torch::Tensor x, int64_t steps, double shift, SamplerMethod method,
                        const StepCallback& on_step) {
  return integrate_over(v, std::move(x), sample_times(steps, shift), method, on_step);
}

torch::Tensor integrate_over(const VelocityFn& v, torch::Tensor x, const torch::Tensor& times, SamplerMethod method,
                             const StepCallback& on_step, const StepHook& after_step) {
  auto ts_tensor = times.to(torch::kCPU, torch::kFloat32).contiguous();
  const float* ts = ts_tensor.data_ptr<float>();
  const int64_t steps = ts_tensor.numel() - 1;
  for (int64_t i = 0; i < steps; ++i) {
    const float t0 = ts[i], t1 = ts[i + 1], dt = t1 - t0;
    auto d = v(x, t0);
    if (method == SamplerMethod::Heun && i < steps - 1) {
      auto x_pred = x + dt * d;
      x = x + (dt * 0.5f) * (d + v(x_pred, t1));
    } else {
      x = x + dt * d;  // prev = x + (t_next − t) · v
    }
    if (after_step) x = after_step(x, t1);
    if (on_step) on_step(i + 1, steps);
  }
  return x;
}

VelocityFn guided_velocity(LuminaRS& model, const torch::Tensor& ctx, const torch::Tensor& pooled, const Guidance& g) {
  if (g.scale == 1.0) {
    return [&model, prompt = model->encode_prompt(ctx, pooled, g.mask)](const torch::Tensor& x, float t) {
      auto tb = torch::full({x.size(0)}, t, x.options().dtype(torch::kFloat32));
      return model->forward(x, tb, prompt);
    };
  }
  if (!g.null_ctx.defined() || !g.null_pooled.defined())
    throw Error("guidance scale " + std::to_string(g.scale) + " needs the empty prompt's ctx and pooled");
  if (g.null_ctx.sizes() != ctx.sizes() || g.null_pooled.sizes() != pooled.sizes())
    throw Error("guidance: the empty prompt's embeddings must have the shapes of the prompt's");
  auto both_ctx = torch::cat({ctx, g.null_ctx});
  auto both_pooled = torch::cat({pooled, g.null_pooled});
  torch::Tensor both_mask;
  if (g.mask.defined() || g.null_mask.defined()) {
    auto ones = torch::ones({ctx.size(0), ctx.size(1)}, torch::TensorOptions().dtype(torch::kBool).device(ctx.device()));
    both_mask = torch::cat({g.mask.defined() ? g.mask.to(torch::kBool) : ones,
                            g.null_mask.defined() ? g.null_mask.to(torch::kBool) : ones});
  }
  const double s = g.scale;
  return [&model, prompt = model->encode_prompt(both_ctx, both_pooled, both_mask), s](const torch::Tensor& x, float t) {
    auto tb = torch::full({2 * x.size(0)}, t, x.options().dtype(torch::kFloat32));
    auto out = model->forward(torch::cat({x, x}), tb, prompt).chunk(2);
    return out[1] + s * (out[0] - out[1]);  // v_u + s·(v_c − v_u)
  };
}

torch::Tensor sample_flow(LuminaRS& model, const torch::Tensor& noise, const torch::Tensor& ctx,
                          const torch::Tensor& pooled, const SampleOptions& o) {
  torch::NoGradGuard no_grad;
  return integrate(guided_velocity(model, ctx, pooled, o.guidance), noise, o.steps, o.shift, o.method, o.on_step);
}

torch::Tensor sample_flow(LuminaRS& model, const torch::Tensor& ctx, const torch::Tensor& pooled,
                          torch::IntArrayRef shape, int64_t steps, uint64_t seed) {
  auto gen = make_generator(seed);
  auto noise = torch::randn(shape, gen).to(ctx.device(), ctx.scalar_type());
  SampleOptions o;
  o.steps = steps;
  return sample_flow(model, noise, ctx, pooled, o);
}

}  // namespace luminars
