// The fuzz targets' bodies for files a user is handed: safetensors, configs, tokenizer folders,
// images and their `parameters` text. No LibTorch (see fuzz_entries.h).
#include "fuzz_entries.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>

#include "core/error.h"
#include "core/image.h"
#include "core/safetensors.h"
#include "model/config.h"
#include "pipeline/model_folder.h"
#include "pipeline/parameters.h"
#include "text/clip_tokenizer.h"
#include "vae/vae_config.h"

namespace luminars::fuzz {

namespace fs = std::filesystem;

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers: invariants, expected errors, a scratch folder for the parsers that read files
// ---------------------------------------------------------------------------------------------

// A broken invariant is a finding: std::logic_error is not luminars::Error, so it escapes.
void expect(bool ok, const std::string& what) {
  if (!ok) throw std::logic_error("fuzz invariant broken: " + what);
}

// Runs one parser; its luminars::Error is the expected answer to bad input, so the next parser
// of the same input still runs.
void run_expecting_errors(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const Error&) {
  }
}

// This process's own folder (in /dev/shm when there is one: the fuzzers write files on every
// input), removed at exit. $LUMINARS_FUZZ_TMP overrides the parent folder.
const fs::path& scratch_dir() {
  struct Scratch {
    fs::path path;
    Scratch() {
      const char* env = std::getenv("LUMINARS_FUZZ_TMP");
      const fs::path parent = env && *env ? fs::path(env) : fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
      path = parent / ("luminars-fuzz-" + std::to_string(::getpid()));
      fs::create_directories(path);
    }
    ~Scratch() {
      std::error_code ec;
      fs::remove_all(path, ec);
    }
  };
  static const Scratch scratch;
  return scratch.path;
}

void write_bytes(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error("fuzz harness: cannot write " + path.string());  // not a finding of the parser, but loud
}

std::string_view as_text(const uint8_t* data, std::size_t size) { return {reinterpret_cast<const char*>(data), size}; }

// ---------------------------------------------------------------------------------------------
// Tokenizer: a small fixed vocabulary built in code
// ---------------------------------------------------------------------------------------------

// Every byte symbol alone and as a word end, then each word below built up left to right, one
// merge per step ("h e", "he a", "hea r", "hear t</w>"), and CLIP's two special tokens; context
// length 32, so truncation is common.
const ClipTokenizer& fixed_tokenizer() {
  static const ClipTokenizer tokenizer = [] {
    static const char* kWords[] = {"a",     "red",    "heart",  "noto",    "style",  "blue",  "twemoji", "purple",
                                   "green", "apple",  "fluent", "flat",    "cat",    "face",  "tiger",   "rocket",
                                   "grinning", "3d",  "openmoji", "in",   "the",    "snow",  "fox",     "ukiyo",
                                   "'s",    "café",   "naïve",  "日本",    "ß",      "emoji", ",",       "!!"};
    const auto& symbols = clip_byte_symbols();
    nlohmann::ordered_json vocab = nlohmann::ordered_json::object();
    int64_t next_id = 0;
    auto add = [&](const std::string& token) {
      if (!vocab.contains(token)) vocab[token] = next_id++;
    };
    for (uint8_t b : clip_byte_order()) add(symbols[b]);
    for (uint8_t b : clip_byte_order()) add(symbols[b] + "</w>");
    std::string merges = "#version: 0.2\n";
    std::set<std::string> seen;
    for (const char* word : kWords) {
      std::vector<std::string> parts;
      for (unsigned char c : std::string(word)) parts.push_back(symbols[c]);
      parts.back() += "</w>";
      std::string left = parts[0];
      for (std::size_t k = 1; k < parts.size(); ++k) {
        const std::string merge = left + " " + parts[k];
        if (seen.insert(merge).second) merges += merge + "\n";
        left += parts[k];
        add(left);
      }
    }
    add("<|startoftext|>");
    add("<|endoftext|>");
    const fs::path dir = scratch_dir() / "fixed-tokenizer";
    fs::create_directories(dir);
    write_bytes(dir / "vocab.json", vocab.dump());
    write_bytes(dir / "merges.txt", merges);
    write_bytes(dir / "tokenizer_config.json", R"({"model_max_length": 32})");
    return ClipTokenizer::from_dir(dir.string());
  }();
  return tokenizer;
}

// The documented shape of encode's ids, decode and id_to_token of them, and the same ids again
// (the second time from the BPE cache).
void check_encoding(const ClipTokenizer& tok, const std::string& text, bool pad, bool truncate) {
  const auto ids = tok.encode(text, pad, truncate);
  const auto n = static_cast<int64_t>(ids.size());
  expect(n >= 2 && ids.front() == tok.bos_id, "encode starts with BOS");
  if (pad) expect(n == tok.context_length, "padded encodings hold context_length ids");
  if (truncate) expect(n <= tok.context_length, "truncated encodings hold at most context_length ids");
  if (!pad) expect(ids.back() == tok.eos_id, "unpadded encodings end with EOS");
  for (int64_t id : ids) tok.id_to_token(id);
  tok.decode(ids);
  expect(tok.encode(text, pad, truncate) == ids, "encoding the same text twice gives the same ids");
}

