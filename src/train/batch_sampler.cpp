#include "train/batch_sampler.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace luminars {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

torch::Generator seeded_generator(std::initializer_list<uint64_t> parts) {
  uint64_t h = 0x1234567ull;
  for (auto p : parts) h = splitmix64(h ^ p);
  return make_generator(h >> 1);  // keep it in int64 range for Philox/MT seeding
}

BatchSampler::BatchSampler(const LatentCache& cache, std::vector<int64_t> items, uint64_t seed, double caption_dropout,
                           TimeSampling time_sampling, double time_shift)
    : cache_(cache), items_(std::move(items)), seed_(seed), caption_dropout_(caption_dropout), time_sampling_(time_sampling),
      time_shift_(time_shift) {
  if (items_.empty()) throw Error("no training images in the cache");
  if (cache_.bucket_count() > 1) {
    bucket_sizes_.assign(static_cast<std::size_t>(cache_.bucket_count()), 0);
    for (auto i : items_) ++bucket_sizes_[static_cast<std::size_t>(cache_.bucket_of[static_cast<std::size_t>(i)])];
  }
}

int64_t BatchSampler::epoch_length(int64_t batch_size) const {
  if (bucket_sizes_.empty()) return static_cast<int64_t>(items_.size());
  int64_t n = 0;
  for (auto c : bucket_sizes_) n += (c + batch_size - 1) / batch_size * batch_size;
  return n;
}

const std::vector<int64_t>& BatchSampler::epoch_order(int64_t epoch, int64_t batch_size) {
  if (epoch == cached_epoch_ && (cache_.bucket_count() == 1 || batch_size == cached_batch_size_)) return order_;
  auto gen = seeded_generator({seed_, 0xE90Cull, static_cast<uint64_t>(epoch)});
  auto perm = torch::randperm(static_cast<int64_t>(items_.size()), gen, torch::kInt64);
  auto p = perm.accessor<int64_t, 1>();
  order_.resize(items_.size());
  for (std::size_t i = 0; i < items_.size(); ++i) order_[i] = items_[static_cast<std::size_t>(p[static_cast<int64_t>(i)])];
  if (cache_.bucket_count() > 1) {
    std::vector<std::vector<int64_t>> by_bucket(static_cast<std::size_t>(cache_.bucket_count()));
    for (auto i : order_) by_bucket[static_cast<std::size_t>(cache_.bucket_of[static_cast<std::size_t>(i)])].push_back(i);
    std::vector<std::vector<int64_t>> runs;
    for (const auto& images : by_bucket)
      for (std::size_t start = 0; start < images.size(); start += static_cast<std::size_t>(batch_size)) {
        std::vector<int64_t> run;
        for (int64_t k = 0; k < batch_size; ++k) run.push_back(images[(start + static_cast<std::size_t>(k)) % images.size()]);
        runs.push_back(std::move(run));
      }
    auto run_perm = torch::randperm(static_cast<int64_t>(runs.size()), gen, torch::kInt64);
    auto r = run_perm.accessor<int64_t, 1>();
    order_.clear();
    for (int64_t k = 0; k < run_perm.size(0); ++k) {
      const auto& run = runs[static_cast<std::size_t>(r[k])];
      order_.insert(order_.end(), run.begin(), run.end());
    }
  }
  cached_epoch_ = epoch;
  cached_batch_size_ = batch_size;
  return order_;
}

Batch BatchSampler::sample(int64_t index, int64_t batch_size, BatchPart part) {
  if (part.whole()) part = {0, batch_size};
  const int64_t n = epoch_length(batch_size);
  auto gen = seeded_generator({seed_, 0xBA7Cull, static_cast<uint64_t>(index)});
  const auto k = static_cast<std::size_t>(part.size);
  std::vector<int64_t> images(k), rows(k);
  auto u = torch::rand({batch_size, 2}, gen, torch::kFloat64);  // caption choice, dropout
  auto ua = u.accessor<double, 2>();
  std::vector<bool> dropped(k);
  for (std::size_t i = 0; i < k; ++i) {
    const int64_t j = part.begin + static_cast<int64_t>(i);  // in the whole batch
    const int64_t s = index * batch_size + j;  // position in the endless epoch stream
    const int64_t img = epoch_order(s / n, batch_size)[static_cast<std::size_t>(s % n)];
    images[i] = img;
    const auto& caps = cache_.captions_of[static_cast<std::size_t>(img)];
    dropped[i] = caps.empty() || ua[j][1] < caption_dropout_;
    rows[i] = caps.empty() ? 0 : caps[std::min(caps.size() - 1, static_cast<std::size_t>(ua[j][0] * static_cast<double>(caps.size())))];
  }
  Batch b;
  auto mean = cache_.mean.gather(images, torch::kFloat32), std = cache_.std.gather(images, torch::kFloat32);
  auto whole = mean.sizes().vec();  // [B, C, h, w]: the whole batch's draws, the part's kept
  whole[0] = batch_size;
  auto mine = [&](const torch::Tensor& t) { return t.narrow(0, part.begin, part.size); };
  b.x_clean = mean + std * mine(torch::randn(whole, gen));  // a posterior sample
  b.noise = mine(torch::randn(whole, gen));
  b.t = mine(sample_training_times(batch_size, time_sampling_, gen, torch::kCPU, time_shift_));
  b.ctx = cache_.ctx.gather(rows, torch::kFloat32);
  b.pooled = cache_.pooled.gather(rows, torch::kFloat32);
  for (std::size_t i = 0; i < k; ++i)
    if (dropped[i]) {  // classifier-free guidance: the empty prompt
      b.ctx[static_cast<int64_t>(i)].copy_(cache_.empty_ctx[0]);
      b.pooled[static_cast<int64_t>(i)].copy_(cache_.empty_pooled[0]);
    }
  b.captions.resize(k);
  for (std::size_t i = 0; i < k; ++i) b.captions[i] = dropped[i] ? -1 : rows[i];
  b.images = std::move(images);
  return b;
}

}  // namespace luminars
