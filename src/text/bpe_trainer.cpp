#include "text/bpe_trainer.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <memory>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "text/clip_tokenizer.h"
#include "data/dataset.h"

namespace luminars {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const char* const kBos = "<|startoftext|>";
const char* const kEos = "<|endoftext|>";
const char* const kWordEnd = "</w>";

// ---------------------------------------------------------------------------------------------
// Merge learning
// ---------------------------------------------------------------------------------------------
// Symbols are token ids: during training, the id a symbol will have in the vocabulary.

using Pair = uint64_t;  // (left id << 32) | right id
Pair make_pair_key(int32_t left, int32_t right) { return (static_cast<uint64_t>(left) << 32) | static_cast<uint32_t>(right); }
int32_t left_of(Pair p) { return static_cast<int32_t>(p >> 32); }
int32_t right_of(Pair p) { return static_cast<int32_t>(p & 0xffffffffu); }

struct Word {
  std::vector<int32_t> symbols;
  int64_t count;
};

class MergeLearner {
 public:
  MergeLearner(const WordCounts& counts, const BpeTrainerOptions& options) : options_(options) {
    // The base alphabet: bytes in bytes_to_unicode() order, then the same with </w>.
    const auto& symbol = clip_byte_symbols();
    const auto& order = clip_byte_order();
    int32_t byte_id[256];
    for (int k = 0; k < 256; ++k) byte_id[order[k]] = add_token(symbol[order[k]]);
    for (int k = 0; k < 256; ++k) add_token(symbol[order[k]] + kWordEnd);

    words_.reserve(counts.size());
    for (const auto& [text, count] : counts) {
      if (text.empty() || count <= 0) continue;
      Word w{{}, count};
      w.symbols.reserve(text.size());
      for (unsigned char b : text) w.symbols.push_back(byte_id[b]);
      w.symbols.back() += 256;  // the word-final form
      words_.push_back(std::move(w));
    }
    for (int32_t w = 0; w < static_cast<int32_t>(words_.size()); ++w) add_pairs(w, /*new_symbol=*/-1, nullptr);
    for (const auto& [pair, count] : pair_count_) push(pair, count);
  }

  // Learns merges until the vocabulary (with BOS and EOS) holds options.vocab_size tokens or no
  // pair is frequent enough.
  void run() {
    const int64_t target = options_.vocab_size - kMinBpeVocabSize;
    std::unique_ptr<Progress> bar;
    if (options_.progress && target > 2000) {
      ProgressOptions po;
      po.unit = "merge";
      bar = std::make_unique<Progress>(target, "learning merges", po);
    }
    while (static_cast<int64_t>(tokens_.size()) + 2 < options_.vocab_size && !heap_.empty()) {
      std::pop_heap(heap_.begin(), heap_.end(), lower_);
      const Entry top = heap_.back();
      heap_.pop_back();
      const int64_t current = count_of(top.pair);
      if (current != top.count) {  // stale: a fresher entry is in the heap when the count grew
        if (current > 0 && current < top.count) push(top.pair, current);
        continue;
      }
      if (current < options_.min_frequency) break;  // the best pair left is too rare
      merge(top.pair);
      if (bar) bar->update();
    }
    if (bar) bar->finish();
  }

  BpeVocabulary result() && {
    BpeVocabulary v;
    v.tokens = std::move(tokens_);
    v.tokens.emplace_back(kBos);
    v.tokens.emplace_back(kEos);
    v.merges = std::move(merges_);
    return v;
  }

 private:
  struct Entry {
    int64_t count;
    Pair pair;
  };

  int32_t add_token(const std::string& token) {
    auto [it, inserted] = token_id_.emplace(token, static_cast<int32_t>(tokens_.size()));
    if (inserted) tokens_.push_back(token);
    return it->second;
  }

  int64_t count_of(Pair p) const {
    auto it = pair_count_.find(p);
    return it == pair_count_.end() ? 0 : it->second;
  }

  void push(Pair p, int64_t count) {
    heap_.push_back({count, p});
    std::push_heap(heap_.begin(), heap_.end(), lower_);
  }

