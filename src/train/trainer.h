// The staged freeze/thaw denoiser trainer (DESIGN §5): the denoiser's TrainTask (latent-cache
// batches, caption dropout, flow-matching loss, validation at fixed t, sample grids) on the shared
// training loop of train/train_loop.h (AdamW, warm-up, clipping, EMA, accumulation, checkpoints
// and bit-exact resume).
//   RUN/checkpoints/step-NNNNNNN/{denoiser,ema,optimizer}.safetensors + state.json
//   RUN/checkpoints/latest        name of the newest complete checkpoint
//   RUN/log.jsonl, RUN/loss.png, RUN/samples/step-NNNNNNN.png
//   RUN/model/                    the final model folder (EMA weights; see pipeline/model_folder.h)
#pragma once
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "flow/flow_matching.h"
#include "model/config.h"
#include "train/heldout_loss.h"
#include "train/schedule.h"
#include "train/train_loop.h"

namespace luminars {

struct TrainOptions {
  std::string cache_dir, out_dir;
  Config config;                       // text_dim and latent_channels are taken from the cache
  std::vector<int> stages{1};          // e.g. {1} or {1, 2, 3}
  std::vector<int64_t> steps{1000};    // one count per stage
  std::vector<double> lr;              // per stage; empty = DESIGN §5 rates (1e-4, 1e-5, 1e-6)
  std::string init;                    // denoiser .safetensors to start from (e.g. stage 2 alone)
  int64_t batch_size = 32;
  int64_t grad_accum = 1;
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8, weight_decay = 0.01;
  int64_t warmup = 100;
  LrDecay decay = LrDecay::Constant;
  double min_lr_ratio = 0.1;
  double clip_grad = 1.0;              // max global gradient norm; 0 = off
  double ema_decay = 0.999;
  double caption_dropout = 0.1;
  TimeSampling time_sampling = TimeSampling::LogitNormal;
  bool grad_last_recursion_only = false;
  int64_t checkpoint_every = 500, keep_checkpoints = 3;
  int64_t validate_every = 250, sample_every = 500;
  double val_fraction = 0.05;
  uint64_t seed = 0;
  torch::Device device = torch::kCPU;
  bool bf16 = true;                    // autocast to bf16 on CUDA (ignored on the CPU unless cpu_bf16)
  bool cpu_bf16 = false;               // bf16 autocast on the CPU too, where it has native bf16
  bool resume = false;
  bool overwrite = false;              // start afresh in a folder that holds an earlier run
  int64_t stop_after = 0;              // stop (with a checkpoint) after this many steps in this run
  int64_t skip_nonfinite = 0;          // NaN/infinite-loss steps in a row skipped before stopping (0: stop)
  bool quiet = false;                  // no progress output
  std::shared_ptr<ProcessGroup> group; // data-parallel ranks (train/distributed.h); null: this process alone
};

struct TrainHooks {
  // Latents (denoiser space) -> images [B,3,H,W] in [-1,1]; unset = no sample grids.
  std::function<torch::Tensor(const torch::Tensor&)> decode;
};

TrainResult train(const TrainOptions& options, const TrainHooks& hooks = {});

// The shared loop's options for these denoiser options (stages at DESIGN §5 rates unless given).
LoopOptions loop_options(const TrainOptions& options);

}  // namespace luminars
