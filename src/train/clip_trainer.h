// `luminars train-clip`: a CLIP (text tower in CLIPTextModelWithProjection layout, a small ViT
// image tower) trained from nothing on a captioned image folder with the symmetric contrastive
// loss and a learned temperature, on the shared training loop. Every caption variant of an image
// is a positive for it. Held-out figures: contrastive loss and image->text / text->image top-1
// and top-5 retrieval over all held-out captions.
//   OUT/clip/          the whole model (both towers, projections, logit_scale) + tokenizer files
//   OUT/text_encoder/  the text tower alone (what prepare and generate read)
//   OUT/tokenizer/     a copy of the tokenizer it was trained with
#pragma once
#include <string>

#include "text/clip_loss.h"
#include "text/clip_model.h"
#include "train/train_loop.h"

namespace luminars {

struct ClipTrainOptions {
  std::string data_dir, tokenizer_dir;
  std::string caption_column = "text";
  int64_t resolution = 64;            // image side; a multiple of patch_size
  // Tower sizes (vocabulary, context length and special ids come from the tokenizer).
  int64_t text_width = 256, text_layers = 4, text_heads = 4;
  int64_t vision_width = 256, vision_layers = 4, vision_heads = 4, patch_size = 8;
  int64_t projection_dim = 256;
  int64_t batch_size = 64;
  double val_fraction = 0.05;
  int64_t max_validation_images = 1024;
  LoopOptions loop;
  bool progress = true;

  // The CLIPConfig these options describe for a tokenizer of `vocab_size` tokens.
  ClipConfig model_config(int64_t vocab_size, int64_t context_length, int64_t bos_id, int64_t eos_id, int64_t pad_id) const;
};

struct ClipTrainResult {
  TrainResult run;
  RetrievalMetrics heldout;        // of the EMA weights, at the end
  std::string clip_dir, text_encoder_dir, tokenizer_dir;
};

ClipTrainResult train_clip(const ClipTrainOptions& options);

}  // namespace luminars
