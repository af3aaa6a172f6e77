#include "serve/api_requests.h"

#include <stb_image.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <random>

#include "core/base64.h"
#include "core/json_fields.h"
#include "core/number_text.h"
#include "core/utf8.h"
#include "pipeline/image_sizes.h"
#include "pipeline/lora_prompt.h"

namespace luminars::serve {

namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// Typed fields: absent or null keeps the default; the wrong type or range names the field.
// ---------------------------------------------------------------------------------------------
const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::optional<int64_t> int_field(const json& body, const char* key, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  int64_t x = 0;
  if (v->is_number_integer()) {
    if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw RequestError(key, std::string(key) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    x = v->get<int64_t>();
  } else if (v->is_number_float() && std::isfinite(v->get<double>()) && v->get<double>() == std::floor(v->get<double>()) &&
             std::abs(v->get<double>()) < 9e15) {
    x = static_cast<int64_t>(v->get<double>());  // 20.0 from clients that write every number as a float
  } else {
    throw RequestError(key, std::string(key) + " must be an integer");
  }
  if (x < lo || x > hi)
    throw RequestError(key, std::string(key) + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                                ", got " + std::to_string(x));
  return x;
}

// lo_open: the range excludes lo.
std::optional<double> number_field(const json& body, const char* key, double lo, double hi, bool lo_open = false) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw RequestError(key, std::string(key) + " must be a number");
  const double x = v->get<double>();
  if (!std::isfinite(x) || (lo_open ? x <= lo : x < lo) || x > hi)
    throw RequestError(key, std::string(key) + " must be in " + (lo_open ? "(" : "[") + format_number(lo) + ", " + format_number(hi) + "], got " + format_number(x));
  return x;
}

std::optional<std::string> string_field(const json& body, const char* key, std::size_t max_bytes) {
  const json* v = field(body, key);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw RequestError(key, std::string(key) + " must be a string");
  auto s = v->get<std::string>();
  if (!is_valid_utf8(s)) throw RequestError(key, std::string(key) + " is not valid UTF-8");
  if (s.size() > max_bytes)
    throw RequestError(key, std::string(key) + " is " + std::to_string(s.size()) + " bytes long; at most " + std::to_string(max_bytes));
  return s;
}

// ---------------------------------------------------------------------------------------------
// Shared pieces of every API.
// ---------------------------------------------------------------------------------------------
// The sides the model was trained at, widened by those of the request's LoRAs (read before the
// size fields): a LoRA trained in aspect-ratio buckets draws its buckets' shapes.
SizeRule trained_rule(const GenerationRequest& r, const ServeLimits& l) {
  if (l.any_size || l.trained_sizes.empty()) return {l.size_multiple, l.max_size, l.trained_sizes};
  try {
    return widen_for_loras({l.size_multiple, l.max_size, l.trained_sizes}, request_loras(r, l.lora_dir));
  } catch (const Error& e) {
    throw RequestError("loras", e.what());
  }
}

// A side the model was not trained at draws repeated, broken patterns: refused unless any_size.
void check_trained(const char* key, int64_t v, const SizeRule& rule, const ServeLimits& l) {
  if (l.any_size) return;
  if (auto error = untrained_size_error(key, v, rule, "the server was started without --any-size"); !error.empty())
    throw RequestError(key, error);
}

void check_side(const char* key, int64_t v, const SizeRule& rule, const ServeLimits& l) {
  if (v < l.size_multiple || v > l.max_size)
    throw RequestError(key, std::string(key) + " must be between " + std::to_string(l.size_multiple) + " and " +
                                std::to_string(l.max_size) + ", got " + std::to_string(v));
  if (v % l.size_multiple != 0)
    throw RequestError(key, std::string(key) + " must be a multiple of " + std::to_string(l.size_multiple) + ", got " + std::to_string(v));
  check_trained(key, v, rule, l);
}

std::string sampler_name(const std::string& key, const std::string& name) {
  std::string s = name;
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (s == "euler" || s == "euler a" || s == "euler_a" || s == "default" || s.empty()) return "euler";
  if (s == "heun") return "heun";
  throw RequestError(key, key + " '" + name + "' is not known (known: euler, heun)");
}

void read_seed(const json& body, const char* key, GenerationRequest& r) {
  // LibTorch's CPU generator keeps the low 32 bits of a seed: larger ones would repeat smaller ones.
  auto seed = int_field(body, key, -1, std::numeric_limits<uint32_t>::max());
  r.seed = !seed || *seed == -1 ? random_seed() : static_cast<uint64_t>(*seed);
}

// The prompt's <lora:NAME:WEIGHT> tags and the "loras" field, resolved in the server's LoRA folder.
void read_loras(const json& body, const char* prompt_key, const ServeLimits& l, GenerationRequest& r) {
  std::vector<PromptLora> tags;
  try {
    strip_lora_tags(r.prompt, &tags);
    for (const auto& t : tags) resolve_lora(t.name, l.lora_dir);
  } catch (const Error& e) {
    throw RequestError(prompt_key, e.what());
  }
  const json* f = field(body, "loras");
  if (!f) return;
  std::vector<std::pair<std::string, json>> items;
  if (f->is_array()) {
    for (const auto& item : *f) {
      if (!item.is_object() || !item.contains("name") || !item["name"].is_string())
        throw RequestError("loras", "loras must be a list of {\"name\": NAME, \"weight\": W}");
      items.emplace_back(item["name"].get<std::string>(), item.contains("weight") ? item["weight"] : json(1.0));
    }
  } else if (f->is_object()) {
    for (auto it = f->begin(); it != f->end(); ++it) items.emplace_back(it.key(), it.value());
  } else {
    throw RequestError("loras", "loras must be a list of {\"name\": NAME, \"weight\": W} or an object NAME: W");
  }
  if (items.size() > 16) throw RequestError("loras", "at most 16 LoRAs a request");
  for (const auto& [name, weight] : items) {
    if (!weight.is_number() || !std::isfinite(weight.get<double>()) || std::abs(weight.get<double>()) > 10)
      throw RequestError("loras", "the weight of LoRA '" + name + "' must be a number from -10 to 10");
    try {
      r.loras.push_back({resolve_lora(name, l.lora_dir), weight.get<double>(), name});
    } catch (const Error& e) {
      throw RequestError("loras", e.what());
    }
  }
}

void read_prompts(const json& body, const char* prompt_key, const char* negative_key, const ServeLimits& l,
                  GenerationRequest& r, bool required) {
  auto prompt = string_field(body, prompt_key, l.max_prompt_bytes);
  if (required && (!prompt || prompt->empty())) throw RequestError(prompt_key, std::string(prompt_key) + " is required");
  r.prompt = prompt.value_or("");
  r.negative = string_field(body, negative_key, l.max_prompt_bytes).value_or("");
  read_loras(body, prompt_key, l, r);
}

// The fields the jobs API and AUTOMATIC1111's share: prompt, negative_prompt, steps, cfg_scale, seed.
void read_sampling(const json& body, const ServeLimits& l, GenerationRequest& r) {
  read_prompts(body, "prompt", "negative_prompt", l, r, /*required=*/false);
  r.steps = int_field(body, "steps", 1, l.max_steps);
  r.cfg_scale = number_field(body, "cfg_scale", 0, 30);
  read_seed(body, "seed", r);
}

void read_size(const json& body, GenerationRequest& r, const ServeLimits& l) {
  const SizeRule rule = trained_rule(r, l);
  if (auto w = int_field(body, "width", 0, 1 << 20)) check_side("width", *w, rule, l), r.width = *w;
  if (auto h = int_field(body, "height", 0, 1 << 20)) check_side("height", *h, rule, l), r.height = *h;
}

// OpenAI's "WxH".
void read_size_string(const json& body, GenerationRequest& r, const ServeLimits& l) {
  auto size = string_field(body, "size", 32);
  if (!size || *size == "auto") return;
  const auto x = size->find('x');
  auto digits = [](const std::string& s) { return !s.empty() && s.size() <= 6 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }); };
  if (x == std::string::npos || !digits(size->substr(0, x)) || !digits(size->substr(x + 1)))
    throw RequestError("size", "size must be WIDTHxHEIGHT, e.g. \"64x64\", got \"" + *size + "\"");
  const int64_t w = std::stoll(size->substr(0, x)), h = std::stoll(size->substr(x + 1));
  const SizeRule rule = trained_rule(r, l);
  check_side("size", w, rule, l);
  check_side("size", h, rule, l);
  r.width = w;
  r.height = h;
}

