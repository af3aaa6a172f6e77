// Held-out flow-matching loss: the figure that compares denoisers across runs, steps and models.
// Fixed times (0.1, 0.3, 0.5, 0.7, 0.9), fixed noise seeded per batch and time, each image with
// its first caption (the empty prompt when it has none).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "model/luminars.h"
#include "train/latent_cache.h"

namespace luminars {

// The times at which the held-out loss is measured.
std::vector<double> validation_times();

// Mean flow-matching loss of `model` over the images `items` of `cache` (every image when empty),
// with `recursions` refinement passes (0 = the model's own T).
double heldout_flow_loss(LuminaRS& model, const LatentCache& cache, const std::vector<int64_t>& items,
                         int64_t batch_size, torch::Device device, int64_t recursions = 0);

}  // namespace luminars