  // Counts the pairs of word w; indexes the word under every pair when new_symbol < 0, else under
  // the pairs holding new_symbol (the others already list it), collecting those in `grown`.
  void add_pairs(int32_t w, int32_t new_symbol, std::vector<Pair>* grown) {
    const Word& word = words_[w];
    for (std::size_t k = 0; k + 1 < word.symbols.size(); ++k) {
      const int32_t l = word.symbols[k], r = word.symbols[k + 1];
      const Pair p = make_pair_key(l, r);
      pair_count_[p] += word.count;
      if (new_symbol < 0 || l == new_symbol || r == new_symbol) {
        auto& list = pair_words_[p];
        if (list.empty() || list.back() != w) list.push_back(w);
        if (grown) grown->push_back(p);
      }
    }
  }

  void remove_pairs(int32_t w) {
    const Word& word = words_[w];
    for (std::size_t k = 0; k + 1 < word.symbols.size(); ++k) {
      auto it = pair_count_.find(make_pair_key(word.symbols[k], word.symbols[k + 1]));
      if ((it->second -= word.count) == 0) pair_count_.erase(it);
    }
  }

  // Replaces every occurrence of `pair` (left to right, so "a a a" becomes "aa a") by its merge.
  void merge(Pair pair) {
    const int32_t left = left_of(pair), right = right_of(pair);
    const int32_t merged = add_token(tokens_[left] + tokens_[right]);
    // A pair can come back only when a later merge spells one of its symbols again; its merge line
    // (and its token) already exist then.
    if (merged_pairs_.insert(pair).second) merges_.emplace_back(tokens_[left], tokens_[right]);

    std::vector<int32_t> holders;
    if (auto it = pair_words_.find(pair); it != pair_words_.end()) {
      holders = std::move(it->second);
      pair_words_.erase(it);
    }
    std::vector<Pair> grown;
    std::vector<int32_t> next;
    for (int32_t w : holders) {
      auto& symbols = words_[w].symbols;
      bool holds = false;  // the index may list words that lost the pair to an earlier merge
      for (std::size_t k = 0; k + 1 < symbols.size() && !holds; ++k) holds = symbols[k] == left && symbols[k + 1] == right;
      if (!holds) continue;
      remove_pairs(w);
      next.clear();
      for (std::size_t k = 0; k < symbols.size(); ++k) {
        if (k + 1 < symbols.size() && symbols[k] == left && symbols[k + 1] == right) {
          next.push_back(merged);
          ++k;
        } else {
          next.push_back(symbols[k]);
        }
      }
      symbols.swap(next);
      add_pairs(w, merged, &grown);
    }
    pair_count_.erase(pair);
    std::sort(grown.begin(), grown.end());
    grown.erase(std::unique(grown.begin(), grown.end()), grown.end());
    for (Pair p : grown)
      if (int64_t c = count_of(p); c > 0) push(p, c);
  }

  // Heap order: higher count first, then the smaller "left right" string. Symbols hold no byte
  // at or below the space, so comparing (left, right) as a tuple orders exactly as that string.
  struct Lower {
    const std::vector<std::string>* tokens;
    bool operator()(const Entry& a, const Entry& b) const {
      if (a.count != b.count) return a.count < b.count;
      const std::string &al = (*tokens)[left_of(a.pair)], &bl = (*tokens)[left_of(b.pair)];
      if (int c = al.compare(bl); c != 0) return c > 0;
      return (*tokens)[right_of(a.pair)] > (*tokens)[right_of(b.pair)];
    }
  };