Image image_field(const std::string& key, const std::string& b64) {
  std::string bytes;
  try {
    bytes = base64_decode(b64, key);
    return decode_image(bytes, key);
  } catch (const RequestError&) {
    throw;
  } catch (const Error& e) {
    throw RequestError(key, e.what());
  }
}

// A mask picture: where it has transparency, transparent = repaint (OpenAI); an opaque one is
// read as painted, white = repaint (AUTOMATIC1111). `invert` swaps the two.
Image mask_image(const std::string& key, const std::string& bytes, bool invert) {
  if (bytes.empty()) throw RequestError(key, key + " is empty");
  Image out;
  try {
    out = decode_image(bytes, key);  // size limits checked there, before decoding
  } catch (const Error& e) {
    throw RequestError(key, e.what());
  }
  int w = 0, h = 0, n = 0;
  stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h, &n);
  if (n == 2 || n == 4) {
    unsigned char* px = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w,
                                              &h, &n, 4);
    if (!px) throw RequestError(key, "cannot decode image " + key + ": " + stbi_failure_reason());
    bool transparent = false;
    for (std::size_t i = 0, np = static_cast<std::size_t>(w) * h; i < np && !transparent; ++i) transparent = px[4 * i + 3] < 255;
    if (transparent)
      for (std::size_t i = 0, np = static_cast<std::size_t>(w) * h; i < np; ++i)
        for (int c = 0; c < 3; ++c) out.rgb[3 * i + c] = static_cast<uint8_t>(255 - px[4 * i + 3]);
    stbi_image_free(px);
  }
  if (invert)
    for (auto& v : out.rgb) v = static_cast<uint8_t>(255 - v);
  return out;
}