// ---------------------------------------------------------------------------------------------
// Parameters: format_parameters reads back as what it wrote
// ---------------------------------------------------------------------------------------------

// `s` with one CR dropped before each LF, as parse_parameters reads line ends.
std::string crlf_to_lf(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i)
    if (!(s[i] == '\r' && i + 1 < s.size() && s[i + 1] == '\n')) out.push_back(s[i]);
  return out;
}

// What format_parameters writes, parse_parameters reads back to the same text; the only change
// allowed is its CR LF reading (a prompt line that ends in CR loses it: "a\r" + "\n" reads as "a").
void check_parameters(const std::string& text) {
  const std::string once = format_parameters(parse_parameters(text));
  std::string twice;
  try {
    twice = format_parameters(parse_parameters(once));
  } catch (const Error& e) {
    throw std::logic_error(std::string("fuzz invariant broken: format_parameters wrote what parse_parameters refuses: ") + e.what());
  }
  expect(twice == once || twice == crlf_to_lf(once), "format_parameters(parse_parameters(text)) reads back unchanged");
}

// The text chunks written into a 1×1 PNG with encode_png read back the same (when encode_png
// accepts them: keywords it refuses are luminars::Error).
void check_text_chunks_round_trip(const std::map<std::string, std::string>& chunks) {
  if (chunks.empty()) return;
  Image pixel;
  pixel.width = pixel.height = 1;
  pixel.rgb = {1, 2, 3};
  const std::vector<std::pair<std::string, std::string>> text(chunks.begin(), chunks.end());
  const std::string png = encode_png(pixel, text);
  expect(png_text_chunks(png) == chunks, "text chunks read back as encode_png wrote them");
}

}  // namespace

std::vector<std::string_view> split_parts(std::string_view input) {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const std::size_t at = input.find(kPartSeparator, start);
    parts.push_back(input.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start));
    if (at == std::string_view::npos) return parts;
    start = at + kPartSeparator.size();
  }
}

// ---------------------------------------------------------------------------------------------
// Entries
// ---------------------------------------------------------------------------------------------

void safetensors_entry(const uint8_t* data, std::size_t size) {
  // 1. The header over the input's own bytes, so ASan sees any read past them.
  const safetensors::Header header = safetensors::parse(data, size, "fuzz input");
  unsigned checksum = 0;
  for (const auto& t : header.tensors) {
    expect(t.data >= data + 8 && t.nbytes <= size && t.data <= data + size - t.nbytes, "tensor '" + t.name + "' lies in the input");
    expect(static_cast<uint64_t>(t.numel()) * safetensors::dtype_size(t.dtype) == t.nbytes, "tensor '" + t.name + "' size");
    for (std::size_t i = 0; i < t.nbytes; ++i) checksum += t.data[i];
    safetensors::dtype_name(t.dtype);
  }
  (void)checksum;
  // 2. The denoiser checkpoint's config travels in the metadata (model/checkpoint.h's kConfigMetadataKey).
  if (auto it = header.metadata.find("luminars_config"); it != header.metadata.end())
    run_expecting_errors([&] { Config::from_json(it->second); });
  // 3. The same bytes from a file, through the memory map.
  const fs::path path = scratch_dir() / "input.safetensors";
  write_bytes(path, as_text(data, size));
  const safetensors::Reader reader(path.string());
  expect(reader.tensors().size() == header.tensors.size(), "Reader and parse agree");
  for (const auto& t : header.tensors) {
    expect(reader.at(t.name).nbytes == t.nbytes, "Reader finds tensor '" + t.name + "'");
    reader.release(reader.at(t.name));
  }
  expect(!reader.contains("no such tensor in any fuzz input \x01"), "Reader finds no made-up tensor");
  // 4. Written back by safetensors::write, the tensors and metadata read back unchanged.
  std::vector<safetensors::TensorBlob> blobs;
  for (const auto& t : header.tensors) blobs.push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
  const fs::path copy = scratch_dir() / "copy.safetensors";
  safetensors::write(copy.string(), blobs, header.metadata);
  const safetensors::Reader back(copy.string());
  expect(back.metadata() == header.metadata && back.tensors().size() == header.tensors.size(), "write keeps the metadata and tensors");
  for (const auto& t : header.tensors) {
    const auto& b = back.at(t.name);
    expect(b.dtype == t.dtype && b.shape == t.shape && b.nbytes == t.nbytes && std::equal(t.data, t.data + t.nbytes, b.data),
           "write keeps tensor '" + t.name + "'");
  }
}

