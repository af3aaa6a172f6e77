#include "text/text_encoder.h"

#include "core/error.h"

namespace luminars {

torch::Tensor encode_batch(const ClipTokenizer& tokenizer, const std::vector<std::string>& texts) {
  auto out = torch::empty({static_cast<int64_t>(texts.size()), tokenizer.context_length}, torch::kInt64);  // [B,L]
  auto acc = out.accessor<int64_t, 2>();
  for (std::size_t b = 0; b < texts.size(); ++b) {
    const auto ids = tokenizer.encode(texts[b]);
    for (int64_t k = 0; k < tokenizer.context_length; ++k) acc[b][k] = ids[k];
  }
  return out;
}

TextEncoder::TextEncoder(ClipTokenizer tokenizer, ClipTextModel model)
    : tokenizer_(std::move(tokenizer)), model_(std::move(model)) {
  if (tokenizer_.context_length > model_->config().max_position_embeddings)
    throw Error("text encoder: the tokenizer's context length " + std::to_string(tokenizer_.context_length) +
                " exceeds the model's max_position_embeddings " +
                std::to_string(model_->config().max_position_embeddings));
  if (tokenizer_.vocab_size() > model_->config().vocab_size)
    throw Error("text encoder: the tokenizer's vocabulary (" + std::to_string(tokenizer_.vocab_size()) +
                " tokens) is larger than the model's vocab_size " + std::to_string(model_->config().vocab_size));
  model_->eval();
}

TextEncoder TextEncoder::load(const std::string& text_encoder_dir, const std::string& tokenizer_dir,
                              torch::Device device) {
  auto tokenizer = ClipTokenizer::from_dir(tokenizer_dir);
  return TextEncoder(std::move(tokenizer), load_clip_text_model(text_encoder_dir, device));
}

ClipTextOutput TextEncoder::encode_all(const std::vector<std::string>& prompts) const {
  torch::NoGradGuard no_grad;
  auto ids = encode_batch(tokenizer_, prompts).to(model_->device());  // [B,77]
  return model_->forward(ids);
}

TextEncoding TextEncoder::encode(const std::vector<std::string>& prompts, bool penultimate) const {
  torch::NoGradGuard no_grad;
  return forward(prompts, penultimate);
}

TextEncoding TextEncoder::forward(const std::vector<std::string>& prompts, bool penultimate) const {
  auto out = model_->forward(encode_batch(tokenizer_, prompts).to(model_->device()));
  return {penultimate ? out.penultimate_hidden_state : out.last_hidden_state, out.pooler_output};
}

TextEncoder& TextEncoder::to(torch::Device device) {
  model_->to(device);
  return *this;
}

}  // namespace luminars
