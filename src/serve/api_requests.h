// The server's request bodies — its own jobs API, OpenAI's images API and AUTOMATIC1111's web API —
// read into one GenerationRequest, every field checked for type and range. A bad field is a
// RequestError naming it (the server answers 400 with that name); nothing here needs LibTorch.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/error.h"
#include "pipeline/generation.h"

namespace luminars::serve {

// What the server accepts, and the model's defaults for fields left out.
struct ServeLimits {
  int64_t max_steps = 100;
  int64_t max_count = 8;             // n, batch_size
  int64_t max_size = 1024;           // width and height in pixels
  int64_t size_multiple = 8;         // width and height must be multiples (the model's)
  int64_t resolution = 64;           // default width and height
  std::vector<int64_t> trained_sizes;  // sides the model was trained at; others refused (400) unless any_size
  bool any_size = false;             // `serve --any-size`: every valid size accepted
  std::size_t max_prompt_bytes = 4000;
  int64_t default_steps = 12;
  double default_cfg_scale = 4;
  std::string default_sampler = "euler";
  double default_strength = 0.75;
  std::string lora_dir;              // LoRAs requests may name (NAME.safetensors); "" = none
};

class RequestError : public Error {
 public:
  RequestError(std::string field, const std::string& message) : Error(message), field_(std::move(field)) {}
  const std::string& field() const { return field_; }

 private:
  std::string field_;
};

// A checked request: the generation and how the answer is wanted.
struct ImageJob {
  GenerationRequest request;  // request.batch = the number of images
};

// The most values (members, elements, scalars) a request body may hold.
inline constexpr std::size_t kMaxJsonValues = 10000;

// `text` as a JSON object, else RequestError("body", …): not JSON, nested deeper than 64 levels,
// more than kMaxJsonValues values.
nlohmann::json parse_json_body(const std::string& text);

// Every JSON request may name LoRAs of ServeLimits::lora_dir in its prompt (<lora:NAME:WEIGHT>) and
// in a field "loras": [{"name": NAME, "weight": W}, …] or {"NAME": W, …} (weights finite, from
// −10 to 10). Names that are not in the folder are RequestErrors naming the field.

// POST /api/jobs: prompt, negative_prompt, steps, cfg_scale, seed (−1 random), n, width, height,
// sampler, init_image, mask (base64 PNG or data URL), strength, mask_blur.
ImageJob parse_jobs_request(const nlohmann::json& body, const ServeLimits& limits);

// POST /v1/images/generations: prompt, n, size ("WxH"), response_format ("b64_json"), model,
// plus steps, guidance (or cfg_scale), seed, negative_prompt, sampler.
ImageJob parse_openai_generation(const nlohmann::json& body, const ServeLimits& limits);

// POST /v1/images/edits (multipart): files image and mask (transparent = edit, as OpenAI; or
// white = edit on an opaque mask), fields prompt, n, size, response_format, steps, guidance, seed,
// negative_prompt, strength (default 1 with a mask, else the limits' default).
ImageJob parse_openai_edit(const std::map<std::string, std::string>& fields,
                           const std::map<std::string, std::string>& files, const ServeLimits& limits);

// POST /sdapi/v1/txt2img and /sdapi/v1/img2img: prompt, negative_prompt, steps, cfg_scale, width,
// height, seed (−1 random), batch_size (× n_iter), sampler_name, and for img2img init_images,
// mask, denoising_strength, mask_blur, inpainting_mask_invert.
ImageJob parse_a1111_request(const nlohmann::json& body, const ServeLimits& limits, bool img2img);

// A fresh random seed (what seed −1 means).
uint64_t random_seed();

}  // namespace luminars::serve
