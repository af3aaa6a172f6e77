#include "train/latent_cache.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/format_version.h"
#include "core/json_fields.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"

namespace luminars {

std::string shard_name(int64_t index) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "shard-%05lld.safetensors", static_cast<long long>(index));
  return buf;
}

std::string CacheInfo::to_json() const {
  nlohmann::ordered_json j;
  j[kFormatVersionKey] = buckets.empty() ? int64_t{1} : kCacheFormatVersion;
  j["resolution"] = resolution;
  j["latent_channels"] = latent_channels;
  j["latent_size"] = latent_size;
  j["text_dim"] = text_dim;
  j["context_length"] = context_length;
  j["vae"] = vae;
  j["text_encoder"] = text_encoder;
  j["tokenizer"] = tokenizer;
  j["penultimate"] = penultimate;
  j["key"] = key;
  j["scaling_factor"] = scaling_factor;
  j["shift_factor"] = shift_factor;
  j["items"] = items;
  j["captions"] = captions;
  j["shards"] = shards;
  if (!buckets.empty()) {
    j["buckets"] = nlohmann::ordered_json::array();
    for (const auto& b : buckets) j["buckets"].push_back({b.width, b.height});
  }
  return j.dump(1);
}

CacheInfo CacheInfo::from_json(const std::string& text, const std::string& source) {
  CacheInfo c;
  try {
    auto j = json_fields::parse(text, source);
    read_format_version(j, source, "version", kCacheFormatVersion);  // "version" before format_version
    c.resolution = j.at("resolution");
    c.latent_channels = j.at("latent_channels");
    c.latent_size = j.at("latent_size");
    c.text_dim = j.at("text_dim");
    c.context_length = j.at("context_length");
    c.vae = j.value("vae", "");
    c.text_encoder = j.value("text_encoder", "");
    c.tokenizer = j.value("tokenizer", "");
    c.penultimate = j.value("penultimate", false);
    c.key = j.value("key", "");
    c.scaling_factor = j.at("scaling_factor");
    c.shift_factor = j.at("shift_factor");
    c.items = j.at("items");
    c.captions = j.at("captions");
    c.shards = j.at("shards").get<std::vector<std::string>>();
    if (j.contains("buckets"))
      for (const auto& b : j.at("buckets")) {
        const BucketSize size{b.at(0).get<int64_t>(), b.at(1).get<int64_t>()};
        if (size.width < 1 || size.height < 1) throw Error(source + ": invalid bucket size");
        c.buckets.push_back(size);
      }
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": invalid cache index: " + e.what());
  }
  return c;
}

std::string cache_content_key(const std::string& dir) {
  namespace fs = std::filesystem;
  const auto index_file = (fs::path(dir) / kCacheIndex).string();
  auto index = json_fields::parse(read_file(index_file), index_file);
  if (!index.is_object()) throw Error(index_file + ": expected a JSON object");
  for (const char* where : {"vae", "text_encoder", "tokenizer"}) index.erase(where);  // paths: a copy elsewhere is the same cache
  if (index.contains(kFormatVersionKey)) {  // hashed under its earlier name: a cache keeps its key
    index["version"] = index[kFormatVersionKey];
    index.erase(kFormatVersionKey);
  }
  uint64_t h = fnv1a("luminars-cache-content-v1\n");
  h = fnv1a(index.dump() + "\n", h);
  for (const auto& shard : CacheInfo::from_json(read_file(index_file), index_file).shards) {
    const auto file = (fs::path(dir) / shard).string();
    const auto key = cache_shard_key(file);
    h = fnv1a(key ? "key " + *key + "\n" : "bytes " + hex64(fnv1a(read_file(file))) + "\n", h);
  }
  const auto empty = (fs::path(dir) / "empty.safetensors").string();
  if (fs::exists(empty)) h = fnv1a("empty " + hex64(fnv1a(read_file(empty))) + "\n", h);
  return hex64(h);
}

