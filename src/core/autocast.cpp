#include "core/autocast.h"

#include <ATen/autocast_mode.h>

#include <cstdlib>
#include <string>
#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

namespace luminars {

#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
#define LUMINARS_AUTOCAST_DEVICE_API 1
#endif

bool cpu_has_fast_bf16() {
  if (const char* env = std::getenv("LUMINARS_CPU_BF16"); env && *env) return std::string(env) != "0";
#if defined(__x86_64__) || defined(__i386__)
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool amx_bf16 = (d >> 22) & 1u;
  const bool avx512f = (b >> 16) & 1u;
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d)) return amx_bf16;
  const bool avx512_bf16 = avx512f && ((a >> 5) & 1u);
  return avx512_bf16 || amx_bf16;
#else
  return false;
#endif
}

namespace {

bool is_enabled(bool cpu) {
#ifdef LUMINARS_AUTOCAST_DEVICE_API
  return at::autocast::is_autocast_enabled(cpu ? at::kCPU : at::kCUDA);
#else
  return cpu ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled();
#endif
}

void set_enabled(bool cpu, bool on) {
#ifdef LUMINARS_AUTOCAST_DEVICE_API
  at::autocast::set_autocast_dtype(cpu ? at::kCPU : at::kCUDA, at::kBFloat16);
  at::autocast::set_autocast_enabled(cpu ? at::kCPU : at::kCUDA, on);
#else
  if (cpu) {
    at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
    at::autocast::set_cpu_enabled(on);
  } else {
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
    at::autocast::set_enabled(on);
  }
#endif
}

}  // namespace

AutocastGuard::AutocastGuard(bool bf16, torch::Device device, bool allow_cpu) {
  if (!bf16) return;
  if (device.is_cuda()) {
    cpu_ = false;
  } else if (device.is_cpu() && allow_cpu && cpu_has_fast_bf16()) {
    cpu_ = true;
  } else {
    return;
  }
  active_ = true;
  prev_enabled_ = is_enabled(cpu_);
  set_enabled(cpu_, true);
}

AutocastGuard::~AutocastGuard() {
  if (!active_) return;
  set_enabled(cpu_, prev_enabled_);
  at::autocast::clear_cache();
}

bool AutocastGuard::enabled_on_cuda() { return is_enabled(false); }
bool AutocastGuard::enabled_on_cpu() { return is_enabled(true); }

}  // namespace luminars
