// The training cache written by `luminars prepare` and read by the trainer (DESIGN §5): VAE
// posterior mean and std of every image (already in denoiser space: (z − shift)·scale) and the
// text encoder's (ctx, pooled) of every caption, in sharded safetensors, plus the empty prompt's
// embedding for caption dropout and a few fixed prompts for sample grids.
//   CACHE/cache.json                  what is where (CacheInfo), written last
// With aspect-ratio buckets (prepare --buckets) each shard holds the pictures of one bucket, so
// shards' h and w differ; cache.json lists the buckets and says format_version 2.
//   CACHE/shard-00000.safetensors     mean [n,C,h,w], std [n,C,h,w], ctx [m,L,D] (F16), pooled [m,D] (F16),
//                                     caption_item [m] (image index within the shard); metadata "paths"
//                                     and "captions" (the texts of the m captions; absent in older caches)
//   CACHE/empty.safetensors           ctx [1,L,D], pooled [1,D] for ""
//   CACHE/samples.safetensors         ctx [k,L,D], pooled [k,D]; metadata "prompts" (JSON list)
#pragma once
#include <torch/torch.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "data/aspect_buckets.h"

namespace luminars {

// cache.json's format: 2 when it lists aspect-ratio buckets (older builds refuse it, naming the
// file, rather than misread its shards), else 1.
inline constexpr int64_t kCacheFormatVersion = 2;

struct CacheInfo {
  int64_t resolution = 256;
  int64_t latent_channels = 16, latent_size = 32;
  int64_t text_dim = 768, context_length = 77;
  std::string vae, text_encoder, tokenizer;  // folders the cache was made with (absolute)
  bool penultimate = false;                  // ctx is CLIP's penultimate layer (prepare --penultimate)
  std::string key;                           // fingerprint of everything the cache was made from
  double scaling_factor = 1.0, shift_factor = 0.0;
  std::vector<std::string> shards;
  int64_t items = 0, captions = 0;
  // Pixel sizes of the aspect-ratio buckets (data/aspect_buckets.h); empty: every picture square.
  std::vector<BucketSize> buckets;
  // Pixels per latent pixel (the VAE's downscale factor).
  int64_t latent_factor() const { return resolution / std::max<int64_t>(1, latent_size); }

  std::string to_json() const;
  static CacheInfo from_json(const std::string& text, const std::string& source);
  // DIR/cache.json alone; throws naming the folder when it is not a complete cache.
  static CacheInfo load(const std::string& dir);
};

inline constexpr const char* kCacheIndex = "cache.json";
std::string shard_name(int64_t index);

// Writers (each file atomic; cache.json is written last by `luminars prepare`).
struct CacheShard {
  torch::Tensor mean, std;            // [n,C,h,w] in denoiser space
  torch::Tensor ctx, pooled;          // [m,L,D], [m,D] (stored as F16)
  torch::Tensor caption_item;         // [m] int64: image index within the shard
  std::vector<std::string> paths;     // [n] source images
  std::vector<std::string> captions;  // [m] the captions' texts (metadata "captions"; LoRAs of the text encoder train on them)
};
// `key` (a fingerprint of the encoders, options, images and captions the shard was made from) lets
// a resumed prepare tell a finished shard of the same data from a stale one.
void write_cache_shard(const std::string& dir, int64_t index, const CacheShard& shard, const std::string& key = "");
// The key a shard file was written with; nullopt when it is missing or unreadable.
std::optional<std::string> cache_shard_key(const std::string& file);
void write_cache_index(const std::string& dir, const CacheInfo& info);

// A fingerprint of what the cache at DIR holds, not of where it is: cache.json without the
// encoders' folder names, each shard's key (written by `luminars prepare`; a shard without one
// counts with all its bytes) and the empty prompt's embedding. A moved or copied cache keeps it;
// a cache of other images, captions, encoders or options does not.
std::string cache_content_key(const std::string& dir);
// empty.safetensors / samples.safetensors: ctx [k,L,D], pooled [k,D] and the prompts.
void write_cache_prompts(const std::string& path, const torch::Tensor& ctx, const torch::Tensor& pooled,
                         const std::vector<std::string>& prompts);

// Rows of one tensor of the cache, shard after shard: each shard's part stays in its file's memory
// map, and a batch reads only its own rows. So loading a cache reads no latents at all, ranks of a
// data-parallel run on one machine share the page cache, and each reads only the rows of its part
// of every batch: over an epoch, ranks read disjoint parts of the cache.
class ShardedRows {
 public:
  // [n, ...]; the row shapes of all parts agree unless `mixed_shapes` (aspect buckets: a gather
  // must then name rows of one shape).
  explicit ShardedRows(bool mixed_shapes = false) : mixed_shapes_(mixed_shapes) {}
  void append(torch::Tensor part);
  int64_t size() const { return ends_.empty() ? 0 : ends_.back(); }
  std::vector<int64_t> row_shape() const;
  // Rows `index` (each in [0, size())) as one new [k, ...] tensor of `dtype`.
  torch::Tensor gather(const std::vector<int64_t>& index, torch::Dtype dtype) const;
  torch::Tensor row(int64_t i) const;  // a view, as stored

 private:
  bool mixed_shapes_;
  std::vector<torch::Tensor> parts_;
  std::vector<int64_t> ends_;  // cumulative row counts
};

// The cache, images indexed 0..N−1 across shards. Latents (float32) and text embeddings (F16,
// converted per batch) are read in place from the shards' memory maps; what is in memory is the
// caption index, the paths and the small prompt files.
struct LatentCache {
  CacheInfo info;
  ShardedRows mean, std;                          // [N,C,h,w]
  ShardedRows ctx, pooled;                        // [M,L,D], [M,D]
  std::vector<std::vector<int64_t>> captions_of;  // image -> caption rows (may be empty)
  std::vector<std::string> paths;                 // image -> source file
  std::vector<std::string> caption_text;          // caption row -> its text; empty when a shard lacks them
  std::vector<int64_t> bucket_of;                 // image -> index into info.buckets (0 without buckets)
  torch::Tensor empty_ctx, empty_pooled;          // [1,L,D], [1,D]
  torch::Tensor sample_ctx, sample_pooled;        // [k,L,D], [k,D] (k may be 0)
  std::vector<std::string> sample_prompts;

  int64_t size() const { return mean.size(); }
  int64_t bucket_count() const { return std::max<int64_t>(1, static_cast<int64_t>(info.buckets.size())); }
  // Throws naming the folder or file at fault (missing cache.json, missing shard, shapes).
  static LatentCache load(const std::string& dir);
};

}  // namespace luminars
