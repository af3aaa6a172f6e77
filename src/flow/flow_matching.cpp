#include "flow/flow_matching.h"

#include "core/error.h"

namespace luminars {

TimeSampling time_sampling_from_name(const std::string& name) {
  if (name == "logit-normal" || name == "logit_normal") return TimeSampling::LogitNormal;
  if (name == "uniform") return TimeSampling::Uniform;
  throw Error("unknown time sampling '" + name + "' (known: logit-normal, uniform)");
}

namespace {
// sigma = 1−t mapped to shift·sigma / (1 + (shift−1)·sigma), as in SD3.
torch::Tensor shift_sigma(const torch::Tensor& sigma, double shift) { return shift * sigma / (1 + (shift - 1) * sigma); }
}  // namespace

torch::Tensor sample_training_times(int64_t n, TimeSampling kind, torch::Generator& gen, torch::Device device, double shift) {
  if (!(shift > 0)) throw Error("training time shift must be positive, got " + std::to_string(shift));
  auto t = kind == TimeSampling::LogitNormal ? torch::sigmoid(torch::randn({n}, gen)) : torch::rand({n}, gen);
  if (shift != 1) t = 1 - shift_sigma(1 - t, shift);
  return t.to(device);
}

torch::Tensor interpolate(const torch::Tensor& x_clean, const torch::Tensor& noise, const torch::Tensor& t) {
  auto tt = t.view({-1, 1, 1, 1}).to(x_clean.scalar_type());
  return (1 - tt) * noise + tt * x_clean;
}

torch::Tensor flow_matching_loss(LuminaRS& model, const torch::Tensor& x_clean, const torch::Tensor& noise,
                                 const torch::Tensor& t, const torch::Tensor& ctx, const torch::Tensor& pooled,
                                 const ForwardOptions& options) {
  auto v = model->forward(interpolate(x_clean, noise, t), t, ctx, pooled, options);
  return torch::mse_loss(v.to(torch::kFloat32), (x_clean - noise).to(torch::kFloat32));
}

torch::Tensor sample_times(int64_t n, double shift) {
  if (n < 1) throw Error("sample_times: steps must be at least 1, got " + std::to_string(n));
  if (!(shift > 0)) throw Error("sample_times: shift must be positive, got " + std::to_string(shift));
  return (1 - shift_sigma(1 - torch::linspace(0, 1, n + 1, torch::kFloat64), shift)).to(torch::kFloat32);
}


}  // namespace luminars
