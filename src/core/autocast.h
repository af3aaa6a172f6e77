// bf16 autocast on CUDA (training steps and sampling), across the LibTorch 1.13 and 2.x APIs; a no-op on the CPU.
#pragma once
#include <torch/torch.h>

namespace luminars {

class AutocastGuard {
 public:
  AutocastGuard(bool bf16, torch::Device device);
  ~AutocastGuard();
  static bool enabled_on_cuda();  // whether CUDA autocast is on right now
  AutocastGuard(const AutocastGuard&) = delete;
  AutocastGuard& operator=(const AutocastGuard&) = delete;

 private:
  bool active_ = false;
  bool prev_enabled_ = false;
};

}  // namespace luminars