// The `mask` field: base64 (or a data URL) of a mask picture.
Image mask_field(const std::string& b64, bool invert) {
  std::string bytes;
  try {
    bytes = base64_decode(b64, "mask");
  } catch (const Error& e) {
    throw RequestError("mask", e.what());
  }
  return mask_image("mask", bytes, invert);
}

void check_mask(const GenerationRequest& r, const char* key) {
  if (r.mask && r.init_image && (r.mask->width != r.init_image->width || r.mask->height != r.init_image->height))
    throw RequestError(key, std::string(key) + " is " + std::to_string(r.mask->width) + "x" + std::to_string(r.mask->height) +
                                " but the image is " + std::to_string(r.init_image->width) + "x" +
                                std::to_string(r.init_image->height) + ": they must agree");
}

// An init image larger than the limits would be generated at its own size: check it like a size.
void check_init_size(const GenerationRequest& r, const char* key, const ServeLimits& l) {
  if (!r.init_image || (r.width && r.height)) return;
  const int64_t w = r.width.value_or(r.init_image->width / l.size_multiple * l.size_multiple);
  const int64_t h = r.height.value_or(r.init_image->height / l.size_multiple * l.size_multiple);
  if (w < l.size_multiple || h < l.size_multiple || w > l.max_size || h > l.max_size)
    throw RequestError(key, std::string(key) + " is " + std::to_string(r.init_image->width) + "x" +
                                std::to_string(r.init_image->height) + ": give width and height between " +
                                std::to_string(l.size_multiple) + " and " + std::to_string(l.max_size) + ", or a smaller image");
  const SizeRule rule = trained_rule(r, l);
  check_trained(key, w, rule, l);
  check_trained(key, h, rule, l);
}

void apply_defaults(GenerationRequest& r, const ServeLimits& l) {
  if (!r.steps) r.steps = l.default_steps;
  if (!r.cfg_scale) r.cfg_scale = l.default_cfg_scale;
  if (!r.sampler) r.sampler = l.default_sampler;
  if (!r.width && !r.init_image) r.width = l.resolution;
  if (!r.height && !r.init_image) r.height = l.resolution;
}

