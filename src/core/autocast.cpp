#include "core/autocast.h"

#include <ATen/autocast_mode.h>

namespace luminars {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define LUMINARS_AUTOCAST_DEVICE_API 1
#endif

AutocastGuard::AutocastGuard(bool bf16, torch::Device device) {
  if (!bf16 || !device.is_cuda()) return;
  active_ = true;
#ifdef LUMINARS_AUTOCAST_DEVICE_API
  prev_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
  at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(at::kCUDA, true);
#else
  prev_enabled_ = at::autocast::is_enabled();
  at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
  at::autocast::set_enabled(true);
#endif
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
#ifdef LUMINARS_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_enabled(at::kCUDA, prev_enabled_);
#else
  at::autocast::set_enabled(prev_enabled_);
#endif
  at::autocast::clear_cache();
}

bool AutocastGuard::enabled_on_cuda() {
#ifdef LUMINARS_AUTOCAST_DEVICE_API
  return at::autocast::is_autocast_enabled(at::kCUDA);
#else
  return at::autocast::is_enabled();
#endif
}

}  // namespace luminars
