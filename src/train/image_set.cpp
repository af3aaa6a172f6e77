#include "train/image_set.h"

#include <random>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "train/batch_sampler.h"

namespace luminars {

torch::Tensor ImageSet::batch(const std::vector<int64_t>& index, const std::vector<bool>& flip) const {
  auto x = pixels.index_select(0, torch::tensor(index, torch::kInt64)).to(torch::kFloat32).div_(127.5).sub_(1.0);
  for (std::size_t i = 0; i < flip.size() && i < index.size(); ++i)
    if (flip[i]) x[static_cast<int64_t>(i)].copy_(x[static_cast<int64_t>(i)].flip({2}));
  return x;
}

std::string ImageSet::content_key() const {
  uint64_t h = fnv1a("luminars-image-set-v1\n");
  if (pixels.defined()) {
    const auto bytes = pixels.contiguous();
    h = fnv1a(std::to_string(bytes.numel()) + "\n", h);
    h = fnv1a(std::string_view(static_cast<const char*>(bytes.data_ptr()), static_cast<std::size_t>(bytes.nbytes())), h);
  }
  for (const auto& image : captions) {
    for (const auto& c : image) h = fnv1a(c + "\n", h);
    h = fnv1a("\x1e", h);
  }
  return hex64(h);
}

ImageSet ImageSet::load(const Dataset& data, int64_t resolution, bool progress) {
  const auto n = static_cast<int64_t>(data.size());
  ImageSet set;
  auto pixels = torch::empty({n, 3, resolution, resolution}, torch::kUInt8);
  SkipSummary skips;
  std::unique_ptr<Progress> bar;
  if (progress) {
    ProgressOptions po;
    po.unit = "img";
    bar = std::make_unique<Progress>(n, "load images", po);
  }
  std::mt19937_64 rng(0);
  int64_t kept = 0;
  for (const auto& item : data.items) {
    if (bar) bar->update();
    auto img = load_training_image(item.path, static_cast<int>(resolution), false, false, rng, &skips);
    if (!img) continue;
    auto hwc = torch::from_blob(img->rgb.data(), {resolution, resolution, 3}, torch::kUInt8);
    pixels[kept++].copy_(hwc.permute({2, 0, 1}));
    set.captions.push_back(item.captions);
    set.paths.push_back(item.path);
  }
  if (bar) bar->finish();
  if (progress) skips.print(std::cerr);
  if (kept == 0) throw Error("no usable images in " + data.root + (skips.skipped() ? ": " + skips.summary() : ""));
  set.pixels = pixels.narrow(0, 0, kept).clone();
  return set;
}

std::vector<int64_t> EpochBatches::batch(int64_t index, int64_t batch_size) {
  std::vector<int64_t> out;
  const auto n = static_cast<int64_t>(items_.size());
  if (n == 0) throw Error("no training images left after the held-out split");
  out.reserve(static_cast<std::size_t>(batch_size));
  for (int64_t k = 0; k < batch_size; ++k) {
    const int64_t flat = index * batch_size + k, epoch = flat / n;
    if (epoch != cached_epoch_) {
      auto perm = torch::randperm(n, seeded_generator({seed_, 0xE90C, static_cast<uint64_t>(epoch)}), torch::kInt64);
      auto acc = perm.accessor<int64_t, 1>();
      order_.resize(static_cast<std::size_t>(n));
      for (int64_t i = 0; i < n; ++i) order_[static_cast<std::size_t>(i)] = items_[static_cast<std::size_t>(acc[i])];
      cached_epoch_ = epoch;
    }
    out.push_back(order_[static_cast<std::size_t>(flat % n)]);
  }
  return out;
}

}  // namespace luminars
