// Device choice: "auto" (CUDA when available, else the CPU), "cpu", "cuda" or "cuda:N".
#pragma once
#include <torch/torch.h>

#include <string>

namespace luminars {

// Throws a clear error for unknown names and for CUDA on a machine without it.
torch::Device device_from_name(const std::string& name);

}  // namespace luminars