// AUTOMATIC1111's hires fix on txt2img: enable_hr draws width × height first, then the picture at
// hr_resize_x × hr_resize_y (one of them alone: the other in the first pass's proportions; neither:
// hr_scale times the first pass, 2 by default), redrawn at denoising_strength; enable_hr false draws
// one pass; absent, the model folder's default applies.
void read_a1111_hires(const json& body, GenerationRequest& r, const ServeLimits& l) {
  const json* enable = field(body, "enable_hr");
  if (enable && !enable->is_boolean()) throw RequestError("enable_hr", "enable_hr must be true or false");
  if (!enable || !enable->get<bool>()) {
    if (enable) r.hires_from = 0;
    return;
  }
  const int64_t w = *r.width, h = *r.height;
  const double scale = number_field(body, "hr_scale", 1, 8).value_or(2.0);
  const SizeRule rule = trained_rule(r, l);
  const int64_t rx = int_field(body, "hr_resize_x", 0, 1 << 20).value_or(0);
  const int64_t ry = int_field(body, "hr_resize_y", 0, 1 << 20).value_or(0);
  // The factor of a side not given: hr_scale, or the given side's (as AUTOMATIC1111 does).
  const double fx = rx > 0 ? static_cast<double>(rx) / w : ry > 0 ? static_cast<double>(ry) / h : scale;
  const double fy = ry > 0 ? static_cast<double>(ry) / h : fx;
  const char* derived_from = rx > 0 ? "hr_resize_x" : ry > 0 ? "hr_resize_y" : "hr_scale";
  auto final_side = [&](const char* key, int64_t asked, int64_t first, double factor) {
    const int64_t v = asked > 0 ? asked : std::llround(static_cast<double>(first) * factor);
    check_side(asked > 0 ? key : derived_from, v, rule, l);
    return v;
  };
  const int64_t fw = final_side("hr_resize_x", rx, w, fx), fh = final_side("hr_resize_y", ry, h, fy);
  if (fw <= w && fh <= h) throw RequestError("hr_scale", "enable_hr needs a picture larger than width × height");
  r.width = fw;
  r.height = fh;
  r.hires_from = std::max(w, h);
  r.hires_strength = number_field(body, "denoising_strength", 0, 1, /*lo_open=*/true);
  r.hires_any_size = l.any_size;
}

// The jobs API's hires_from (0: one pass) and hires_strength (pipeline/generation.h).
void read_hires(const json& body, GenerationRequest& r, const ServeLimits& l) {
  r.hires_from = int_field(body, "hires_from", 0, l.max_size);
  if (r.hires_from && *r.hires_from > 0) check_side("hires_from", *r.hires_from, trained_rule(r, l), l);
  r.hires_strength = number_field(body, "hires_strength", 0, 1, /*lo_open=*/true);
  r.hires_any_size = l.any_size;
}

void check_response_format(const json& body) {
  auto f = string_field(body, "response_format", 64);
  if (f && *f != "b64_json")
    throw RequestError("response_format", "response_format '" + *f + "' is not supported: this server answers b64_json");
}

}  // namespace

uint64_t random_seed() {
  static std::mt19937_64 gen{std::random_device{}()};
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  return gen() >> 33;  // 31 bits: what every client shows and types back
}

json parse_json_body(const std::string& text) {
  json j;
  try {
    // Nested at most 64 levels, like every file read, and at most kMaxJsonValues values in all:
    // no request has more than a few dozen, and a body of millions would hold hundreds of MiB.
    j = json_fields::parse(text, "the body", kMaxJsonValues);
  } catch (const Error& e) {
    throw RequestError("body", std::string("the body is not valid JSON: ") + e.what());
  }
  if (!j.is_object()) throw RequestError("body", "the body must be a JSON object");
  return j;
}

ImageJob parse_jobs_request(const json& body, const ServeLimits& l) {
  ImageJob job;
  auto& r = job.request;
  read_sampling(body, l, r);
  r.batch = int_field(body, "n", 1, l.max_count).value_or(1);
  read_size(body, r, l);
  if (auto s = string_field(body, "sampler", 64)) r.sampler = sampler_name("sampler", *s);
  if (auto init = string_field(body, "init_image", std::numeric_limits<std::size_t>::max())) {
    r.init_image = image_field("init_image", *init);
    r.strength = number_field(body, "strength", 0, 1, /*lo_open=*/true).value_or(l.default_strength);
  } else if (field(body, "strength")) {
    throw RequestError("strength", "strength needs an init_image");
  }
  if (auto mask = string_field(body, "mask", std::numeric_limits<std::size_t>::max())) {
    if (!r.init_image) throw RequestError("mask", "a mask needs an init_image (inpainting)");
    r.mask = mask_field(*mask, false);
    check_mask(r, "mask");
  }
  r.mask_blur = int_field(body, "mask_blur", 0, 64).value_or(4);
  check_init_size(r, "init_image", l);
  read_hires(body, r, l);
  if (r.init_image && r.hires_from && *r.hires_from > 0) throw RequestError("hires_from", "hires_from draws text-to-image pictures; this request has an init_image");
  apply_defaults(r, l);
  return job;
}

