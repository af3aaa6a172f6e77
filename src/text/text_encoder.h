// The frozen text side of the pipeline: prompts -> CLIP tokenizer -> CLIP text model -> the
// denoiser's conditioning (ctx = per-token hidden states, pooled = pooler_output).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "text/clip_text_model.h"
#include "text/clip_tokenizer.h"

namespace luminars {

// [B, context_length] int64: tokenizer.encode of each text, padded and truncated.
torch::Tensor encode_batch(const ClipTokenizer& tokenizer, const std::vector<std::string>& texts);

struct TextEncoding {
  torch::Tensor ctx;     // [B,77,D]: last hidden state, or the penultimate layer's output when asked
  torch::Tensor pooled;  // [B,D]: pooler_output (final hidden state at EOS), not the projection
};

class TextEncoder {
 public:
  // The tokenizer's context length must fit the model's position table.
  TextEncoder(ClipTokenizer tokenizer, ClipTextModel model);
  // `text_encoder_dir`: config.json + model.safetensors; `tokenizer_dir`: vocab.json + merges.txt.
  static TextEncoder load(const std::string& text_encoder_dir, const std::string& tokenizer_dir,
                          torch::Device device = torch::kCPU);

  // Without gradients; outputs on the model's device.
  TextEncoding encode(const std::vector<std::string>& prompts, bool penultimate = false) const;
  // Every output of the model (projection included when present) for the prompts.
  ClipTextOutput encode_all(const std::vector<std::string>& prompts) const;
  // As encode, recording gradients where the model's tensors require them (its LoRA adapters).
  TextEncoding forward(const std::vector<std::string>& prompts, bool penultimate = false) const;

  TextEncoder& to(torch::Device device);
  torch::Device device() const { return model_->device(); }
  int64_t hidden_size() const { return model_->config().hidden_size; }
  int64_t context_length() const { return tokenizer_.context_length; }
  const ClipTokenizer& tokenizer() const { return tokenizer_; }
  const ClipTextModel& model() const { return model_; }
  ClipTextModel& model() { return model_; }  // to attach LoRA adapters (pipeline/text_lora.h)

 private:
  ClipTokenizer tokenizer_;
  mutable ClipTextModel model_;  // forward() is not const in LibTorch; encoding does not change it
};

}  // namespace luminars