std::optional<std::string> cache_shard_key(const std::string& file) {
  if (!std::filesystem::exists(file)) return std::nullopt;
  try {
    safetensors::Reader r(file);
    auto it = r.metadata().find("key");
    if (it == r.metadata().end()) return std::nullopt;
    return it->second;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

namespace {

torch::Tensor need(const std::map<std::string, torch::Tensor>& t, const std::string& name, const std::string& file) {
  auto it = t.find(name);
  if (it == t.end()) throw Error(file + ": missing tensor '" + name + "'");
  return it->second;
}

// A shard's JSON metadata that must be a list of strings; anything else is an error naming it.
std::vector<std::string> string_list(const std::string& text, const std::string& what) {
  auto j = json_fields::parse(text, what);
  if (!j.is_array() || !std::all_of(j.begin(), j.end(), [](const nlohmann::json& v) { return v.is_string(); }))
    throw Error(what + " must be a list of strings");
  return j.get<std::vector<std::string>>();
}

}  // namespace

void write_cache_shard(const std::string& dir, int64_t index, const CacheShard& s, const std::string& key) {
  const auto file = (std::filesystem::path(dir) / shard_name(index)).string();
  std::map<std::string, std::string> metadata{
      {"paths", nlohmann::json(s.paths).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}, {"key", key}};
  if (static_cast<int64_t>(s.captions.size()) == s.ctx.size(0))  // the texts of every caption, or none
    metadata["captions"] = nlohmann::json(s.captions).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  save_tensors(file,
               {{"mean", s.mean.to(torch::kFloat32)},
                {"std", s.std.to(torch::kFloat32)},
                {"ctx", s.ctx.to(torch::kFloat16)},
                {"pooled", s.pooled.to(torch::kFloat16)},
                {"caption_item", s.caption_item.to(torch::kInt64)}},
               metadata);
}

void write_cache_index(const std::string& dir, const CacheInfo& info) {
  write_file_atomic((std::filesystem::path(dir) / kCacheIndex).string(), [&](std::ostream& o) { o << info.to_json() << "\n"; });
}

void write_cache_prompts(const std::string& path, const torch::Tensor& ctx, const torch::Tensor& pooled,
                         const std::vector<std::string>& prompts) {
  save_tensors(path, {{"ctx", ctx.to(torch::kFloat32)}, {"pooled", pooled.to(torch::kFloat32)}},
               {{"prompts", nlohmann::json(prompts).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)}});
}

CacheInfo CacheInfo::load(const std::string& dir) {
  const auto index = (std::filesystem::path(dir) / kCacheIndex).string();
  if (!std::filesystem::exists(index))
    throw Error("no training cache at " + dir + " (missing " + std::string(kCacheIndex) + "; run `luminars prepare` first)");
  CacheInfo info = from_json(read_file(index), index);
  if (info.shards.empty()) throw Error(index + ": the cache holds no images");
  return info;
}

void ShardedRows::append(torch::Tensor part) {
  if (!mixed_shapes_ && !parts_.empty() && part.sizes().slice(1) != parts_.front().sizes().slice(1))
    throw Error("cache shards disagree on the shape of a row");
  ends_.push_back(size() + part.size(0));
  parts_.push_back(std::move(part));
}

std::vector<int64_t> ShardedRows::row_shape() const {
  if (parts_.empty()) return {};
  return parts_.front().sizes().slice(1).vec();
}

torch::Tensor ShardedRows::row(int64_t i) const {
  if (i < 0 || i >= size()) throw Error("cache row " + std::to_string(i) + " is out of range (" + std::to_string(size()) + " rows)");
  const auto s = static_cast<std::size_t>(std::upper_bound(ends_.begin(), ends_.end(), i) - ends_.begin());
  return parts_[s][i - (s == 0 ? 0 : ends_[s - 1])];
}

torch::Tensor ShardedRows::gather(const std::vector<int64_t>& index, torch::Dtype dtype) const {
  auto shape = index.empty() || !mixed_shapes_ ? row_shape() : row(index.front()).sizes().vec();
  if (mixed_shapes_)
    for (auto i : index)
      if (row(i).sizes() != torch::IntArrayRef(shape)) throw Error("internal error: a batch mixes aspect-ratio buckets");
  shape.insert(shape.begin(), static_cast<int64_t>(index.size()));
  auto out = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  for (std::size_t k = 0; k < index.size(); ++k) out[static_cast<int64_t>(k)].copy_(row(index[k]));
  return out;
}

LatentCache LatentCache::load(const std::string& dir) {
  namespace fs = std::filesystem;
  LatentCache c;
  c.info = CacheInfo::load(dir);
  if (!c.info.buckets.empty()) c.mean = c.std = ShardedRows(/*mixed_shapes=*/true);
  int64_t base = 0, rows = 0;
  bool has_texts = true;
  for (const auto& shard : c.info.shards) {
    const auto file = (fs::path(dir) / shard).string();
    auto reader = std::make_shared<const safetensors::Reader>(file);
    std::map<std::string, torch::Tensor> t;
    for (const auto& v : reader->tensors()) t.emplace(v.name, mapped_tensor(v, reader));  // read in place
    auto mean = need(t, "mean", file), std = need(t, "std", file), ctx = need(t, "ctx", file),
         pooled = need(t, "pooled", file), item = need(t, "caption_item", file);
    if (mean.dim() != 4 || mean.sizes() != std.sizes() || mean.size(1) != c.info.latent_channels ||
        !mean.is_floating_point() || !std.is_floating_point())
      throw Error(file + ": mean/std shapes disagree with cache.json");
    int64_t bucket = 0;  // the bucket whose latent size the shard's rows have
    if (!c.info.buckets.empty()) {
      const int64_t factor = c.info.latent_factor();
      auto it = std::find(c.info.buckets.begin(), c.info.buckets.end(), BucketSize{mean.size(3) * factor, mean.size(2) * factor});
      if (it == c.info.buckets.end())
        throw Error(file + ": latents of " + std::to_string(mean.size(3)) + "x" + std::to_string(mean.size(2)) +
                    " fit none of the buckets in cache.json (" + bucket_list(c.info.buckets) + ")");
      bucket = it - c.info.buckets.begin();
    } else if (mean.size(2) != c.info.latent_size || mean.size(3) != c.info.latent_size) {
      throw Error(file + ": latents of " + std::to_string(mean.size(3)) + "x" + std::to_string(mean.size(2)) +
                  ", cache.json says " + std::to_string(c.info.latent_size) + "x" + std::to_string(c.info.latent_size));
    }
    c.bucket_of.insert(c.bucket_of.end(), static_cast<std::size_t>(mean.size(0)), bucket);
    if (ctx.dim() != 3 || ctx.size(2) != c.info.text_dim || pooled.dim() != 2 || pooled.size(0) != ctx.size(0) ||
        pooled.size(1) != c.info.text_dim || item.dim() != 1 || item.size(0) != ctx.size(0) ||
        !ctx.is_floating_point() || !pooled.is_floating_point() || item.scalar_type() != torch::kInt64)
      throw Error(file + ": ctx/pooled/caption_item shapes disagree with cache.json");
    std::vector<std::string> paths;
    if (auto p = reader->metadata().find("paths"); p != reader->metadata().end())
      paths = string_list(p->second, file + ": metadata 'paths'");
    paths.resize(static_cast<std::size_t>(mean.size(0)));
    c.paths.insert(c.paths.end(), paths.begin(), paths.end());
    // The captions' texts, while every shard so far has them all.
    if (auto p = reader->metadata().find("captions"); p != reader->metadata().end() && has_texts) {
      auto texts = string_list(p->second, file + ": metadata 'captions'");
      if (static_cast<int64_t>(texts.size()) != ctx.size(0)) throw Error(file + ": metadata 'captions' lists " +
                                                                       std::to_string(texts.size()) + " captions for " +
                                                                       std::to_string(ctx.size(0)) + " embeddings");
      c.caption_text.insert(c.caption_text.end(), texts.begin(), texts.end());
    } else {
      has_texts = false;
    }
    c.captions_of.resize(static_cast<std::size_t>(base + mean.size(0)));
    auto items = item.accessor<int64_t, 1>();
    for (int64_t r = 0; r < item.size(0); ++r) {
      if (items[r] < 0 || items[r] >= mean.size(0)) throw Error(file + ": caption_item out of range");
      c.captions_of[static_cast<std::size_t>(base + items[r])].push_back(rows + r);
    }
    try {
      c.mean.append(mean);
      c.std.append(std);
      if (ctx.size(0) > 0) {
        c.ctx.append(ctx);
        c.pooled.append(pooled);
      }
    } catch (const Error& e) {
      throw Error(file + ": " + e.what());
    }
    base += mean.size(0);
    rows += ctx.size(0);
  }
  if (!has_texts) c.caption_text.clear();
  const auto empty_file = (fs::path(dir) / "empty.safetensors").string();
  auto empty = load_tensors(empty_file, torch::kFloat32);
  c.empty_ctx = need(empty, "ctx", empty_file);
  c.empty_pooled = need(empty, "pooled", empty_file);
  if (c.ctx.size() == 0) {  // no captions at all: every sample is unconditional
    c.ctx.append(c.empty_ctx.to(torch::kFloat16));
    c.pooled.append(c.empty_pooled.to(torch::kFloat16));
  }
  const auto samples_file = (fs::path(dir) / "samples.safetensors").string();
  if (fs::exists(samples_file)) {
    safetensors::Reader reader(samples_file);
    auto s = load_tensors(samples_file, torch::kFloat32);
    c.sample_ctx = need(s, "ctx", samples_file);
    c.sample_pooled = need(s, "pooled", samples_file);
    if (auto p = reader.metadata().find("prompts"); p != reader.metadata().end())
      c.sample_prompts = string_list(p->second, samples_file + ": metadata 'prompts'");
  }
  return c;
}

}  // namespace luminars
