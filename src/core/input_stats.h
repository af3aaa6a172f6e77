// The second moments of the inputs of the channel-mixing layers (Linear, 1×1 convolution) while a
// calibration runs: each input channel's mean square (how much each column of a weight matters to
// the layer's output, as llama.cpp's importance matrix) and, for layers of at most
// kMaxCovarianceChannels inputs, the whole matrix E[x·xᵀ] (how the columns' errors combine, what
// GPTQ needs). The 4-bit export uses them (core/quantize.h). Recording is off unless a
// RecordInputStats is alive; the layers report through LoraSlot (core/lora_slot.h), which every
// channel-mixing layer of the denoiser goes through.
#pragma once
#include <torch/torch.h>

#include <map>
#include <string>
#include <unordered_map>

namespace luminars {

struct InputMoments {
  torch::Tensor mean_square;  // [in], float32
  torch::Tensor second;       // [in, in] float64, E[x·xᵀ]; undefined above kMaxCovarianceChannels
};

class InputStats {
 public:
  static constexpr int64_t kMaxCovarianceChannels = 2048;
  // x [..., in] entering the layer whose weight is `weight` ([out,in] or [out,in,1,1]).
  void add(const torch::Tensor& weight, const torch::Tensor& x);
  // The moments of each parameter of `module` that saw inputs, by its name in
  // module.named_parameters().
  std::map<std::string, InputMoments> by_name(const torch::nn::Module& module) const;
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    torch::Tensor sum_sq;  // [in], float64
    torch::Tensor gram;    // [in, in], float64 (Σ x·xᵀ)
    int64_t rows = 0;
  };
  std::unordered_map<const void*, Entry> entries_;  // by the weight's TensorImpl
};

// While alive, channel-mixing layers add their inputs to `stats` (one recorder at a time).
class RecordInputStats {
 public:
  explicit RecordInputStats(InputStats& stats);
  ~RecordInputStats();
  RecordInputStats(const RecordInputStats&) = delete;
  RecordInputStats& operator=(const RecordInputStats&) = delete;

 private:
  InputStats* previous_;
};

// Adds x to the active recorder, if any (the layers' hook; a pointer test when none).
void record_input(const torch::Tensor& weight, const torch::Tensor& x);

}  // namespace luminars
