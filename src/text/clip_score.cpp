#include "text/clip_score.h"

#include <cmath>
#include <limits>

#include "core/error.h"
#include "text/clip_tokenizer.h"

namespace luminars {

namespace F = torch::nn::functional;

ClipScores clip_scores(ClipModel& model, const ClipTokenizer& tokenizer, const torch::Tensor& images,
                       const std::vector<std::string>& prompts) {
  const int64_t N = images.dim() > 0 ? images.size(0) : 0;
  if (N != static_cast<int64_t>(prompts.size()))
    throw Error(std::to_string(N) + " images but " + std::to_string(prompts.size()) +
                " prompts: give one prompt per image");
  if (N == 0) throw Error("clip_scores: no images");
  torch::NoGradGuard no_grad;
  constexpr int64_t kBatch = 64;
  std::vector<torch::Tensor> image_rows, text_rows;
  for (int64_t b = 0; b < N; b += kBatch) {
    const int64_t n = std::min(kBatch, N - b);
    image_rows.push_back(model->encode_image(model->preprocess(images.narrow(0, b, n))).cpu());  // [n,P]
    const std::vector<std::string> chunk(prompts.begin() + b, prompts.begin() + b + n);
    text_rows.push_back(model->encode_text(model->tokenize(tokenizer, chunk)).cpu());  // [n,P]
  }
  auto unit = [](const torch::Tensor& x) { return F::normalize(x, F::NormalizeFuncOptions().p(2).dim(-1)); };
  ClipScores s;
  s.cosine = torch::matmul(unit(torch::cat(image_rows)), unit(torch::cat(text_rows)).t()).to(torch::kFloat32);  // [N,N]
  const auto cos = s.cosine.to(torch::kFloat64);
  auto c = cos.accessor<double, 2>();
  int64_t wins = 0;
  for (int64_t i = 0; i < N; ++i) {
    s.scores.push_back(100.0 * c[i][i]);
    int64_t best = 0;
    for (int64_t j = 1; j < N; ++j)
      if (c[i][j] > c[i][best]) best = j;
    s.best_prompt.push_back(best);
    bool compared = false, win = true;
    for (int64_t j = 0; j < N; ++j) {
      if (prompts[j] == prompts[i]) continue;
      compared = true;
      win = win && c[i][i] > c[i][j];
    }
    if (compared) {
      ++s.swap_images;
      wins += win;
    }
  }
  s.mean_score = 100.0 * cos.diagonal().mean().item<double>();
  s.swap_accuracy = s.swap_images > 0 ? static_cast<double>(wins) / static_cast<double>(s.swap_images)
                                      : std::numeric_limits<double>::quiet_NaN();
  return s;
}

}  // namespace luminars
