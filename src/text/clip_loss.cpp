#include "text/clip_loss.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "core/shape.h"

namespace luminars {

namespace F = torch::nn::functional;

namespace {

torch::Tensor unit_rows(const torch::Tensor& x) {
  return F::normalize(x, F::NormalizeFuncOptions().p(2).dim(-1));
}

// The chance that k of m captions drawn at random include one of the image's c own: 1 - C(m-c,k)/C(m,k).
double chance_hit(int64_t m, int64_t c, int64_t k) {
  double miss = 1.0;
  for (int64_t j = 0; j < k; ++j) miss *= std::max<double>(0.0, static_cast<double>(m - c - j)) / static_cast<double>(m - j);
  return 1.0 - miss;
}

}  // namespace

torch::Tensor clip_contrastive_loss(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                                    const torch::Tensor& logit_scale, const torch::Tensor& image_ids_in) {
  if (image_embeds.dim() != 2 || text_embeds.dim() != 2 || image_embeds.sizes() != text_embeds.sizes() ||
      image_embeds.size(0) == 0)
    throw Error("clip_contrastive_loss: image_embeds " + shape_of(image_embeds) + " and text_embeds " +
                shape_of(text_embeds) + " must both be [N, P] with N > 0");
  if (logit_scale.numel() != 1) throw Error("clip_contrastive_loss: logit_scale must hold one value, got " + shape_of(logit_scale));
  const int64_t N = image_embeds.size(0);
  auto image_ids = image_ids_in.defined() ? image_ids_in.to(image_embeds.device(), torch::kInt64)
                                          : torch::arange(N, image_embeds.options().dtype(torch::kInt64));
  if (image_ids.dim() != 1 || image_ids.size(0) != N)
    throw Error("clip_contrastive_loss: image_ids " + shape_of(image_ids) + " must be [" + std::to_string(N) + "]");

  const auto scale = logit_scale.reshape({}).exp().clamp_max(100.0);
  const auto logits = scale * torch::matmul(unit_rows(image_embeds), unit_rows(text_embeds).t());  // [N,N] image -> text
  // Soft targets: equal weight on every pair showing the same image. Symmetric, so both directions use it.
  auto positive = image_ids.view({N, 1}).eq(image_ids.view({1, N})).to(logits.scalar_type());  // [N,N]
  const auto target = positive / positive.sum(1, /*keepdim=*/true);
  const auto image_loss = -(target * logits.log_softmax(1)).sum(1).mean();
  const auto text_loss = -(target * logits.t().log_softmax(1)).sum(1).mean();
  return (image_loss + text_loss) * 0.5;
}

RetrievalMetrics retrieval_metrics(const torch::Tensor& image_embeds, const torch::Tensor& text_embeds,
                                   const torch::Tensor& caption_image_in) {
  torch::NoGradGuard no_grad;
  if (image_embeds.dim() != 2 || text_embeds.dim() != 2 || image_embeds.size(1) != text_embeds.size(1) ||
      image_embeds.size(0) == 0 || text_embeds.size(0) == 0)
    throw Error("retrieval_metrics: image_embeds " + shape_of(image_embeds) + " and text_embeds " +
                shape_of(text_embeds) + " must be [N, P] and [M, P] with N, M > 0");
  const int64_t N = image_embeds.size(0), M = text_embeds.size(0);
  auto caption_image = caption_image_in.to(torch::kCPU, torch::kInt64);
  if (caption_image.dim() != 1 || caption_image.size(0) != M)
    throw Error("retrieval_metrics: caption_image " + shape_of(caption_image) + " must be [" + std::to_string(M) + "]");
  if (caption_image.min().item<int64_t>() < 0 || caption_image.max().item<int64_t>() >= N)
    throw Error("retrieval_metrics: caption_image holds an image index outside [0, " + std::to_string(N) + ")");

  const auto sim = torch::matmul(unit_rows(image_embeds), unit_rows(text_embeds).t()).to(torch::kCPU);  // [N,M]
  const auto per_image = torch::bincount(caption_image, /*weights=*/{}, /*minlength=*/N);                 // [N]
  const auto has_caption = per_image.gt(0);
  const int64_t with_captions = has_caption.sum().item<int64_t>();

  RetrievalMetrics r;
  r.images = N;
  r.captions = M;
  auto image_to_text = [&](int64_t k) {  // over images with captions
    k = std::min(k, M);
    auto top = std::get<1>(sim.topk(k, /*dim=*/1));                                        // [N,k] caption indices
    auto hit = caption_image.index({top}).eq(torch::arange(N).view({N, 1})).any(1);         // [N]
    return hit.logical_and(has_caption).sum().item<double>() / static_cast<double>(with_captions);
  };
  auto text_to_image = [&](int64_t k) {
    k = std::min(k, N);
    auto top = std::get<1>(sim.t().topk(k, /*dim=*/1));                                    // [M,k] image indices
    return top.eq(caption_image.view({M, 1})).any(1).to(torch::kFloat64).mean().item<double>();
  };
  auto chance_image_to_text = [&](int64_t k) {
    k = std::min(k, M);
    double sum = 0;
    auto counts = per_image.accessor<int64_t, 1>();
    for (int64_t n = 0; n < N; ++n)
      if (counts[n] > 0) sum += chance_hit(M, counts[n], k);
    return sum / static_cast<double>(with_captions);
  };
  r.image_to_text_top1 = image_to_text(1);
  r.image_to_text_top5 = image_to_text(5);
  r.text_to_image_top1 = text_to_image(1);
  r.text_to_image_top5 = text_to_image(5);
  r.chance_image_to_text_top1 = chance_image_to_text(1);
  r.chance_image_to_text_top5 = chance_image_to_text(5);
  r.chance_text_to_image_top1 = 1.0 / static_cast<double>(N);
  r.chance_text_to_image_top5 = static_cast<double>(std::min<int64_t>(5, N)) / static_cast<double>(N);
  return r;
}

}  // namespace luminars
