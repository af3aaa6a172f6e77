// Learns a CLIP-style byte-level BPE vocabulary from captions and writes it as a Hugging Face
// CLIPTokenizer folder (vocab.json, merges.txt, tokenizer_config.json, special_tokens_map.json)
// that ClipTokenizer::from_dir reads.
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace luminars {

// 256 byte symbols, the same 256 with `</w>`, <|startoftext|> and <|endoftext|>.
inline constexpr int64_t kMinBpeVocabSize = 514;

struct BpeTrainerOptions {
  int64_t vocab_size = 49408;  // tokens in all, BOS and EOS included; at least kMinBpeVocabSize
  int64_t min_frequency = 2;   // a pair seen fewer times (summed over word counts) is never merged
  bool progress = false;       // a progress bar on stderr when more than a few thousand merges are asked
};

// Pre-tokenised word (CLIP's cleaning, lower case and split) -> occurrences; ordered, so everything
// built from it is deterministic.
using WordCounts = std::map<std::string, int64_t>;

// Adds the words of `text` (clip_pre_tokenize, the tokenizer's own function) to `counts`;
// returns how many it added.
int64_t count_clip_words(const std::string& text, WordCounts& counts);

// A learnt vocabulary, laid out as OpenAI CLIP's: ids 0..255 the byte symbols in
// bytes_to_unicode() order, 256..511 the same with `</w>`, then one token per merge in merge
// order, then <|startoftext|> and <|endoftext|> (so BOS = size − 2, EOS = size − 1).
struct BpeVocabulary {
  std::vector<std::string> tokens;                          // id -> token (UTF-8 byte symbols)
  std::vector<std::pair<std::string, std::string>> merges;  // (left, right), best first
  int64_t size() const { return static_cast<int64_t>(tokens.size()); }
};

// Standard BPE over the word counts: each word is its byte symbols with `</w>` on the last;
// repeatedly the most frequent adjacent pair (summed over word counts; ties to the smallest
// "left right" string) is merged everywhere, until the vocabulary holds options.vocab_size tokens
// or no pair is seen min_frequency times (then the vocabulary is smaller). Pair counts are kept
// incrementally with an index from pair to the words holding it. A merge whose result is already
// a token (two different pairs spelling the same string, rare) is recorded in `merges` but adds
// no token, as in Hugging Face's trainer. Throws luminars::Error for a vocab_size below
// kMinBpeVocabSize or a min_frequency below 1.
BpeVocabulary learn_clip_bpe(const WordCounts& words, const BpeTrainerOptions& options = {});

// Writes the four files of a CLIPTokenizer folder into `dir` (created if needed), each replaced
// atomically: vocab.json (token -> id, in id order), merges.txt ("#version: 0.2", then "left right"
// per line), tokenizer_config.json (model_max_length = context_length, pad and unk =
// <|endoftext|>) and special_tokens_map.json. Same vocabulary => byte-identical files.
void save_clip_tokenizer(const BpeVocabulary& vocab, const std::string& dir, int64_t context_length = 77);

struct TrainTokenizerOptions {
  std::string data_dir;                 // captioned image folder (data/dataset.h: imagefolder or .txt sidecars)
  std::string out_dir;                  // tokenizer folder to write
  std::string caption_column = "text";  // imagefolder: the metadata.jsonl caption column
  int64_t context_length = 77;          // tokenizer_config.json's model_max_length (at least 2)
  BpeTrainerOptions bpe;
};

struct TrainTokenizerResult {
  int64_t captions = 0;        // every caption of every item
  int64_t words = 0;           // pre-tokenised words over all captions
  int64_t distinct_words = 0;
  int64_t merges = 0;          // merges learnt
  int64_t vocab_size = 0;      // tokens written, BOS and EOS included
  int64_t asked_vocab_size = 0;
  int64_t min_frequency = 0;
  std::string out_dir;
  // One line: captions, words, merges, vocabulary size (and why it is short of the asked size),
  // output folder.
  std::string summary() const;
};

// Reads every caption of the folder, counts its words, learns the merges and writes the folder.
// Throws luminars::Error for a vocabulary below the minimum (before reading anything), a missing
// or empty folder (Dataset::scan's messages) and a folder without a single caption word
// ("no captions in DIR").
TrainTokenizerResult train_tokenizer(const TrainTokenizerOptions& options);

}  // namespace luminars
