// CLIP's byte-level BPE tokenizer, read from a Hugging Face tokenizer folder (vocab.json, merges.txt,
// optionally tokenizer_config.json / special_tokens_map.json for the special tokens and length).
#pragma once
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace luminars {

// GPT-2's reversible byte -> printable character table (`bytes_to_unicode()`): byte b -> its
// symbol in UTF-8. Printable Latin-1 bytes map to themselves, the others to U+0100 onwards.
const std::array<std::string, 256>& clip_byte_symbols();
// The 256 bytes in the order of `bytes_to_unicode().values()`, the order of CLIP's first 256 ids
// (the printable bytes ascending, then the others ascending).
const std::array<uint8_t, 256>& clip_byte_order();

// CLIP's cleaning (NFC, lower case) and split pattern: the text pieces that BPE works on, one word
// each. `special_tokens` (already lower-cased) are matched first at each position and kept whole.
std::vector<std::string> clip_pre_tokenize(const std::string& text, const std::vector<std::string>& special_tokens = {});

class ClipTokenizer {
 public:
  // Throws luminars::Error naming the file at fault (missing, bad JSON, malformed merge line, unknown
  // special token).
  static ClipTokenizer from_dir(const std::string& dir);

  // The ids of `text` between BOS and EOS. With `truncate`, at most context_length ids with EOS
  // kept last; with `pad`, filled up to context_length with pad_id (padding implies truncation).
  // (Rows of ids as a tensor: encode_batch in text/text_encoder.h; this header stays free of LibTorch.)
  std::vector<int64_t> encode(const std::string& text, bool pad = true, bool truncate = true) const;

  // The text of ids: byte symbols back to bytes, `</w>` to a space, special tokens (BOS, EOS, pad,
  // unk) and unknown ids dropped, invalid UTF-8 replaced by U+FFFD, trimmed (as transformers' decode
  // with skip_special_tokens). Pieces come back separated by spaces: "a,b" decodes as "a , b".
  std::string decode(const std::vector<int64_t>& ids) const;

  // The text pieces of `text` before BPE: clip_pre_tokenize with BOS and EOS kept whole.
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
