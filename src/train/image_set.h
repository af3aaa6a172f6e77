// Training pictures held in memory as 8-bit pixels, for the trainers that read images rather than
// the latent cache (VAE, CLIP): loaded once through the training image loader (alpha on white,
// shorter side resized, centre crop), unreadable files skipped and counted.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "data/dataset.h"

namespace luminars {

struct ImageSet {
  torch::Tensor pixels;                            // [N,3,R,R] uint8
  std::vector<std::vector<std::string>> captions;  // per image (may be empty)
  std::vector<std::string> paths;

  int64_t size() const { return pixels.defined() ? pixels.size(0) : 0; }
  int64_t resolution() const { return pixels.size(2); }
  // Images `index` as float32 [B,3,R,R] in [-1,1]; rows whose `flip` entry is true are mirrored.
  torch::Tensor batch(const std::vector<int64_t>& index, const std::vector<bool>& flip = {}) const;

  // A fingerprint of the pixels and captions (not of the files' names or places): the same for
  // a copy of the data anywhere, different for other pictures or captions.
  std::string content_key() const;

  // Every image of `data` at resolution²; throws naming the folder when none is usable.
  static ImageSet load(const Dataset& data, int64_t resolution, bool progress = true);
};

// Draws batches of distinct images from `items` epoch by epoch, each epoch a seeded permutation:
// batch `index` depends only on (seed, index).
class EpochBatches {
 public:
  EpochBatches(std::vector<int64_t> items, uint64_t seed) : items_(std::move(items)), seed_(seed) {}
  std::vector<int64_t> batch(int64_t index, int64_t batch_size);

 private:
  std::vector<int64_t> items_;
  uint64_t seed_;
  int64_t cached_epoch_ = -1;
  std::vector<int64_t> order_;
};

}  // namespace luminars
