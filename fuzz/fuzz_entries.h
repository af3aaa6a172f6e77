// The bodies of the fuzz targets (fuzz/fuzz_<name>.cpp), shared with tests/test_fuzz_regressions.cpp
// so that every input that once broke a parser is replayed by the ordinary test binary, without
// libFuzzer. Each entry runs one input through the parsers of one kind of untrusted input;
// luminars::Error is the expected outcome of bad input. Anything else escaping (std::logic_error
// from a broken invariant below, another exception type), a crash or a sanitizer report is a finding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

namespace luminars::fuzz {

// safetensors::parse over the bytes themselves, every tensor's bytes touched; the denoiser config
// of its metadata; the same bytes through safetensors::Reader from a file; written back with
// safetensors::write and read again.
void safetensors_entry(const uint8_t* data, std::size_t size);

// The first byte picks the parser of the rest (low four bits modulo 3, so '0', '1', '2' read well in
// seed files): 0 the denoiser config JSON (Config::from_json), 1 the VAE config.json
// (VaeConfig::from_json), 2 a model folder's luminars.json (ModelFolder::load of a scratch folder).
void configs_entry(const uint8_t* data, std::size_t size);

// The first byte (low four bits modulo 4): 0, 1, 2 encode the rest as text with a small fixed
// vocabulary (padded and truncated; truncated; neither), then decode those ids and the rest's
// bytes read as 16-bit ids; 3 splits the rest on
// kPartSeparator into vocab.json, merges.txt, tokenizer_config.json and special_tokens_map.json
// (absent parts: no file), loads that folder and encodes a fixed text with it.
void tokenizer_entry(const uint8_t* data, std::size_t size);

// decode_image of the bytes (small pictures then fitted with resize_to_cover and resize_and_crop),
// png_text_chunks (the chunks written back through encode_png and read again), parse_parameters
// of every `parameters` chunk and of the bytes as text.
void image_entry(const uint8_t* data, std::size_t size);

// The server's request parsing with ServeLimits defaults, size_multiple 32 and max_size 256. The
// first byte (low four bits modulo 5): 0 POST /api/jobs, 1 /v1/images/generations,
// 2 /sdapi/v1/txt2img, 3 /sdapi/v1/img2img (the rest a JSON body), 4 /v1/images/edits: the rest
// split on kPartSeparator into "name=value" form fields and "@name=bytes" files.
// Defined in fuzz_entries_serve.cpp (the test binary has it only where the server is built).
void requests_entry(const uint8_t* data, std::size_t size);

// The server's whole HTTP path on raw bytes, as one connection would send them (request lines,
// headers, Content-Length or chunked bodies, gzip/deflate, multipart, pipelining), answered by an
// ImageServer with a stand-in generator (a grey picture). The first byte's low bit picks a server
// without or with an API key ("fuzz-key"); the rest is the connection's bytes. Every answer must be
// well-formed HTTP/1.1 with a status below 500 and, for JSON, valid UTF-8 JSON.
// Defined in fuzz_entries_serve.cpp.
void http_entry(const uint8_t* data, std::size_t size);

// Separates the parts of one input where an entry needs several (files of a folder, form fields).
inline constexpr std::string_view kPartSeparator = "\n%%\n";
std::vector<std::string_view> split_parts(std::string_view input);

}  // namespace luminars::fuzz
