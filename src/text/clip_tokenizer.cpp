#include "text/clip_tokenizer.h"

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "core/error.h"
#include "core/files.h"
#include "core/json_fields.h"
#include "text/unicode.h"

namespace luminars {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json read_json(const std::string& path) { return json_fields::parse(read_file(path), path); }

// A special-token entry of tokenizer_config.json / special_tokens_map.json: "text" or {"content": "text"}.
std::optional<std::string> token_text(const json& config, const char* key, const std::string& source) {
  auto it = config.find(key);
  if (it == config.end() || it->is_null()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string())
    return (*it)["content"].get<std::string>();
  throw Error(source + ": field '" + key + "' must be a string or an object with a string 'content'");
}

bool starts_with(const std::u32string& s, std::size_t pos, const std::u32string& prefix) {
  return !prefix.empty() && s.compare(pos, prefix.size(), prefix) == 0;
}

bool printable_byte(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

// The code point of byte b's symbol; every one is below U+0100 + 256.
char32_t byte_code_point(int b, int& next) { return printable_byte(b) ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++); }

// Code point of a byte symbol -> its byte; -1 for code points that are no byte symbol.
const std::array<int, 512>& symbol_bytes() {
  static const std::array<int, 512> table = [] {
    std::array<int, 512> t;
    t.fill(-1);
    int next = 0;
    for (int b = 0; b < 256; ++b) t[byte_code_point(b, next)] = b;
    return t;
  }();
  return table;
}

}  // namespace

const std::array<std::string, 256>& clip_byte_symbols() {
  static const std::array<std::string, 256> symbols = [] {
    std::array<std::string, 256> s;
    int next = 0;
    for (int b = 0; b < 256; ++b) unicode::append_utf8(s[b], byte_code_point(b, next));
    return s;
  }();
  return symbols;
}

const std::array<uint8_t, 256>& clip_byte_order() {
  static const std::array<uint8_t, 256> order = [] {
    std::array<uint8_t, 256> o{};
    std::size_t k = 0;
    for (int b = 0; b < 256; ++b)
      if (printable_byte(b)) o[k++] = static_cast<uint8_t>(b);
    for (int b = 0; b < 256; ++b)
      if (!printable_byte(b)) o[k++] = static_cast<uint8_t>(b);
    return o;
  }();
  return order;
}

std::vector<std::string> clip_pre_tokenize(const std::string& text, const std::vector<std::string>& special_tokens) {
  // Cleaning (NFC, lower case); whitespace runs only separate pieces, so collapsing and trimming
  // them is implicit in the scan below.
  const std::u32string s = unicode::to_lower(unicode::compose(unicode::decode_utf8(text)));
  std::vector<std::u32string> specials;
  for (const auto& t : special_tokens) specials.push_back(unicode::decode_utf8(t));
  auto other = [](char32_t c) { return !unicode::is_space(c) && !unicode::is_letter(c) && !unicode::is_number(c); };

  // CLIP's pattern, leftmost alternative first at each position:
  // <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
  std::vector<std::string> pieces;
  std::size_t i = 0;
  while (i < s.size()) {
    std::size_t len = 0;
    for (const auto& special : specials)
      if (starts_with(s, i, special)) {
        len = special.size();
        break;
      }
    if (len == 0 && s[i] == U'\'' && i + 1 < s.size()) {
      const char32_t a = s[i + 1], b = i + 2 < s.size() ? s[i + 2] : 0;
      if (a == U's' || a == U't' || a == U'm' || a == U'd') len = 2;
      else if ((a == U'r' && b == U'e') || (a == U'v' && b == U'e') || (a == U'l' && b == U'l')) len = 3;
    }
    if (len == 0) {
      const char32_t c = s[i];
      std::size_t j = i + 1;
      if (unicode::is_space(c)) {
        i = j;
        continue;
      }
      if (unicode::is_letter(c)) {
        while (j < s.size() && unicode::is_letter(s[j])) ++j;
      } else if (!unicode::is_number(c)) {
        while (j < s.size() && other(s[j])) ++j;
      }
      len = j - i;
    }
    pieces.push_back(unicode::encode_utf8(std::u32string_view(s).substr(i, len)));
    i += len;
  }
  return pieces;
}

ClipTokenizer::ClipTokenizer() : cache_(std::make_shared<Cache>()) {}

