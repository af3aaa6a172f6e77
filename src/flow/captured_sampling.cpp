#include "flow/captured_sampling.h"

#include "core/error.h"
#include "core/shape.h"

#ifdef LUMINARS_HAVE_CUDA
#include <ATen/autocast_mode.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace luminars {

#ifdef LUMINARS_HAVE_CUDA

struct CapturedSampling::State {
  VelocityFn velocity;
  torch::Tensor times, input, output;
  at::cuda::CUDAGraph graph;
};

namespace {

// Autocast's cache of cast weights lives outside the graph and is emptied when the autocast
// region ends, so a graph must not read from it: off during the capture, restored afterwards.
struct NoAutocastCache {
  bool previous = at::autocast::is_autocast_cache_enabled();
  NoAutocastCache() { at::autocast::set_autocast_cache_enabled(false); }
  ~NoAutocastCache() { at::autocast::set_autocast_cache_enabled(previous); }
};

}  // namespace

bool CapturedSampling::available() { return true; }

CapturedSampling::CapturedSampling(VelocityFn velocity, const torch::Tensor& example, const torch::Tensor& times,
                                   int warmup_runs)
    : state_(std::make_unique<State>()) {
  if (!example.defined() || !example.is_cuda())
    throw Error("CUDA graph capture needs latents on a CUDA device, got " +
                (example.defined() ? example.device().str() : std::string("no tensor")));
  if (times.dim() != 1 || times.numel() < 2) throw Error("CUDA graph capture needs at least two times, got " + shape_of(times));
  auto& s = *state_;
  s.velocity = std::move(velocity);
  s.times = times.to(torch::kCPU, torch::kFloat32).contiguous();
  torch::NoGradGuard no_grad;
  NoAutocastCache no_cache;
  c10::cuda::CUDAGuard device_guard(example.device());
  s.input = example.clone();  // the static input buffer
  // Capture happens once: whole-device synchronisation around it keeps the side stream simple.
  c10::cuda::device_synchronize();
  const auto side = c10::cuda::getStreamFromPool(/*isHighPriority=*/false, example.device().index());
  {
    c10::cuda::CUDAStreamGuard on_side(side);
    for (int i = 0; i < warmup_runs; ++i) integrate_over(s.velocity, s.input, s.times);
    s.graph.capture_begin();
    s.output = integrate_over(s.velocity, s.input, s.times);  // the static output buffer
    s.graph.capture_end();
  }
  c10::cuda::device_synchronize();
}

CapturedSampling::~CapturedSampling() = default;

torch::Tensor CapturedSampling::run(const torch::Tensor& noise) {
  auto& s = *state_;
  if (noise.sizes() != s.input.sizes() || noise.scalar_type() != s.input.scalar_type() || noise.device() != s.input.device())
    throw Error("captured sampling was captured for " + shape_of(s.input) + " " + std::string(c10::toString(s.input.scalar_type())) +
                " on " + s.input.device().str() + ", got " + shape_of(noise) + " " + c10::toString(noise.scalar_type()) + " on " +
                noise.device().str());
  torch::NoGradGuard no_grad;
  s.input.copy_(noise);
  s.graph.replay();
  return s.output.clone();
}

#else  // a LibTorch without CUDA

struct CapturedSampling::State {};

bool CapturedSampling::available() { return false; }

CapturedSampling::CapturedSampling(VelocityFn, const torch::Tensor&, const torch::Tensor&, int) {
  throw Error("CUDA graph capture needs a CUDA build of LibTorch (this one is CPU-only)");
}

CapturedSampling::~CapturedSampling() = default;

torch::Tensor CapturedSampling::run(const torch::Tensor&) {
  throw Error("CUDA graph capture needs a CUDA build of LibTorch (this one is CPU-only)");
}

#endif

}  // namespace luminars