ImageJob parse_openai_generation(const json& body, const ServeLimits& l) {
  ImageJob job;
  auto& r = job.request;
  read_prompts(body, "prompt", "negative_prompt", l, r, /*required=*/true);
  r.batch = int_field(body, "n", 1, l.max_count).value_or(1);
  read_size_string(body, r, l);
  check_response_format(body);
  string_field(body, "model", 256);  // any model name: the server has one
  r.steps = int_field(body, "steps", 1, l.max_steps);
  r.cfg_scale = number_field(body, "guidance", 0, 30);
  if (!r.cfg_scale) r.cfg_scale = number_field(body, "cfg_scale", 0, 30);
  if (auto s = string_field(body, "sampler", 64)) r.sampler = sampler_name("sampler", *s);
  read_seed(body, "seed", r);
  apply_defaults(r, l);
  return job;
}

ImageJob parse_openai_edit(const std::map<std::string, std::string>& fields, const std::map<std::string, std::string>& files,
                           const ServeLimits& l) {
  // The form's text fields as JSON values of their types, so the checks are those of the other APIs.
  json body = json::object();
  for (const auto& [k, v] : fields) {
    if (k == "prompt" || k == "negative_prompt" || k == "size" || k == "response_format" || k == "model" || k == "sampler") {
      body[k] = v;
    } else {
      json parsed = json::parse(v, nullptr, /*allow_exceptions=*/false);
      if (parsed.is_discarded() || !parsed.is_number()) throw RequestError(k, k + " must be a number, got \"" + v.substr(0, 40) + "\"");
      body[k] = parsed;
    }
  }
  ImageJob job = parse_openai_generation(body, l);
  auto& r = job.request;
  auto image = files.find("image");
  if (image == files.end()) image = files.find("image[]");
  if (image == files.end() || image->second.empty()) throw RequestError("image", "image is required (a PNG file)");
  r.init_image = [&] {
    try {
      return decode_image(image->second, "image");
    } catch (const Error& e) {
      throw RequestError("image", e.what());
    }
  }();
  if (auto mask = files.find("mask"); mask != files.end()) {
    r.mask = mask_image("mask", mask->second, false);
  } else {
    // No mask: the image's own transparency says where to edit, as OpenAI reads it.
    int w = 0, h = 0, n = 0;
    if (stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(image->second.data()), static_cast<int>(image->second.size()), &w,
                              &h, &n) &&
        (n == 2 || n == 4)) {
      Image m = mask_image("image", image->second, false);
      if (std::any_of(m.rgb.begin(), m.rgb.end(), [](uint8_t v) { return v > 0; })) r.mask = m;
    }
  }
  check_mask(r, "mask");
  r.strength = number_field(body, "strength", 0, 1, /*lo_open=*/true).value_or(r.mask ? 1.0 : l.default_strength);
  if (!field(body, "size")) r.width = r.height = std::nullopt;  // the image's own size
  check_init_size(r, "image", l);
  return job;
}

ImageJob parse_a1111_request(const json& body, const ServeLimits& l, bool img2img) {
  ImageJob job;
  auto& r = job.request;
  read_sampling(body, l, r);
  const int64_t batch = int_field(body, "batch_size", 1, l.max_count).value_or(1);
  const int64_t iters = int_field(body, "n_iter", 1, l.max_count).value_or(1);
  if (batch * iters > l.max_count)
    throw RequestError("batch_size", "batch_size × n_iter must be at most " + std::to_string(l.max_count));
  r.batch = batch * iters;
  read_size(body, r, l);
  if (auto s = string_field(body, "sampler_name", 64)) r.sampler = sampler_name("sampler_name", *s);
  else if (auto s2 = string_field(body, "sampler_index", 64)) r.sampler = sampler_name("sampler_index", *s2);
  if (img2img) {
    const json* init = field(body, "init_images");
    if (!init || !init->is_array() || init->empty() || !(*init)[0].is_string())
      throw RequestError("init_images", "init_images must be a list with one base64 image");
    r.init_image = image_field("init_images", (*init)[0].get<std::string>());
    r.strength = number_field(body, "denoising_strength", 0, 1, /*lo_open=*/true).value_or(l.default_strength);
    if (auto mask = string_field(body, "mask", std::numeric_limits<std::size_t>::max())) {
      r.mask = mask_field(*mask, int_field(body, "inpainting_mask_invert", 0, 1).value_or(0) == 1);
      check_mask(r, "mask");
    }
    r.mask_blur = int_field(body, "mask_blur", 0, 64).value_or(4);
    // AUTOMATIC1111 always sends width and height (512 by default); they size the output.
    check_init_size(r, "init_images", l);
  }
  apply_defaults(r, l);
  if (!img2img) read_a1111_hires(body, r, l);
  return job;
}

}  // namespace luminars::serve
