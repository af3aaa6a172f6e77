// `luminars prepare`: encodes every training image once with the frozen VAE (posterior mean and
// std) and every caption with the frozen text encoder, into the sharded cache of
// train/latent_cache.h. Finished shards are kept, so a killed prepare resumes where it stopped.
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

namespace luminars {

struct PrepareOptions {
  std::string data_dir, vae, text_encoder, tokenizer, out_dir;
  int64_t resolution = 256;
  std::string caption_column = "text";
  int64_t shard_size = 256;       // images per shard (the unit of resumption)
  int64_t batch_size = 8;         // images per VAE call
  int64_t sample_prompts = 4;     // captions kept for the trainer's sample grids
  bool penultimate = false;       // ctx from CLIP's penultimate layer
  bool random_crop = false;       // a seeded random square instead of the centre one
  bool flip = false;              // also cache each image mirrored (twice the images, same captions)
  std::string trigger;            // put before every caption that lacks it ("TRIGGER, caption"); a picture without captions gets it alone
  bool buckets = false;           // aspect-ratio buckets (data/aspect_buckets.h) instead of square centre crops
  int64_t bucket_step = 32;       // their sides: multiples of this (of the VAE's factor, and of the denoiser's size step to train it)
  // Further square sizes every picture is also cached at (each a bucket of its own, so batches keep
  // one size): one denoiser trained at `resolution` and at these. Not with `buckets`.
  std::vector<int64_t> extra_sizes;
  torch::Device device = torch::kCPU;
  bool progress = true;
};

struct PrepareSummary {
  int64_t images = 0, captions = 0, skipped = 0, shards_reused = 0;
  std::string text;  // the human-readable summary printed at the end
};

PrepareSummary prepare(const PrepareOptions& options);

}  // namespace luminars
