// bf16 autocast for training steps and sampling, across the LibTorch 1.13 and 2.x APIs.
// On CUDA it is on whenever bf16 is asked for. On the CPU only where the caller allows it and the
// processor multiplies bf16 natively (AVX-512 BF16 or AMX): there oneDNN's bf16 convolutions and
// matrix products run 2–3× faster than float32 ones; elsewhere bf16 would be slower, and the
// guard does nothing.
#pragma once
#include <torch/torch.h>

namespace luminars {

// Whether this CPU has native bf16 dot products (x86 AVX-512 BF16 or AMX-BF16). LUMINARS_CPU_BF16=0
// or 1 overrides the detection.
bool cpu_has_fast_bf16();

class AutocastGuard {
 public:
  AutocastGuard(bool bf16, torch::Device device, bool allow_cpu = false);
  ~AutocastGuard();
  static bool enabled_on_cuda();  // whether CUDA autocast is on right now
  static bool enabled_on_cpu();   // whether CPU autocast is on right now
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false, cpu_ = false;
  bool prev_enabled_ = false;
};

}  // namespace luminars
