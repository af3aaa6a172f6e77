// Flow matching (DESIGN §3): x_t = (1−t)·noise + t·x_clean, target velocity v = x_clean − noise,
// loss = mean squared error. t = 0 is pure noise, t = 1 is clean.
#pragma once
#include <torch/torch.h>

#include <string>

#include "core/generator.h"  // make_generator, for the noise of flow matching
#include "model/luminars.h"

namespace luminars {

enum class TimeSampling { LogitNormal, Uniform };
TimeSampling time_sampling_from_name(const std::string& name);  // "logit-normal" | "uniform"

// n training times in (0,1): sigmoid(N(0,1)) or U(0,1); with shift s ≠ 1 each time's sigma = 1−t is
// then mapped to s·sigma / (1 + (s−1)·sigma), the sampler's shift (s > 1 trains more near the noise).
torch::Tensor sample_training_times(int64_t n, TimeSampling kind, torch::Generator& gen,
                                    torch::Device device = torch::kCPU, double shift = 1.0);

// x_t = (1−t)·noise + t·x_clean, t broadcast over [B,C,H,W].
torch::Tensor interpolate(const torch::Tensor& x_clean, const torch::Tensor& noise, const torch::Tensor& t);

torch::Tensor flow_matching_loss(LuminaRS& model, const torch::Tensor& x_clean, const torch::Tensor& noise,
                                 const torch::Tensor& t, const torch::Tensor& ctx, const torch::Tensor& pooled,
                                 const ForwardOptions& options = {});

// n+1 times from 0 (noise) to 1 (clean); shift > 1 spends more steps near the noise end
// (sigma = 1−t mapped to shift·sigma / (1 + (shift−1)·sigma), as in SD3). Float32 [n+1].
torch::Tensor sample_times(int64_t n, double shift = 1.0);

}  // namespace luminars