  BpeTrainerOptions options_;
  std::vector<std::string> tokens_;  // id -> token, BOS and EOS not yet
  std::unordered_map<std::string, int32_t> token_id_;
  std::vector<std::pair<std::string, std::string>> merges_;
  std::unordered_set<Pair> merged_pairs_;
  std::vector<Word> words_;
  std::unordered_map<Pair, int64_t> pair_count_;               // summed over word counts; absent = 0
  std::unordered_map<Pair, std::vector<int32_t>> pair_words_;  // words that hold (or held) the pair
  std::vector<Entry> heap_;                                     // lazily updated: entries may be stale
  Lower lower_{&tokens_};
};

void check_options(const BpeTrainerOptions& options) {
  if (options.vocab_size < kMinBpeVocabSize)
    throw Error("vocab size " + std::to_string(options.vocab_size) +
                ": vocabulary too small for the byte alphabet (minimum " + std::to_string(kMinBpeVocabSize) +
                ": 256 byte symbols, 256 word-final ones, <|startoftext|> and <|endoftext|>)");
  if (options.vocab_size > (int64_t{1} << 24))
    throw Error("vocab size " + std::to_string(options.vocab_size) + ": at most 2^24 tokens");
  if (options.min_frequency < 1)
    throw Error("min frequency " + std::to_string(options.min_frequency) + ": must be at least 1");
}

void write_json(const std::string& path, const json& j) {
  write_file_atomic(path, [&](std::ostream& out) { out << j.dump(2) << "\n"; });
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

int64_t count_clip_words(const std::string& text, WordCounts& counts) {
  int64_t n = 0;
  for (auto& piece : clip_pre_tokenize(text)) {
    ++counts[std::move(piece)];
    ++n;
  }
  return n;
}

BpeVocabulary learn_clip_bpe(const WordCounts& words, const BpeTrainerOptions& options) {
  check_options(options);
  MergeLearner learner(words, options);
  learner.run();
  return std::move(learner).result();
}

void save_clip_tokenizer(const BpeVocabulary& vocab, const std::string& dir, int64_t context_length) {
  if (context_length < 2) throw Error(dir + ": context length " + std::to_string(context_length) + " must be at least 2 (BOS and EOS)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("cannot create tokenizer folder " + dir + ": " + ec.message());
  const fs::path root(dir);

  // vocab.json by hand, so the entries stay in id order (nlohmann::json sorts keys).
  write_file_atomic((root / "vocab.json").string(), [&](std::ostream& out) {
    out << "{\n";
    for (std::size_t id = 0; id < vocab.tokens.size(); ++id)
      out << "  " << json(vocab.tokens[id]).dump() << ": " << id << (id + 1 < vocab.tokens.size() ? ",\n" : "\n");
    out << "}\n";
  });
  write_file_atomic((root / "merges.txt").string(), [&](std::ostream& out) {
    out << "#version: 0.2\n";
    for (const auto& [left, right] : vocab.merges) out << left << ' ' << right << '\n';
  });
  const json config{
      {"add_prefix_space", false},
      {"bos_token", kBos},
      {"clean_up_tokenization_spaces", true},
      {"do_lower_case", true},
      {"eos_token", kEos},
      {"errors", "replace"},
      {"model_max_length", context_length},
      {"pad_token", kEos},
      {"tokenizer_class", "CLIPTokenizer"},
      {"unk_token", kEos},
  };
  write_json((root / "tokenizer_config.json").string(), config);
  write_json((root / "special_tokens_map.json").string(),
             json{{"bos_token", kBos}, {"eos_token", kEos}, {"pad_token", kEos}, {"unk_token", kEos}});
}

std::string TrainTokenizerResult::summary() const {
  std::ostringstream s;
  s << "read " << captions << " captions (" << words << " words, " << distinct_words << " distinct); learnt "
    << merges << " merges; vocabulary " << vocab_size << " tokens";
  if (vocab_size < asked_vocab_size) {
    s << " (of " << asked_vocab_size << " asked: no pair left";
    if (min_frequency > 1) s << " seen at least " << min_frequency << " times";
    s << ")";
  }
  s << "; wrote " << out_dir;
  return s.str();
}

TrainTokenizerResult train_tokenizer(const TrainTokenizerOptions& options) {
  // 1. Check the sizes before reading anything.
  check_options(options.bpe);
  if (options.context_length < 2)
    throw Error("context length " + std::to_string(options.context_length) + " must be at least 2 (BOS and EOS)");

  // 2. Every caption's words.
  DatasetOptions dopt;
  dopt.caption_column = options.caption_column;
  const Dataset data = Dataset::scan(options.data_dir, dopt);
  if (data.empty()) throw Error("dataset folder " + options.data_dir + " is empty");
  TrainTokenizerResult r;
  WordCounts counts;
  for (const auto& item : data.items)
    for (const auto& caption : item.captions) {
      ++r.captions;
      r.words += count_clip_words(caption, counts);
    }
  if (r.words == 0) throw Error("no captions in " + options.data_dir);
  r.distinct_words = static_cast<int64_t>(counts.size());

  // 3. Merges, then the folder.
  const BpeVocabulary vocab = learn_clip_bpe(counts, options.bpe);
  save_clip_tokenizer(vocab, options.out_dir, options.context_length);
  r.merges = static_cast<int64_t>(vocab.merges.size());
  r.vocab_size = vocab.size();
  r.asked_vocab_size = options.bpe.vocab_size;
  r.min_frequency = options.bpe.min_frequency;
  r.out_dir = options.out_dir;
  return r;
}

}  // namespace luminars
