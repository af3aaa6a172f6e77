// The generation pipeline over a model folder: encode the prompt (CLIP text encoder), denoise
// (LuminaRS and a flow sampler), decode (VAE), in three steps a caller can run one by one. A server
// keeps every part loaded and pays loading once; the CLI's low-memory mode loads each part when it
// is needed and releases it after, so peak memory is the largest part, not their sum.
//   luminars::Pipeline pipe({.model_dir = "models/emoji"});
//   auto out = pipe.generate({.prompt = "a red heart, noto style", .seed = 1});
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pipeline/generation.h"
#include "pipeline/image_sizes.h"
#include "pipeline/model_folder.h"

namespace luminars {

struct PipelineOptions {
  std::string model_dir;                               // a model folder (luminars.json)
  std::string denoiser, text_encoder, tokenizer, vae;  // overrides of the folder's paths
  std::string device = "cpu";                          // "cpu", "cuda", "cuda:1", "auto"
  bool bf16 = true;         // bf16 autocast on CUDA and on CPUs with native bf16; float32 elsewhere
  bool keep_loaded = true;  // false: each part loaded when needed and released after (low memory)
  int64_t vae_tile = 320;   // decode pictures larger than this in overlapping tiles; 0 = never
  // Weights stored in q8_0/q4_0 stay packed in memory and each block is dequantized only while it
  // runs (core/streamed_weights.h): with keep_loaded = false, peak memory is about one component's
  // packed weights, one block in float32 and the activations (`luminars generate --low-memory`).
  bool low_memory = false;
  bool progress = false;    // a progress bar on stderr while sampling
  // LoRAs: <lora:NAME:WEIGHT> in a prompt reads DIR/NAME.safetensors; "" = the prompt syntax is refused.
  std::string lora_dir;
  // Apply LoRAs as a precomputed working copy of each adapted layer's weight (W + Σ scale·B·A) instead
  // of unmerged low-rank products at every step. The base weights stay untouched either way.
  bool fuse_loras = false;
};

// The prompt's conditioning, opaque outside the pipeline (tensors on the pipeline's device).
struct PromptEncoding;
// Latents after denoising, opaque outside the pipeline.
struct Latents;

class Pipeline {
 public:
  // Reads the folder's configs and checks the parts agree; with keep_loaded, loads every part.
  explicit Pipeline(PipelineOptions options);
  ~Pipeline();
  Pipeline(const Pipeline&) = delete;
  Pipeline& operator=(const Pipeline&) = delete;

  // The three steps of generate(), for callers that want them apart (request checked in each).
  std::shared_ptr<PromptEncoding> encode_prompt(const GenerationRequest& request);
  std::shared_ptr<Latents> denoise(const GenerationRequest& request, const PromptEncoding& prompt);
  Generation decode(const GenerationRequest& request, const Latents& latents);

  // encode_prompt → denoise → decode. Throws luminars::Error naming the field at fault, or
  // Cancelled when request.cancelled() said so.
  Generation generate(const GenerationRequest& request);

  const ModelFolder& folder() const;
  std::string model_name() const;  // the folder's name
  int64_t resolution() const;      // the image side the model was trained at
  int64_t size_multiple() const;   // width and height must be multiples of this (VAE × denoiser levels)
  SizeRule size_rule() const;      // that multiple, the largest side and the trained sides
  // The same with the sides `request`'s LoRAs were trained at (aspect-ratio buckets) added.
  SizeRule size_rule(const GenerationRequest& request) const;
  // The width and height `request` would be drawn at (checked as generate() checks it).
  std::pair<int64_t, int64_t> output_size(const GenerationRequest& request) const;
  // The LoRAs `request` applies: its prompt's tags (resolved in lora_dir) then request.loras, each
  // with its name; throws naming a tag or file that is missing or malformed.
  std::vector<LoraSpec> loras_of(const GenerationRequest& request) const;

 private:
  struct Parts;
  std::unique_ptr<Parts> parts_;
};

}  // namespace luminars
