// Low-memory loading of 8- and 4-bit weights: a parameter may stay packed (core/quantize.h) and
// empty, and be dequantized into float32 only while a WeightScope over its module lives. The models'
// forward passes open a scope per block (CLIP's encoder layers, the denoiser's blocks, the VAE
// decoder's mid and up blocks), so a component holds its packed weights plus one block in float32,
// not all of them. Loaders keep weights packed only inside a KeepPacked guard (the pipeline's
// low-memory mode); elsewhere every scope is a no-op.
#pragma once
#include <torch/torch.h>

#include <optional>
#include <vector>

#include "core/quantize.h"

namespace luminars::quant {

// While one (made with on = true) lives on this thread, loaders keep the weights of their streamed
// blocks packed.
class KeepPacked {
 public:
  explicit KeepPacked(bool on = true);
  ~KeepPacked();
  KeepPacked(const KeepPacked&) = delete;
  KeepPacked& operator=(const KeepPacked&) = delete;
  static bool active();

 private:
  bool on_;
};

// Makes `param` empty and keeps `packed` to fill it while a WeightScope holds it. `shape` is the
// parameter's own (the packed weight's values in that shape).
void stream_weight(torch::Tensor& param, Packed packed, Scheme scheme, std::vector<int64_t> shape);
// Bytes of packed weights held for streaming now (all modules).
int64_t streamed_bytes();

// Rows `index` (int64, any shape) of a streamed parameter [rows, ...] (an embedding table kept
// packed) dequantized alone, shaped index.sizes() + the row's; nullopt when it is not streamed.
std::optional<torch::Tensor> streamed_rows(const torch::Tensor& param, const torch::Tensor& index);

// Under KeepPacked, model constructors hand each block to drop_init as soon as it is built: its
// parameters' float32 initial values (which the load replaces anyway) are dropped at once, their
// shapes kept aside, so one block's init at a time is resident instead of the whole model's. The
// loader (core/weight_loader.h) reads the shape back with loaded_shape and fills the parameter
// (packed or in float32); a dropped parameter the file lacks is an error even in a partial load.
void drop_init(const torch::nn::Module& module);
bool init_dropped(const torch::Tensor& param);
// The parameter's shape once loaded: a streamed one's, the one drop_init kept aside, or its own.
std::vector<int64_t> loaded_shape(const torch::Tensor& param);
// Gives a dropped parameter float storage of its shape again (before a copy into it).
void restore_storage(torch::Tensor& param);

// Dequantizes the streamed parameters of `module` (recursively) for its lifetime; nested and
// repeated scopes share one float copy. A module with none streamed costs a lookup per parameter.
class WeightScope {
 public:
  explicit WeightScope(const torch::nn::Module& module);
  ~WeightScope();
  WeightScope(const WeightScope&) = delete;
  WeightScope& operator=(const WeightScope&) = delete;

 private:
  std::vector<void*> held_;
};

}  // namespace luminars::quant
