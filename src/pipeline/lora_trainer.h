// `luminars train-lora`: teaches a model folder's frozen denoiser a style or subject from a captioned
// image folder as low-rank adapters (model/lora.h), through the shared training loop
// (train/train_loop.h: AdamW, warm-up, clipping, checkpoints, bit-exact --resume, sample grids).
//   OUT/cache/           the folder encoded once by the model's own VAE and text encoder (resumable);
//                        a folder that already is a prepared cache (cache.json) is read as it is
//   OUT/run/             checkpoints/, log.jsonl, loss.png, samples/step-N.png (top row with the
//                        adapter, bottom row without, same prompts and noise)
//   OUT/NAME.safetensors the LoRA file (model/lora_file.h)
// Only the adapters train; the base weights are never written (checked at the end).
#pragma once
#include <torch/torch.h>

#include <string>

#include "model/lora.h"

namespace luminars {

struct LoraTrainOptions {
  std::string model_dir, data_dir, out_dir;
  std::string name;                  // the LoRA file's name; "" = OUT's folder name
  int64_t steps = 0;                 // 0 = default_lora_steps(images)
  LoraSettings lora;                 // rank 8, alpha 8, no dropout, attn + mlp
  double lr = 1e-3;
  int64_t batch_size = 8;
  double caption_dropout = 0.1;      // probability of the empty prompt (keeps guidance working)
  std::string trigger;               // put before every caption that lacks it and recorded in the file
  bool flip = false;                 // also train on every picture mirrored
  bool buckets = false;              // aspect-ratio buckets (data/aspect_buckets.h), sides multiples of the model's size step
  int64_t warmup = -1;               // -1 = a tenth of the steps (at most 100)
  double clip_grad = 1.0;
  int64_t checkpoint_every = 100, keep_checkpoints = 2, sample_every = 0;  // 0: a grid at the end only
  int64_t sample_prompts = 4;
  uint64_t seed = 0;
  torch::Device device = torch::kCPU;
  bool resume = false, overwrite = false, quiet = false;
  int64_t stop_after = 0;
};

struct LoraTrainResult {
  std::string lora_path;   // written when finished
  int64_t steps = 0, images = 0;
  double last_loss = 0;
  bool finished = false;
};

// Steps that fit a folder of `images` pictures: 4 per picture (32 passes over it at batch 8), 200 to 1000.
int64_t default_lora_steps(int64_t images);

LoraTrainResult train_lora(const LoraTrainOptions& options);

}  // namespace luminars