ClipTokenizer ClipTokenizer::from_dir(const std::string& dir) {
  if (!fs::is_directory(dir))
    throw Error("tokenizer folder not found: " + fs::absolute(dir).lexically_normal().string() + " (vocab.json and merges.txt)");
  ClipTokenizer tok;

  // vocab.json: token string -> id.
  const std::string vocab_path = (fs::path(dir) / "vocab.json").string();
  if (!fs::exists(vocab_path)) throw Error(vocab_path + ": file not found (CLIP tokenizer vocabulary)");
  json vocab = read_json(vocab_path);
  if (!vocab.is_object() || vocab.empty()) throw Error(vocab_path + ": expected a non-empty object of token -> id");
  // Ids index a table of tokens: they stay below the number of entries plus 65,536 (CLIP's are
  // dense), so a single huge id cannot make that table gigabytes long.
  const int64_t id_limit = static_cast<int64_t>(vocab.size()) + 65536;
  for (auto& [token, id] : vocab.items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= id_limit)
      throw Error(vocab_path + ": id of token '" + token.substr(0, 60) + "' is not an integer in [0, " +
                  std::to_string(id_limit) + ") (the number of entries plus 65536)");
    const int64_t i = id.get<int64_t>();
    tok.vocab_[token] = i;
    if (i >= static_cast<int64_t>(tok.id_to_token_.size())) tok.id_to_token_.resize(i + 1);
    tok.id_to_token_[i] = token;
  }

  // merges.txt: "#version" header, then one "left right" pair per line, best first.
  const std::string merges_path = (fs::path(dir) / "merges.txt").string();
  if (!fs::exists(merges_path)) throw Error(merges_path + ": file not found (CLIP tokenizer merges)");
  std::istringstream merges(read_file(merges_path));
  std::string line;
  int64_t line_no = 0;
  int32_t rank = 0;
  while (std::getline(merges, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    const auto space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos)
      throw Error(merges_path + ": line " + std::to_string(line_no) + " is not a pair of symbols: '" +
                  line.substr(0, 60) + "'");
    tok.merge_rank_.emplace(line, rank++);
  }
  if (rank == 0) throw Error(merges_path + ": no merges");

  // Special tokens and length: special_tokens_map.json over tokenizer_config.json over CLIP's defaults.
  std::string pad_token = "<|endoftext|>", unk_token = "<|endoftext|>";
  json added;  // tokenizer_config.json's added_tokens_decoder: "id" -> {"content": ...}
  std::string added_path;
  for (const char* name : {"tokenizer_config.json", "special_tokens_map.json"}) {
    const std::string path = (fs::path(dir) / name).string();
    if (!fs::exists(path)) continue;
    json config = read_json(path);
    if (!config.is_object()) throw Error(path + ": expected a JSON object");
    if (auto t = token_text(config, "bos_token", path)) tok.bos_token_ = *t;
    if (auto t = token_text(config, "eos_token", path)) tok.eos_token_ = *t;
    if (auto t = token_text(config, "pad_token", path)) pad_token = *t;
    if (auto t = token_text(config, "unk_token", path)) unk_token = *t;
    if (auto it = config.find("model_max_length"); it != config.end() && it->is_number()) {
      // Files without a real limit hold a huge sentinel (1e30); CLIP's 77 stands then.
      const double n = it->get<double>();
      if (n < 2) throw Error(path + ": model_max_length must be at least 2 (BOS and EOS)");
      if (n <= 1e6) tok.context_length = static_cast<int64_t>(n);
    }
    if (auto it = config.find("added_tokens_decoder"); it != config.end() && it->is_object()) {
      added = *it;
      added_path = path;
    }
  }
  auto id_of = [&](const std::string& token, const char* role) -> int64_t {
    if (auto it = tok.vocab_.find(token); it != tok.vocab_.end()) return it->second;
    if (added.is_object())
      for (auto& [id, entry] : added.items())
        if (entry.is_object() && entry.value("content", std::string()) == token) {
          char* end = nullptr;
          const long long n = std::strtoll(id.c_str(), &end, 10);
          if (id.empty() || *end != '\0' || n < 0) throw Error(added_path + ": added_tokens_decoder has a bad id '" + id + "'");
          return n;
        }
    throw Error(vocab_path + ": " + role + " token '" + token + "' is not in the vocabulary");
  };
  tok.bos_id = id_of(tok.bos_token_, "bos");
  tok.eos_id = id_of(tok.eos_token_, "eos");
  tok.pad_id = id_of(pad_token, "pad");
  tok.unk_id = id_of(unk_token, "unk");
  // The text is lower-cased before the split, so the special tokens are matched in lower case.
  tok.bos_match_ = unicode::encode_utf8(unicode::to_lower(unicode::decode_utf8(tok.bos_token_)));
  tok.eos_match_ = unicode::encode_utf8(unicode::to_lower(unicode::decode_utf8(tok.eos_token_)));
  return tok;
}

std::vector<std::string> ClipTokenizer::pre_tokenize(const std::string& text) const {
  return clip_pre_tokenize(text, {bos_match_, eos_match_});
}

