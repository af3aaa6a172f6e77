#include "core/device.h"

#include "core/error.h"

namespace luminars {

torch::Device device_from_name(const std::string& name) {
  if (name == "auto") return torch::cuda::is_available() ? torch::Device(torch::kCUDA) : torch::Device(torch::kCPU);
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error("--device " + name + ": CUDA is not available (this LibTorch build or machine has no GPU); use --device cpu");
    return torch::Device(name);
  }
  throw Error("unknown device '" + name + "' (known: auto, cpu, cuda, cuda:N)");
}

}  // namespace luminars
