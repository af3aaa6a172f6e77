#include "pipeline/prepare.h"

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>

#include "core/error.h"
#include "core/files.h"
#include "core/image_tensor.h"
#include "core/progress.h"
#include "core/safetensors.h"
#include "text/text_encoder.h"
#include "data/dataset.h"
#include "train/latent_cache.h"
#include "vae/vae.h"

namespace luminars {

namespace fs = std::filesystem;

namespace {

struct ShardCounts {
  int64_t images, captions;
};

// The counts of a finished shard made with exactly this key; nothing when the shard is missing,
// unreadable or made from other inputs (then it is made again).
std::optional<ShardCounts> finished_shard(const std::string& file, const std::string& key) {
  if (cache_shard_key(file) != key) return std::nullopt;
  try {
    safetensors::Reader r(file);
    return ShardCounts{r.at("mean").shape[0], r.at("ctx").shape[0]};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

// What every shard depends on: the encoders' and tokenizer's files (names, sizes, modification
// times), the caption column and the options that change latents or embeddings.
uint64_t components_key(const PrepareOptions& o) {
  uint64_t h = fnv1a("luminars-prepare-v2");
  for (const auto& dir : {o.vae, o.text_encoder, o.tokenizer}) h = fnv1a(hex64(folder_fingerprint(dir)), h);
  std::string options = "resolution=" + std::to_string(o.resolution) + " random_crop=" + std::to_string(o.random_crop) +
                        " flip=" + std::to_string(o.flip) + " penultimate=" + std::to_string(o.penultimate) +
                        " caption_column=" + o.caption_column + (o.trigger.empty() ? "" : " trigger=" + o.trigger) +
                        (o.buckets ? " buckets=" + std::to_string(o.bucket_step) : "");
  for (int64_t side : o.extra_sizes) options += " extra_size=" + std::to_string(side);
  return fnv1a(options, h);
}

// One picture at one size: the unit a shard is cut from.
struct Slot {
  std::size_t item;    // index into the data set
  std::size_t bucket;  // index into the sizes
};

// A shard's key: the components, its bucket (with buckets or extra sizes) and, per image, its
// path, size, modification time and captions.
std::string shard_key(uint64_t components, const Dataset& data, const std::vector<Slot>& slots, int64_t start,
                      int64_t end, const std::optional<BucketSize>& bucket) {
  uint64_t h = components;
  if (bucket) h = fnv1a(std::to_string(bucket->width) + "x" + std::to_string(bucket->height) + "\n", h);
  for (int64_t i = start; i < end; ++i) {
    const auto& item = data.items[slots[static_cast<std::size_t>(i)].item];
    h = fnv1a(item.path + "\n" + file_stamp(item.path) + "\n", h);
    for (const auto& c : item.captions) h = fnv1a(c + "\n", h);
    h = fnv1a("\x1e", h);
  }
  return hex64(h);
}

// The square sizes of a multi-size cache: the resolution first, then the extra sizes in order;
// throws naming a size that is out of range, repeated or not a multiple of the VAE's factor.
std::vector<BucketSize> square_sizes(const PrepareOptions& o, int64_t factor) {
  std::vector<BucketSize> sizes{{o.resolution, o.resolution}};
  for (int64_t side : o.extra_sizes) {
    if (side < 16 || side > 4096) throw Error("extra size " + std::to_string(side) + ": must be between 16 and 4096");
    if (side % factor != 0)
      throw Error("extra size " + std::to_string(side) + " is not a multiple of the VAE's factor " + std::to_string(factor));
    const BucketSize size{side, side};
    if (std::find(sizes.begin(), sizes.end(), size) != sizes.end())
      throw Error("extra size " + std::to_string(side) + " is given twice (or equals the resolution)");
    sizes.push_back(size);
  }
  return sizes;
}

}  // namespace

PrepareSummary prepare(const PrepareOptions& o) {
  // 1. Check inputs.
  if (o.resolution < 16 || o.resolution > 4096) throw Error("resolution must be between 16 and 4096, got " + std::to_string(o.resolution));
  if (o.shard_size < 1 || o.batch_size < 1) throw Error("shard size and batch size must be at least 1");
  if (o.buckets && (o.bucket_step < 8 || o.resolution % o.bucket_step != 0))
    throw Error("bucket step " + std::to_string(o.bucket_step) + ": must be at least 8 and divide the resolution " +
                std::to_string(o.resolution));
  if (o.buckets && !o.extra_sizes.empty()) throw Error("aspect-ratio buckets and extra sizes cannot be combined: choose one");
  Dataset data = Dataset::scan(o.data_dir, {o.caption_column});
  if (!o.trigger.empty())
    for (auto& item : data.items) {
      for (auto& c : item.captions)
        if (c.find(o.trigger) == std::string::npos) c = o.trigger + (c.empty() ? "" : ", " + c);
      if (item.captions.empty()) item.captions.push_back(o.trigger);
    }
  if (o.progress) std::fprintf(stderr, "%s\n", data.summary().c_str());

  // 2. The frozen encoders.
  VaeLoadOptions vo;
  vo.part = VaePart::Encoder;  // the decoder is not needed to prepare data
  vo.device = o.device;
  auto vae = load_vae(o.vae, vo);
  if (o.resolution % vae->downscale_factor() != 0)
    throw Error("resolution " + std::to_string(o.resolution) + " is not a multiple of the VAE's factor " +
                std::to_string(vae->downscale_factor()));
  auto text = TextEncoder::load(o.text_encoder, o.tokenizer, o.device);
  torch::NoGradGuard no_grad;
  fs::create_directories(o.out_dir);

  CacheInfo info;
  info.resolution = o.resolution;
  info.latent_channels = vae->latent_channels();
  info.latent_size = o.resolution / vae->downscale_factor();
  info.text_dim = text.hidden_size();
  info.context_length = text.context_length();
  info.vae = fs::absolute(o.vae).lexically_normal().string();
  info.text_encoder = fs::absolute(o.text_encoder).lexically_normal().string();
  info.tokenizer = fs::absolute(o.tokenizer).lexically_normal().string();
  info.scaling_factor = vae->scaling_factor();
  info.shift_factor = vae->shift_factor();
  info.penultimate = o.penultimate;
  const uint64_t components = components_key(o);
  info.key = hex64(components);
  if (o.buckets) {
    if (o.bucket_step % vae->downscale_factor() != 0)
      throw Error("bucket step " + std::to_string(o.bucket_step) + " is not a multiple of the VAE's factor " +
                  std::to_string(vae->downscale_factor()));
    info.buckets = aspect_buckets(o.resolution, o.bucket_step);
  }
  if (!o.extra_sizes.empty()) info.buckets = square_sizes(o, vae->downscale_factor());
  const bool multi = !info.buckets.empty();  // shards of several sizes: each records its bucket
  // Shards hold the pictures of one bucket each: with aspect buckets the pictures in bucket order,
  // path order within one; with extra sizes every picture once per size, size after size.
  const std::vector<BucketSize> sizes = multi ? info.buckets : std::vector<BucketSize>{{o.resolution, o.resolution}};
  std::vector<Slot> slots;
  if (o.buckets) {
    const std::vector<std::size_t> bucket = assign_buckets(data, sizes);
    for (std::size_t i = 0; i < data.size(); ++i) slots.push_back({i, bucket[i]});
    std::stable_sort(slots.begin(), slots.end(), [](const Slot& a, const Slot& b) { return a.bucket < b.bucket; });
  } else {
    for (std::size_t b = 0; b < sizes.size(); ++b)
      for (std::size_t i = 0; i < data.size(); ++i) slots.push_back({i, b});
  }
  struct ShardPlan {
    int64_t start, end;
    std::size_t bucket;
  };
  std::vector<ShardPlan> plan;
  for (int64_t start = 0, n = static_cast<int64_t>(slots.size()); start < n;) {
    const std::size_t b = slots[static_cast<std::size_t>(start)].bucket;
    int64_t end = start;
    while (end < n && end - start < o.shard_size && slots[static_cast<std::size_t>(end)].bucket == b) ++end;
    plan.push_back({start, end, b});
    start = end;
  }
  // An index of an earlier prepare no longer describes the folder: it is written again at the end.
  fs::remove(fs::path(o.out_dir) / kCacheIndex);

  // 3. Shards: images in path order, shard_size at a time.
  PrepareSummary summary;
  std::vector<std::string> shard_keys;
  SkipSummary skips;
  ProgressOptions po;
  po.unit = "img";
  std::unique_ptr<Progress> bar;
  if (o.progress) bar = std::make_unique<Progress>(static_cast<int64_t>(slots.size()), "prepare", po);
  std::vector<int64_t> bucket_images(sizes.size(), 0);
  for (int64_t s = 0; s < static_cast<int64_t>(plan.size()); ++s) {
    const auto [start, end, b] = plan[static_cast<std::size_t>(s)];
    const BucketSize size = sizes[b];
    TrainingImageOptions image_options;
    image_options.width = size.width;
    image_options.height = size.height;
    const std::string key = shard_key(components, data, slots, start, end, multi ? std::optional(size) : std::nullopt);
    shard_keys.push_back(key);
    const auto file = (fs::path(o.out_dir) / shard_name(s)).string();
    info.shards.push_back(shard_name(s));
    if (auto done = finished_shard(file, key)) {
      bucket_images[b] += done->images;
      info.items += done->images;
      info.captions += done->captions;
      ++summary.shards_reused;
      if (bar) bar->update(end - start);
      continue;
    }
    std::vector<torch::Tensor> means, stds, ctxs, pooleds;
    std::vector<int64_t> caption_item;
    std::vector<std::string> kept, caption_texts;
    std::mt19937_64 rng(static_cast<uint64_t>(s));
    for (int64_t first = start; first < end; first += o.batch_size) {
      std::vector<torch::Tensor> pixels;
      std::vector<std::string> captions;
      for (int64_t i = first; i < std::min(end, first + o.batch_size); ++i) {
        const auto& item = data.items[slots[static_cast<std::size_t>(i)].item];
        auto img = load_training_image(item.path, static_cast<int>(o.resolution), o.random_crop, false, rng, &skips, image_options);
        if (!img) continue;
        std::vector<Image> variants{*img};
        if (o.flip) variants.push_back(flip_horizontal(*img));
        for (const auto& v : variants) {  // a mirrored copy is one more image with the same captions
          const auto index = static_cast<int64_t>(kept.size());
          kept.push_back(item.path);
          pixels.push_back(image_to_tensor(v));
          for (const auto& c : item.captions) {
            captions.push_back(c);
            caption_texts.push_back(c);
            caption_item.push_back(index);
          }
        }
      }
      if (!pixels.empty()) {
        auto post = vae->encode(torch::stack(pixels).to(o.device));
        means.push_back(vae->to_denoiser(post.mean).to(torch::kCPU));
        stds.push_back((post.std() * vae->scaling_factor()).to(torch::kCPU));
      }
      if (!captions.empty()) {
        auto emb = text.encode(captions, o.penultimate);
        ctxs.push_back(emb.ctx.to(torch::kCPU));
        pooleds.push_back(emb.pooled.to(torch::kCPU));
      }
      if (bar) bar->update(std::min(end, first + o.batch_size) - first);
    }
    CacheShard shard;
    const int64_t h = size.height / vae->downscale_factor(), w = size.width / vae->downscale_factor();
    const int64_t c = info.latent_channels, L = info.context_length, D = info.text_dim;
    shard.mean = means.empty() ? torch::zeros({0, c, h, w}) : torch::cat(means);
    shard.std = stds.empty() ? torch::zeros({0, c, h, w}) : torch::cat(stds);
    shard.ctx = ctxs.empty() ? torch::zeros({0, L, D}) : torch::cat(ctxs);
    shard.pooled = pooleds.empty() ? torch::zeros({0, D}) : torch::cat(pooleds);
    shard.caption_item = torch::tensor(caption_item, torch::kInt64).reshape({-1});
    shard.paths = kept;
    shard.captions = caption_texts;
    write_cache_shard(o.out_dir, s, shard, key);
    bucket_images[b] += shard.mean.size(0);
    info.items += shard.mean.size(0);
    info.captions += shard.ctx.size(0);
  }
  if (bar) bar->finish();
  if (info.items == 0) throw Error("no usable images in " + o.data_dir + (skips.skipped() ? ": " + skips.summary() : ""));

  // 4. The empty prompt (caption dropout, guidance) and a few fixed prompts for sample grids.
  auto empty = text.encode({""}, o.penultimate);
  write_cache_prompts((fs::path(o.out_dir) / "empty.safetensors").string(), empty.ctx.to(torch::kCPU), empty.pooled.to(torch::kCPU), {""});
  std::vector<std::string> prompts;
  for (const auto& item : data.items)
    if (!item.captions.empty() && static_cast<int64_t>(prompts.size()) < o.sample_prompts) prompts.push_back(item.captions[0]);
  if (!prompts.empty()) {
    auto emb = text.encode(prompts, o.penultimate);
    write_cache_prompts((fs::path(o.out_dir) / "samples.safetensors").string(), emb.ctx.to(torch::kCPU), emb.pooled.to(torch::kCPU), prompts);
  }

  // 5. The index last, once every shard agrees with it: its presence marks a complete cache.
  for (std::size_t s = 0; s < info.shards.size(); ++s) {
    const auto file = (fs::path(o.out_dir) / info.shards[s]).string();
    if (cache_shard_key(file) != shard_keys[s]) throw Error(file + ": shard does not match its inputs after writing (changed during prepare?)");
  }
  for (auto s = static_cast<int64_t>(info.shards.size());; ++s) {  // shards of a larger earlier data set
    const auto stale = fs::path(o.out_dir) / shard_name(s);
    if (!fs::exists(stale)) break;
    fs::remove(stale);
  }
  write_cache_index(o.out_dir, info);
  summary.images = info.items;
  summary.captions = info.captions;
  summary.skipped = static_cast<int64_t>(skips.skipped());
  summary.text = "prepared " + std::to_string(info.items) + " images and " + std::to_string(info.captions) +
                 " captions in " + std::to_string(info.shards.size()) + " shards (" +
                 std::to_string(summary.shards_reused) + " reused from an earlier run) at " + o.out_dir +
                 "; latents " + std::to_string(info.latent_channels) + "x" + std::to_string(info.latent_size) + "x" +
                 std::to_string(info.latent_size) + ", text " + std::to_string(info.context_length) + "x" +
                 std::to_string(info.text_dim);
  if (multi) {
    summary.text += o.buckets ? "\naspect-ratio buckets (pictures):" : "\nsizes (pictures):";
    for (std::size_t b = 0; b < sizes.size(); ++b)
      summary.text += (b ? ", " : " ") + std::to_string(sizes[b].width) + "x" + std::to_string(sizes[b].height) + " (" +
                      std::to_string(bucket_images[b]) + ")";
  }
  if (skips.skipped()) summary.text += "\n" + skips.summary();
  return summary;
}

}  // namespace luminars
