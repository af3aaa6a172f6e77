// A whole sampling run captured once in a CUDA graph and replayed per generation. At batch 1–2 a
// GPU spends the run launching kernels (thousands per 12-step run, each a few microseconds of
// work); a replay launches the captured run as one graph. The graph owns static buffers: the noise
// is copied into its input and the latents are copied out of its output. A capture stays valid
// for what it was captured with: the model's weights (bf16 weights cast once,
// model/bf16_weights.h, so no step casts them), the prompt (its keys and values live in the
// velocity function), the latents' shape, the times and the guidance.
// Needs a CUDA build of LibTorch (LUMINARS_HAVE_CUDA); elsewhere construction throws.
#pragma once
#include <torch/torch.h>

#include <memory>

#include "flow/sampler.h"

namespace luminars {

class CapturedSampling {
 public:
  // Whether this build can capture CUDA graphs (a CUDA LibTorch; a GPU is needed to run them).
  static bool available();

  // Warms up (cuBLAS handles, workspaces, cached kernels) and captures Euler steps over `times`
  // [n+1] of `velocity` from latents shaped like `example` (on a CUDA device), on a side stream.
  CapturedSampling(VelocityFn velocity, const torch::Tensor& example, const torch::Tensor& times,
                   int warmup_runs = 2);
  ~CapturedSampling();
  CapturedSampling(const CapturedSampling&) = delete;
  CapturedSampling& operator=(const CapturedSampling&) = delete;

  // noise (the example's shape, dtype and device) -> latents after the captured steps (a copy).
  torch::Tensor run(const torch::Tensor& noise);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace luminars
