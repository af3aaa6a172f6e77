// Seeded random generators: the same noise for a seed on every device (drawn on the CPU, then moved).
#pragma once
#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cstdint>

namespace luminars {

// A CPU generator with a fixed seed.
inline torch::Generator make_generator(uint64_t seed) { return at::make_generator<at::CPUGeneratorImpl>(seed); }

}  // namespace luminars
