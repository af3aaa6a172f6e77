// `luminars train-vae`: an AutoencoderKL in diffusers layout trained from nothing on a folder of
// images, on the shared training loop. Loss per element: Charbonnier reconstruction + kl_weight ·
// KL to N(0,1) + edge_weight · L1 of the image-gradient difference (keeps edges sharp). At the end
// the latent statistics over the data set give scaling_factor and shift_factor (scaled latents of
// zero mean and unit variance), and OUT/vae/ is written from the EMA weights.
// With init_dir and decoder_only it fine-tunes a trained VAE's decoder instead: the encoder and its
// scaling and shift stay as they were, so the latents (and every denoiser trained on them) do not
// change while the pictures decoded from them improve.
//   OUT/vae/config.json, OUT/vae/diffusion_pytorch_model.safetensors
//   OUT/checkpoints/, log.jsonl, loss.png, samples/step-N.png (held-out originals over reconstructions)
#pragma once
#include <string>

#include "train/train_loop.h"
#include "vae/vae_config.h"

namespace luminars {

// The default VAE to train: 16 latent channels, 8× downsampling, widths 32/64/128/128, one resnet
// per level, attention in the middle block (3.93M parameters, sized for 64–128 px on a CPU).
VaeConfig vae_train_config();

struct VaeTrainOptions {
  std::string data_dir;
  std::string caption_column = "text";  // only to read the folder; the VAE ignores captions
  int64_t resolution = 64;              // pixels; a multiple of the VAE's downscale factor
  VaeConfig vae = vae_train_config();
  int64_t batch_size = 16;
  double kl_weight = 1e-4;              // per-element KL weight
  double edge_weight = 0.5;             // image-gradient L1 weight
  double charbonnier_eps = 1e-3;
  bool flip = true;                     // mirror half the batches' images
  double val_fraction = 0.05;
  int64_t stats_images = 2048;          // images measured for scaling_factor and shift_factor
  std::string init_dir;                 // start from this VAE folder (its config replaces `vae`)
  bool decoder_only = false;            // with init_dir: train the decoder only (encoder frozen)
  LoopOptions loop;                     // out_dir, steps (one stage), lr, checkpoints, ...
  bool progress = true;
};

struct VaeTrainResult {
  TrainResult run;
  double psnr = 0;                      // held-out PSNR (dB) of the EMA weights, posterior mean
  double scaling_factor = 1, shift_factor = 0;
  std::string vae_dir;                  // OUT/vae (empty when the run stopped early)
};

VaeTrainResult train_vae(const VaeTrainOptions& options);

// PSNR in dB of images in [-1,1] against a reference, per image then averaged.
double mean_psnr(const torch::Tensor& images, const torch::Tensor& reference);

}  // namespace luminars
