#include "train/heldout_loss.h"

#include <algorithm>
#include <numeric>

#include "flow/flow_matching.h"
#include "train/batch_sampler.h"

namespace luminars {

std::vector<double> validation_times() { return {0.1, 0.3, 0.5, 0.7, 0.9}; }

double heldout_flow_loss(LuminaRS& model, const LatentCache& cache, const std::vector<int64_t>& items,
                         int64_t batch_size, torch::Device device, int64_t recursions) {
  torch::NoGradGuard no_grad;
  std::vector<int64_t> all(items);
  if (all.empty()) {
    all.resize(static_cast<std::size_t>(cache.size()));
    std::iota(all.begin(), all.end(), int64_t{0});
  }
  if (all.empty()) return 0.0;
  if (cache.bucket_count() > 1)  // batches of one aspect-ratio bucket each
    std::stable_sort(all.begin(), all.end(), [&](int64_t a, int64_t b) {
      return cache.bucket_of[static_cast<std::size_t>(a)] < cache.bucket_of[static_cast<std::size_t>(b)];
    });
  ForwardOptions fo;
  fo.recursions = recursions;
  double total = 0;
  int64_t count = 0;
  const auto bs = static_cast<std::size_t>(std::max<int64_t>(1, batch_size));
  for (std::size_t start = 0, end = 0; start < all.size(); start = end) {
    end = std::min(all.size(), start + bs);
    for (std::size_t j = start + 1; j < end && cache.bucket_count() > 1; ++j)
      if (cache.bucket_of[static_cast<std::size_t>(all[j])] != cache.bucket_of[static_cast<std::size_t>(all[start])]) end = j;
    std::vector<int64_t> idx(all.begin() + static_cast<std::ptrdiff_t>(start), all.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<int64_t> rows(idx.size());
    for (std::size_t j = 0; j < idx.size(); ++j) {
      const auto& caps = cache.captions_of[static_cast<std::size_t>(idx[j])];
      rows[j] = caps.empty() ? 0 : caps[0];
    }
    auto x = cache.mean.gather(idx, torch::kFloat32);
    auto ctx = cache.ctx.gather(rows, torch::kFloat32), pooled = cache.pooled.gather(rows, torch::kFloat32);
    for (std::size_t j = 0; j < idx.size(); ++j)
      if (cache.captions_of[static_cast<std::size_t>(idx[j])].empty()) {
        ctx[static_cast<int64_t>(j)].copy_(cache.empty_ctx[0]);
        pooled[static_cast<int64_t>(j)].copy_(cache.empty_pooled[0]);
      }
    const auto x_d = x.to(device), ctx_d = ctx.to(device), pooled_d = pooled.to(device);
    int k = 0;
    for (double tv : validation_times()) {
      auto gen = seeded_generator({0x7A11D, static_cast<uint64_t>(start), static_cast<uint64_t>(k++)});
      auto noise = torch::randn(x.sizes(), gen).to(device);
      auto t = torch::full({x.size(0)}, static_cast<float>(tv), torch::TensorOptions().device(device));
      total += flow_matching_loss(model, x_d, noise, t, ctx_d, pooled_d, fo).item<double>() * static_cast<double>(x.size(0));
      count += x.size(0);
    }
  }
  return total / static_cast<double>(count);
}

}  // namespace luminars