void configs_entry(const uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const std::string text(as_text(data + 1, size - 1));
  switch ((data[0] & 15) % 3) {
    case 0: {  // the denoiser's config (a checkpoint's metadata, `train --config`)
      const Config c = Config::from_json(text);
      expect(Config::from_json(c.to_json()) == c, "Config reads back what to_json wrote");
      expect(c.size_multiple() >= 1, "Config::size_multiple is positive");
      break;
    }
    case 1: {  // a VAE folder's config.json
      const VaeConfig c = VaeConfig::from_json(text);
      expect(VaeConfig::from_json(c.to_json()) == c, "VaeConfig reads back what to_json wrote");
      expect(c.downscale_factor() >= 1, "VaeConfig::downscale_factor is positive");
      break;
    }
    default: {  // a model folder's luminars.json
      const fs::path dir = scratch_dir() / "model";
      fs::create_directories(dir);
      write_bytes(dir / "luminars.json", text);
      const ModelFolder m = ModelFolder::load(dir.string());
      for (const auto& component : {m.denoiser, m.text_encoder, m.tokenizer, m.vae}) m.path_of(component);
      break;
    }
  }
}

void tokenizer_entry(const uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const std::string_view rest = as_text(data + 1, size - 1);
  const int mode = (data[0] & 15) % 4;
  if (mode < 3) {
    const ClipTokenizer& tok = fixed_tokenizer();
    const std::string text(rest);
    check_encoding(tok, text, /*pad=*/mode == 0, /*truncate=*/mode <= 1);
    for (const auto& piece : tok.pre_tokenize(text)) expect(!piece.empty(), "pre_tokenize gives no empty piece");
    // The same bytes as ids, unknown ones included (decode skips them; id_to_token names them).
    std::vector<int64_t> ids(rest.size() / 2);
    for (std::size_t i = 0; i < ids.size(); ++i)
      ids[i] = static_cast<int16_t>(static_cast<uint8_t>(rest[2 * i]) | static_cast<uint8_t>(rest[2 * i + 1]) << 8);
    tok.decode(ids);
    for (int64_t id : ids) expect(!tok.id_to_token(id).empty(), "id_to_token names every id");
    return;
  }
  // A tokenizer folder of fuzzed files.
  static const char* kFiles[] = {"vocab.json", "merges.txt", "tokenizer_config.json", "special_tokens_map.json"};
  const auto parts = split_parts(rest);
  const fs::path dir = scratch_dir() / "tokenizer";
  fs::create_directories(dir);
  for (std::size_t i = 0; i < std::size(kFiles); ++i) {
    if (i < parts.size()) write_bytes(dir / kFiles[i], parts[i]);
    else fs::remove(dir / kFiles[i]);
  }
  const ClipTokenizer tok = ClipTokenizer::from_dir(dir.string());
  check_encoding(tok, "A red heart, noto style! <|endoftext|> 12 café's naïve 日本", /*pad=*/true, /*truncate=*/true);
  check_encoding(tok, "a fox in the snow, ukiyo-e", /*pad=*/false, /*truncate=*/false);
}

void image_entry(const uint8_t* data, std::size_t size) {
  const std::string_view bytes = as_text(data, size);
  // 1. The picture (uploads, init images, training folders).
  run_expecting_errors([&] {
    const Image image = decode_image(bytes, "fuzz input");
    expect(image.width > 0 && image.height > 0 &&
               image.rgb.size() == static_cast<std::size_t>(image.width) * image.height * 3,
           "decode_image gives width × height × 3 bytes");
    // Fitted to a generation's size, as init images are (small pictures only: this is not a parser).
    if (static_cast<int64_t>(image.width) * image.height <= 1 << 16) {
      const Image wide = resize_to_cover(image, 64, 32), square = resize_and_crop(image, 32);
      expect(wide.width == 64 && wide.height == 32 && wide.rgb.size() == 64 * 32 * 3, "resize_to_cover gives 64x32");
      expect(square.width == 32 && square.height == 32 && square.rgb.size() == 32 * 32 * 3, "resize_and_crop gives 32x32");
    }
  });
  // 2. Its text chunks (`generate --from-png`), written back and read again, and the parameters.
  run_expecting_errors([&] {
    const auto chunks = png_text_chunks(bytes);
    for (const auto& chunk : chunks)
      if (chunk.first == "parameters") run_expecting_errors([&] { check_parameters(chunk.second); });
    check_text_chunks_round_trip(chunks);
  });
  // 3. The bytes as a parameters text themselves.
  run_expecting_errors([&] { check_parameters(std::string(bytes)); });
}

}  // namespace luminars::fuzz
