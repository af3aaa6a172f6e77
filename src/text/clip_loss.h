// CLIP's training objective and its retrieval metrics, on embeddings from ClipModel::encode_text /
// encode_image. Shapes: N = images (batch rows), M = captions, P = projection_dim.
#pragma once
#include <torch/torch.h>

#include <cstdint>

namespace luminars {

// The symmetric contrastive loss of CLIP: cosine logits (rows L2-normalised) times
// exp(logit_scale) clamped at 100, cross-entropy image -> text and text -> image, averaged.
// Row a of image_embeds and row a of text_embeds form pair a; `image_ids` [N] int64 names the
// image of each pair, and every pair with the same id is a positive (the target spreads evenly
// over them), so two captions of one image in a batch do not push each other away. Undefined
// image_ids: every row its own image (HF's clip_loss). Returns a scalar, differentiable in all three.
torch::Tensor clip_contrastive_loss(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                                    const torch::Tensor& logit_scale, const torch::Tensor& image_ids = {});

struct RetrievalMetrics {
  int64_t images = 0;    // N
  int64_t captions = 0;  // M
  // Image -> text: the fraction of images (those with at least one caption) that have one of
  // their own captions among the k captions most similar to them.
  double image_to_text_top1 = 0, image_to_text_top5 = 0;
  // Text -> image: the fraction of captions whose image is among the k images most similar to them.
  double text_to_image_top1 = 0, text_to_image_top5 = 0;
  // The same fractions for random rankings (k/N for text -> image; for image -> text the chance
  // that k captions drawn at random include one of the image's own), for reference.
  double chance_image_to_text_top1 = 0, chance_image_to_text_top5 = 0;
  double chance_text_to_image_top1 = 0, chance_text_to_image_top5 = 0;
};

// image_embeds [N,P], text_embeds [M,P], caption_image [M] int64 in [0,N): the image each caption
// describes. Ranked by cosine similarity; k is capped at N or M. Without gradients.
RetrievalMetrics retrieval_metrics(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                                   const torch::Tensor& caption_image);

}  // namespace luminars
