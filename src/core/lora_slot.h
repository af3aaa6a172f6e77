// The low-rank adapters (LoRA) attached to one channel-mixing layer (a Linear or a 1×1 convolution of
// the denoiser or the text encoder, weight [out,in] or [out,in,1,1]). The base weight is never changed:
//   y = W·x + b + Σ_i scale_i · B_i·(A_i·dropout(x)),   A_i [r,in], B_i [out,r]
// or, after fuse(), y = W'·x + b with W' = W + Σ scale_i·B_i·A_i held beside W (a working copy of
// this layer's weight: the same function in one product, for generation).
#pragma once
#include <torch/torch.h>

#include <vector>

namespace luminars {

struct LoraAdapter {
  torch::Tensor down, up;  // A [r,in], B [out,r] (views of the adapter's parameters while training)
  double scale = 1.0;      // alpha / r × the weight it is applied with
  double dropout = 0.0;    // on the adapter's input, while gradients are recorded (training)
};

class LoraSlot {
 public:
  bool empty() const { return adapters_.empty(); }
  const std::vector<LoraAdapter>& adapters() const { return adapters_; }
  void add(LoraAdapter adapter);
  void clear();

  // W' = W + Σ scale·B·A computed once (no gradients); forward then uses W' alone. Any add() or
  // clear() drops it.
  void fuse(const torch::Tensor& weight);
  bool fused() const { return fused_.defined(); }

  // The layer on channels-last x [...,in] -> [...,out] (core/pointwise.h), with its adapters. Each
  // of these three reports its input to a calibration's recorder (core/input_stats.h).
  torch::Tensor pointwise(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) const;
  // The same with torch::linear as the base product (x [...,in]).
  torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) const;
  // A 1×1 convolution of NCHW x through `conv`, with its adapters.
  torch::Tensor conv1x1(const torch::Tensor& x, torch::nn::Conv2d& conv) const;
  // Σ scale·B·(A·dropout(x)) alone: x [...,in] -> [...,out].
  torch::Tensor delta(const torch::Tensor& x) const;

 private:
  std::vector<LoraAdapter> adapters_;
  torch::Tensor fused_;
};

// Σ scale·B·A shaped like `weight` ([out,in] or [out,in,1,1]), in float32.
torch::Tensor lora_weight_delta(const std::vector<LoraAdapter>& adapters, const torch::Tensor& weight);

}  // namespace luminars
