// CLIP's byte-level BPE tokenizer, read from a Hugging Face tokenizer folder (vocab.json, merges.txt,
// optionally tokenizer_config.json / special_tokens_map.json for the special tokens and length).
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace luminars {

class ClipTokenizer {
 public:
  // Throws luminars::Error naming the file at fault (missing, bad JSON, malformed merge line, unknown
  // special token).
  static ClipTokenizer from_dir(const std::string& dir);

  // The ids of `text` between BOS and EOS. With `truncate`, at most context_length ids with EOS
  // kept last; with `pad`, filled up to context_length with pad_id (padding implies truncation).
  std::vector<int64_t> encode(const std::string& text, bool pad = true, bool truncate = true) const;
  // [B, context_length] int64, padded and truncated.
  torch::Tensor encode_batch(const std::vector<std::string>& texts) const;

  // The text pieces of `text` before BPE (after cleaning, lower-casing and CLIP's split pattern).
  std::vector<std::string> pre_tokenize(const std::string& text) const;
  // Token strings of ids (byte-level symbols, `</w>` marking word ends); unknown ids give "<unk:N>".
  std::string id_to_token(int64_t id) const;
  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }

  int64_t bos_id = 49406, eos_id = 49407, pad_id = 49407, unk_id = 49407;
  int64_t context_length = 77;

 private:
  ClipTokenizer();
  void bpe(const std::string& word, std::vector<int64_t>& out) const;  // word in byte-level symbols

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int32_t> merge_rank_;  // "left right" -> rank
  std::string byte_symbol_[256];                          // byte -> its printable symbol (UTF-8)
  std::string bos_token_ = "<|startoftext|>", eos_token_ = "<|endoftext|>";
  std::string bos_match_ = bos_token_, eos_match_ = eos_token_;  // lower-cased, as found in the text
  // Results of bpe() per word; guarded, so one tokenizer may be shared between threads.
  struct Cache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<int64_t>> words;
  };
  std::shared_ptr<Cache> cache_;
};

}  // namespace luminars
