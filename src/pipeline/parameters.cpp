// AUTOMATIC1111-style generation parameters: formatting, and parsing that tolerates real A1111 texts.
#include "pipeline/parameters.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/error.h"
#include "core/number_text.h"

namespace luminars {
namespace {

using KeyValues = std::vector<std::pair<std::string, std::string>>;

bool is_space(char c) { return c == ' ' || c == '\t'; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// `s` on one line and at most 80 bytes, for error messages.
std::string one_line(std::string_view s) {
  std::string out(s.substr(0, 80));
  std::replace_if(out.begin(), out.end(), [](char c) { return c == '\n' || c == '\r' || c == '\t'; }, ' ');
  return s.size() > 80 ? out + "…" : out;
}

// ---------------------------------------------------------------------------------------------
// Values: numbers in shortest form, JSON-quoted strings
// ---------------------------------------------------------------------------------------------

template <class T>
T parse_number(const std::string& key, const std::string& value) {
  T v{};
  const char* end = value.data() + value.size();
  const auto [ptr, ec] = std::from_chars(value.data(), end, v);
  if (ec != std::errc() || ptr != end || value.empty())
    throw Error("generation parameters: " + key + " is not a valid number: \"" + one_line(value) + "\"");
  if constexpr (std::is_floating_point_v<T>) {
    if (!std::isfinite(v)) throw Error("generation parameters: " + key + " is not a finite number: \"" + one_line(value) + "\"");
  }
  return v;
}

// As AUTOMATIC1111's quote(): plain unless the value would break the "Key: value, …" line.
std::string quote(const std::string& value) {
  if (value.find_first_of(",:\"\n\r") == std::string::npos && trim(value) == value) return value;
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (char c : value) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(c);
        }
    }
  }
  return out + "\"";
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  } else {
    out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
  }
}