void ClipTokenizer::bpe(const std::string& piece, std::vector<int64_t>& out) const {
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    if (auto it = cache_->words.find(piece); it != cache_->words.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  // One symbol per byte, the last marked as a word end; then repeatedly merge every occurrence
  // of the best-ranked adjacent pair.
  std::vector<std::string> word;
  word.reserve(piece.size());
  const auto& byte_symbol = clip_byte_symbols();
  for (unsigned char b : piece) word.push_back(byte_symbol[b]);
  word.back() += "</w>";
  std::string key;
  while (word.size() > 1) {
    int32_t best = std::numeric_limits<int32_t>::max();
    std::size_t best_at = 0;
    for (std::size_t k = 0; k + 1 < word.size(); ++k) {
      key.assign(word[k]).append(" ").append(word[k + 1]);
      if (auto it = merge_rank_.find(key); it != merge_rank_.end() && it->second < best) {
        best = it->second;
        best_at = k;
      }
    }
    if (best == std::numeric_limits<int32_t>::max()) break;
    const std::string left = word[best_at], right = word[best_at + 1];
    std::vector<std::string> merged;
    merged.reserve(word.size());
    for (std::size_t k = 0; k < word.size(); ++k) {
      if (k + 1 < word.size() && word[k] == left && word[k + 1] == right) {
        merged.push_back(left + right);
        ++k;
      } else {
        merged.push_back(std::move(word[k]));
      }
    }
    word = std::move(merged);
  }
  std::vector<int64_t> ids;
  ids.reserve(word.size());
  for (const auto& symbol : word) {
    auto it = vocab_.find(symbol);
    ids.push_back(it != vocab_.end() ? it->second : unk_id);
  }
  out.insert(out.end(), ids.begin(), ids.end());
  if (piece.size() > 64) return;  // long words are rare and would make the cache large
  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->words.size() >= 100000) cache_->words.clear();  // bounded: prompts rarely repeat that many words
  cache_->words.emplace(piece, std::move(ids));
}

std::vector<int64_t> ClipTokenizer::encode(const std::string& text, bool pad, bool truncate) const {
  std::vector<int64_t> ids{bos_id};
  // Truncation keeps the first context_length − 1 ids: once they are there the rest of the text
  // is not tokenized, and a longer word (BPE is quadratic in its length) is cut far beyond what
  // those ids can span, so a 100 kB caption without spaces costs what a short one does.
  const bool cut = pad || truncate;
  const std::size_t max_piece = static_cast<std::size_t>(std::max<int64_t>(context_length, 1)) * 32;
  for (const auto& piece : pre_tokenize(text)) {
    if (cut && static_cast<int64_t>(ids.size()) >= context_length) break;
    if (piece == bos_match_) ids.push_back(bos_id);
    else if (piece == eos_match_) ids.push_back(eos_id);
    else bpe(cut && piece.size() > max_piece ? piece.substr(0, max_piece) : piece, ids);
  }
  if ((pad || truncate) && static_cast<int64_t>(ids.size()) >= context_length) ids.resize(context_length - 1);
  ids.push_back(eos_id);
  if (pad) ids.resize(context_length, pad_id);
  return ids;
}

std::string ClipTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string text;
  for (int64_t id : ids) {
    if (id == bos_id || id == eos_id || id == pad_id || id == unk_id || id < 0 || id >= vocab_size()) continue;
    text += id_to_token_[id];
  }
  // Symbols back to bytes; `</w>` (its characters are byte symbols of themselves) ends a word.
  const std::u32string symbols = unicode::decode_utf8(text);
  const std::u32string word_end = U"</w>";
  const auto& byte_of = symbol_bytes();
  std::string bytes;
  for (std::size_t i = 0; i < symbols.size(); ++i) {
    if (starts_with(symbols, i, word_end)) {
      bytes += ' ';
      i += word_end.size() - 1;
    } else if (symbols[i] < byte_of.size() && byte_of[symbols[i]] >= 0) {
      bytes += static_cast<char>(byte_of[symbols[i]]);
    }  // a character that is no byte symbol cannot come from this vocabulary's tokens: dropped
  }
  const std::u32string out = unicode::decode_utf8(bytes);  // invalid UTF-8 -> U+FFFD
  std::size_t begin = 0, end = out.size();
  while (begin < end && unicode::is_space(out[begin])) ++begin;
  while (end > begin && unicode::is_space(out[end - 1])) --end;
  return unicode::encode_utf8(std::u32string_view(out).substr(begin, end - begin));
}

std::string ClipTokenizer::id_to_token(int64_t id) const {
  if (id >= 0 && id < vocab_size() && !id_to_token_[id].empty()) return id_to_token_[id];
  return "<unk:" + std::to_string(id) + ">";
}

}  // namespace luminars
