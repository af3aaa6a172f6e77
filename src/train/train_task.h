// What a model brings to the shared training loop (train/train_loop.h): its module, which of its
// parameters train in each stage, its batches and loss, its held-out figures and its pictures.
// The denoiser, the VAE and CLIP are each one TrainTask; the loop does everything else.
#pragma once
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "core/tensor_io.h"
#include "train/training_log.h"

namespace luminars {

struct StepLoss {
  torch::Tensor loss;  // scalar, backpropagated
  Metrics parts;       // logged beside it (the VAE's KL term, say)
  // What the backward pass multiplies the loss by. A loss whose every rank computes the whole
  // batch's value, with gradients through its own part only (CLIP's contrastive loss, say), sets
  // the world size: averaged over the ranks, the parts' gradients then add up to the batch's.
  double backward_scale = 1.0;
};

struct Validation {
  double loss = 0;     // the held-out loss, plotted with the training loss
  Metrics metrics;     // other held-out figures (PSNR, retrieval accuracy, ...)
};

class TrainTask {
 public:
  virtual ~TrainTask() = default;
  // Names the weights file in checkpoints ("denoiser", "vae", "clip") and the progress line.
  virtual std::string name() const = 0;
  // The module that trains, is averaged and checkpointed.
  virtual torch::nn::Module& module() = 0;
  // Stored in the weights files of checkpoints (a configuration, say).
  virtual std::map<std::string, std::string> weights_metadata() const { return {}; }
  // Sets requires_grad for `stage` and returns the parameters that train, by name.
  // By default every parameter trains in every stage.
  virtual NamedTensors trainable(int stage);
  // Images in one micro-batch (for img/s): the global batch, over all ranks of a data-parallel run.
  virtual int64_t batch_size() const = 0;
  // The loss of micro-batch `index` (global step × accumulation + micro-batch). Must depend only on
  // the run's seed and `index`, so that a resumed run is bit-exact. Runs under autocast on CUDA.
  // In a data-parallel run (LoopOptions::group) each rank computes it on its part of the batch
  // (batch_part() of train/distributed.h), drawing the whole batch's random numbers and keeping its
  // part's, so that W ranks train exactly what one process would.
  virtual StepLoss loss(int64_t index) = 0;
  // Held-out figures; called without gradients, the module in eval mode. nullopt: nothing held out.
  // In a data-parallel run only rank 0 calls it, and write_samples.
  virtual std::optional<Validation> validate() { return std::nullopt; }
  // A sample or reconstruction grid at `png_path`, called with the EMA weights in the module.
  virtual void write_samples(const std::string& png_path) {}
  // The task's part of the run's contract (train/run_contract.h): every option of its own that
  // the results depend on, its model's config, and a content key of its data (not a path, so that
  // moved data still resumes and other data does not), as a JSON object named like the flags.
  virtual nlohmann::json contract() const { return nlohmann::json::object(); }
};

}  // namespace luminars