// Four hex digits at `i`, or -1.
long hex4(std::string_view s, std::size_t i) {
  if (i + 4 > s.size()) return -1;
  long v = 0;
  for (std::size_t k = i; k < i + 4; ++k) {
    const char c = s[k];
    const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

// The JSON string starting with '"' at `i`; advances `i` past the closing quote. nullopt when it
// is unterminated or holds an invalid escape.
std::optional<std::string> unquote(std::string_view s, std::size_t& i) {
  std::string out;
  for (std::size_t k = i + 1; k < s.size(); ++k) {
    const char c = s[k];
    if (c == '"') {
      i = k + 1;
      return out;
    }
    if (c != '\\') {
      out.push_back(c);
      continue;
    }
    if (++k == s.size()) return std::nullopt;
    switch (s[k]) {
      case '"': case '\\': case '/': out.push_back(s[k]); break;
      case 'b': out.push_back('\b'); break;
      case 'f': out.push_back('\f'); break;
      case 'n': out.push_back('\n'); break;
      case 'r': out.push_back('\r'); break;
      case 't': out.push_back('\t'); break;
      case 'u': {
        long cp = hex4(s, k + 1);
        if (cp < 0) return std::nullopt;
        k += 4;
        if (cp >= 0xd800 && cp <= 0xdbff) {  // a surrogate pair: \uD83D\uDE00
          const long low = k + 2 < s.size() && s[k + 1] == '\\' && s[k + 2] == 'u' ? hex4(s, k + 3) : -1;
          if (low < 0xdc00 || low > 0xdfff) return std::nullopt;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
          k += 6;
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
          return std::nullopt;
        }
        append_utf8(out, static_cast<uint32_t>(cp));
        break;
      }
      default: return std::nullopt;
    }
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// The "Key: value, Key: value" line
// ---------------------------------------------------------------------------------------------

// Keys as AUTOMATIC1111 matches them: a word character, then word characters, spaces, '-' or '/'.
bool is_key(std::string_view key) {
  auto word = [](char c) {
    return static_cast<unsigned char>(c) >= 0x80 || std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  };
  if (key.empty() || !word(key.front())) return false;
  return std::all_of(key.begin(), key.end(), [&](char c) { return word(c) || c == ' ' || c == '-' || c == '/'; });
}

// The pairs of a key-value line; nullopt when the line does not start with "Key: ". A later
// segment that is no pair (stray text after an unquoted comma) is skipped, as A1111's regex does.
std::optional<KeyValues> parse_key_values(std::string_view line) {
  KeyValues pairs;
  std::size_t i = 0;
  bool first = true;
  while (true) {
    while (i < line.size() && is_space(line[i])) ++i;
    if (i == line.size()) break;
    const std::size_t key_start = i;
    while (i < line.size() && line[i] != ':' && line[i] != ',') ++i;
    const std::string_view key = trim(line.substr(key_start, i - key_start));
    if (i == line.size() || line[i] == ',' || !is_key(key)) {
      if (first) return std::nullopt;
      i = line.find(',', key_start);
      if (i == std::string_view::npos) break;
      ++i;
      continue;
    }
    ++i;  // ':'
    while (i < line.size() && is_space(line[i])) ++i;
    std::optional<std::string> value;
    if (i < line.size() && line[i] == '"') {
      std::size_t j = i;
      value = unquote(line, j);
      while (value && j < line.size() && is_space(line[j])) ++j;
      if (value && (j == line.size() || line[j] == ',')) {
        i = j;
      } else {
        value.reset();  // not a whole quoted value: read it plainly, up to the next comma
      }
    }
    if (!value) {
      const std::size_t end = std::min(line.find(',', i), line.size());
      value = std::string(trim(line.substr(i, end - i)));
      i = end;
    }
    pairs.emplace_back(std::string(key), *value);
    first = false;
    if (i < line.size()) ++i;  // ','
  }
  if (pairs.empty()) return std::nullopt;
  return pairs;
}

std::string sampler_label(const std::string& sampler) {
  if (sampler == "euler") return "Euler";
  if (sampler == "heun") return "Heun";
  throw Error("cannot write generation parameters: unknown sampler \"" + one_line(sampler) + "\" (euler or heun)");
}

// The sampler a label names ("" when LuminaRS lacks it); `ancestral` set for "Euler a".
std::string sampler_from_label(const std::string& label, bool& ancestral) {
  std::string lower = label;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  ancestral = lower == "euler a";
  if (lower == "euler" || lower == "euler a") return "euler";
  if (lower == "heun") return "heun";
  return "";
}

std::vector<uint64_t> parse_seed_list(const std::string& key, const std::string& value) {
  std::vector<uint64_t> seeds;
  std::size_t i = 0;
  while (i < value.size()) {
    while (i < value.size() && is_space(value[i])) ++i;
    if (i == value.size()) break;
    const std::size_t end = std::min(value.find_first_of(" \t", i), value.size());
    seeds.push_back(parse_number<uint64_t>(key, value.substr(i, end - i)));
    if (seeds.size() > 64) throw Error("generation parameters: " + key + " lists more than 64 seeds");
    i = end;
  }
  if (seeds.empty()) throw Error("generation parameters: " + key + " is empty");
  return seeds;
}

constexpr std::string_view kNegativePrefix = "Negative prompt:";
constexpr std::string_view kHiresUpscaler = "Bicubic";  // the second pass's upscaling of the pictures

// "WxH" as two positive sides.
std::pair<int64_t, int64_t> parse_size(const std::string& key, const std::string& value) {
  const std::size_t x = value.find('x');
  if (x == std::string::npos) throw Error("generation parameters: " + key + " is not WxH: \"" + one_line(value) + "\"");
  const auto w = parse_number<int64_t>(key, value.substr(0, x)), h = parse_number<int64_t>(key, value.substr(x + 1));
  if (w <= 0 || h <= 0) throw Error("generation parameters: " + key + " must be positive, not " + one_line(value));
  return {w, h};
}

}  // namespace

std::string format_parameters(const GenerationParameters& p) {
  std::string out = p.prompt + "\n";
  if (!p.negative.empty()) out += std::string(kNegativePrefix) + " " + p.negative + "\n";
  out += "Steps: " + std::to_string(p.steps);
  out += ", Sampler: " + sampler_label(p.sampler);
  out += ", CFG scale: " + format_number(p.cfg_scale);
  out += ", Seed: " + std::to_string(p.seed);
  const bool two_pass = p.first_width > 0 && p.first_height > 0;
  auto size = [](int64_t w, int64_t h) { return std::to_string(w) + "x" + std::to_string(h); };
  if (two_pass) out += ", Size: " + size(p.first_width, p.first_height);
  else if (p.width > 0 && p.height > 0) out += ", Size: " + size(p.width, p.height);
  if (!p.model.empty()) out += ", Model: " + quote(p.model);
  if (p.strength) out += ", Denoising strength: " + format_number(*p.strength);
  out += ", Shift: " + format_number(p.shift);
  if (p.mask_blur) out += ", Mask blur: " + std::to_string(*p.mask_blur);
  if (two_pass) out += ", Hires resize: " + size(p.width, p.height) + ", Hires upscaler: " + std::string(kHiresUpscaler);
  if (!p.lora_hashes.empty()) {
    std::string list;
    for (const auto& [name, hash] : p.lora_hashes) list += (list.empty() ? "" : ", ") + name + ": " + hash;
    out += ", Lora hashes: " + quote(list);
  }
  if (p.batch_seeds.size() > 1) {
    out += ", Batch size: " + std::to_string(p.batch_seeds.size()) + ", Seeds:";
    for (const uint64_t seed : p.batch_seeds) out += " " + std::to_string(seed);
  }
  return out;
}

GenerationParameters parse_parameters(const std::string& text) {
  UnreadParameters unread;
  GenerationParameters p = parse_parameters(text, unread);
  if (!unread.sampler.empty())
    throw Error("generation parameters: unsupported sampler \"" + one_line(unread.sampler) +
                "\" (LuminaRS samples with Euler or Heun)");
  return p;
}

GenerationParameters parse_parameters(const std::string& text, UnreadParameters& unread) {
  unread = {};
  // 1. Lines (CR LF as LF), without trailing blank lines.
  std::vector<std::string> lines;
  for (std::size_t start = 0;;) {
    const std::size_t nl = text.find('\n', start);
    std::string line = text.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  while (!lines.empty() && trim(lines.back()).empty()) lines.pop_back();
  if (lines.empty()) throw Error("generation parameters are empty");

  // 2. The last line: "Key: value, …" with at least one key LuminaRS knows.
  static const std::vector<std::string> kKnown = {"Steps", "Sampler", "CFG scale", "Seed", "Size", "Model",
                                                  "Denoising strength", "Shift", "Mask blur", "Batch size", "Seeds"};
  const auto pairs = parse_key_values(lines.back());
  const bool known = pairs && std::any_of(pairs->begin(), pairs->end(), [](const auto& kv) {
                       return std::find(kKnown.begin(), kKnown.end(), kv.first) != kKnown.end();
                     });
  if (!known)
    throw Error("generation parameters have no \"Steps: …, Sampler: …\" line (the last line reads \"" +
                one_line(lines.back()) + "\")");
  lines.pop_back();

  // 3. The prompt, then from a "Negative prompt:" line on, the negative prompt.
  GenerationParameters p;
  bool in_negative = false;
  for (std::size_t k = 0; k < lines.size(); ++k) {
    std::string_view part = lines[k];
    if (!in_negative && part.starts_with(kNegativePrefix)) {
      in_negative = true;
      part.remove_prefix(kNegativePrefix.size());
      if (!part.empty() && part.front() == ' ') part.remove_prefix(1);  // as written: "Negative prompt: …"
      p.negative.append(part);
    } else if (in_negative) {
      p.negative.append("\n").append(part);
    } else {
      if (k > 0) p.prompt.push_back('\n');
      p.prompt.append(part);
    }
  }

  // 4. The values; unknown keys are listed in `unread`, missing ones keep their defaults.
  int64_t batch_size = 1;
  std::optional<std::pair<int64_t, int64_t>> hires_size;
  std::optional<double> hires_scale;
  for (const auto& [key, value] : *pairs) {
    if (key == "Steps") {
      p.steps = parse_number<int64_t>(key, value);
      if (p.steps <= 0) throw Error("generation parameters: Steps must be positive, not " + one_line(value));
    } else if (key == "Sampler") {
      const std::string name = sampler_from_label(value, unread.ancestral);
      if (name.empty()) unread.sampler = value;
      else p.sampler = name, unread.sampler.clear();
    } else if (key == "CFG scale") {
      p.cfg_scale = parse_number<double>(key, value);
    } else if (key == "Seed") {
      p.seed = parse_number<uint64_t>(key, value);
    } else if (key == "Size") {
      std::tie(p.width, p.height) = parse_size(key, value);
    } else if (key == "Hires resize") {
      hires_size = parse_size(key, value);
    } else if (key == "Hires upscale") {
      hires_scale = parse_number<double>(key, value);
      if (!(*hires_scale >= 1 && *hires_scale <= 64)) throw Error("generation parameters: Hires upscale must be between 1 and 64, not " + one_line(value));
    } else if (key == "Hires upscaler" && value == kHiresUpscaler) {
      // the upscaling the second pass does here
    } else if (key == "Model") {
      p.model = value;
    } else if (key == "Denoising strength") {
      p.strength = parse_number<double>(key, value);
    } else if (key == "Shift") {
      p.shift = parse_number<double>(key, value);
    } else if (key == "Mask blur") {
      p.mask_blur = parse_number<int64_t>(key, value);
      if (*p.mask_blur < 0 || *p.mask_blur > 256)
        throw Error("generation parameters: Mask blur must be between 0 and 256, not " + one_line(value));
    } else if (key == "Batch size") {
      batch_size = parse_number<int64_t>(key, value);
      if (batch_size < 1 || batch_size > 64) throw Error("generation parameters: Batch size must be between 1 and 64, not " + one_line(value));
    } else if (key == "Seeds") {
      p.batch_seeds = parse_seed_list(key, value);
    } else if (key == "Lora hashes") {
      for (std::size_t start = 0; start < value.size();) {
        std::size_t end = value.find(',', start);
        if (end == std::string::npos) end = value.size();
        const std::string item(trim(std::string_view(value).substr(start, end - start)));
        const std::size_t colon = item.rfind(':');
        if (colon != std::string::npos) p.lora_hashes.emplace_back(std::string(trim(std::string_view(item).substr(0, colon))),
                                                            std::string(trim(std::string_view(item).substr(colon + 1))));
        start = end + 1;
      }
    } else {
      unread.keys.push_back(key);
    }
  }
  // Two passes (AUTOMATIC1111's hires fix): Size was the first pass's.
  if ((hires_size || hires_scale) && p.width > 0 && p.height > 0) {
    p.first_width = p.width;
    p.first_height = p.height;
    if (hires_size) {
      std::tie(p.width, p.height) = *hires_size;
    } else {
      const double w = static_cast<double>(p.width) * *hires_scale, h = static_cast<double>(p.height) * *hires_scale;
      if (w > 1e9 || h > 1e9) throw Error("generation parameters: Size × Hires upscale is too large to draw");
      p.width = std::llround(w);
      p.height = std::llround(h);
    }
    if (p.width <= p.first_width && p.height <= p.first_height) {  // no larger: its first pass was the picture
      p.first_width = p.first_height = 0;
      p.strength.reset();
    }
  }
  if (p.batch_seeds.empty() && batch_size > 1)  // AUTOMATIC1111: picture i of a batch has Seed + i
    for (int64_t i = 0; i < batch_size; ++i) p.batch_seeds.push_back(p.seed + static_cast<uint64_t>(i));
  if (p.batch_seeds.size() == 1) p.batch_seeds.clear();
  return p;
}

}  // namespace luminars
