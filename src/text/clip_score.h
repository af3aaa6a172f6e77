// CLIP score of generated images against their prompts (100 × cosine, as torchmetrics' CLIPScore
// before its clamp at 0) and prompt-swap accuracy, the library side of `luminars score`.
#pragma once
#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "text/clip_model.h"

namespace luminars {

class ClipTokenizer;

struct ClipScores {
  std::vector<double> scores;        // per image i: 100 × cos(image i, prompt i)
  double mean_score = 0;             // mean of scores
  std::vector<int64_t> best_prompt;  // per image: the prompt it scores highest (ties: the lowest index)
  // The fraction of images whose own prompt scores strictly above every other prompt of the set
  // (prompts equal to its own are skipped); NaN when no image has a different prompt to compare.
  double swap_accuracy = 0;
  int64_t swap_images = 0;  // images counted in swap_accuracy
  torch::Tensor cosine;     // [N,N] float32 on the CPU: cos(image i, prompt j)
};

// images [N,3,H,W] in [-1,1] (resized and normalised with model->preprocess), one prompt each.
// Without gradients, in batches of 64. Throws when the counts differ, naming both.
ClipScores clip_scores(ClipModel& model, const ClipTokenizer& tokenizer, const torch::Tensor& images,
                       const std::vector<std::string>& prompts);

}  // namespace luminars
