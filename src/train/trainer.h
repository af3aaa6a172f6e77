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
  std::string cache_dir;
  Config config;                       // text_dim and latent_channels are taken from the cache
  std::vector<int> stages{1};          // e.g. {1} or {1, 2, 3}
  std::vector<int64_t> steps{1000};    // one count per stage
  std::vector<double> lr;              // per stage; empty = DESIGN §5 rates (1e-4, 1e-5, 1e-6)
  std::string init;                    // denoiser .safetensors to start from (e.g. stage 2 alone)
  int64_t batch_size = 32;
  double caption_dropout = 0.1;
  TimeSampling time_sampling = TimeSampling::LogitNormal;
  double time_shift = 1.0;  // training times' sigma shifted as the sampler's shift (1 = none)
  bool grad_last_recursion_only = false;
  double val_fraction = 0.05;
  // The run folder, optimizer, schedule, EMA, checkpoints, device and ranks; its stages are made
  // from stages, steps and lr above (loop_options).
  LoopOptions loop;
};

struct TrainHooks {
  // Latents (denoiser space) -> images [B,3,H,W] in [-1,1]; unset = no sample grids.
  std::function<torch::Tensor(const torch::Tensor&)> decode;
};

TrainResult train(const TrainOptions& options, const TrainHooks& hooks = {});

// The shared loop's options for these denoiser options (stages at DESIGN §5 rates unless given).
LoopOptions loop_options(const TrainOptions& options);

// Throws unless the denoiser `cfg` takes the cache's latents: its square ones and every aspect
// bucket's (naming the bucket).
void check_cache_latents(const Config& cfg, const CacheInfo& info);

}  // namespace luminars
