// luminars score: CLIP score of images against their prompts, and prompt-swap accuracy.
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "core/error.h"
#include "core/files.h"
#include "core/image.h"
#include "core/image_tensor.h"
#include "text/clip_model.h"
#include "text/clip_score.h"
#include "text/clip_tokenizer.h"

namespace luminars::cli {

namespace {


}  // namespace

void register_score(CLI::App& app, GlobalOptions& g) {
  struct Opts {
    std::string clip, prompts_file;
    std::vector<std::string> images, prompts;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("score", "CLIP score of images against their prompts, and prompt-swap accuracy");
  cmd->add_option("--clip", o->clip, "CLIP model folder (config.json, model.safetensors; tokenizer in it or in ../tokenizer)")
      ->required();
  cmd->add_option("--images", o->images, "image files, one per prompt")->required();
  auto* p = cmd->add_option("--prompts", o->prompts, "prompts, one per image, in the same order");
  auto* f = cmd->add_option("--prompts-file", o->prompts_file, "text file with one prompt per line");
  p->excludes(f);
  cmd->add_flag("--json", o->json, "print the results as JSON");
  cmd->callback([o, &g] {
    apply_global(g);
    // 1. Inputs: prompts and images, one each.
    if (o->prompts.empty() && o->prompts_file.empty()) throw Error("give the prompts with --prompts or --prompts-file");
    auto prompts = o->prompts_file.empty() ? o->prompts : read_nonblank_lines(o->prompts_file);
    if (prompts.size() != o->images.size())
      throw Error(std::to_string(o->images.size()) + " images but " + std::to_string(prompts.size()) +
                  " prompts: give one prompt per image");
    // 2. Model and tokenizer.
    auto model = load_clip_model(o->clip);
    auto tokenizer = ClipTokenizer::from_dir(clip_tokenizer_dir(o->clip));
    const int64_t S = model->config().vision.image_size;
    // 3. Images, each resized to the model's size (they may differ from each other).
    std::vector<torch::Tensor> batch;
    for (const auto& path : o->images) batch.push_back(clip_resize(image_to_tensor(load_image(path)).unsqueeze(0), S));
    // 4. Scores.
    auto s = clip_scores(model, tokenizer, torch::cat(batch), prompts);
    const bool has_swap = !std::isnan(s.swap_accuracy);
    if (o->json) {
      nlohmann::json j;
      j["clip"] = o->clip;
      j["count"] = prompts.size();
      j["images"] = nlohmann::json::array();
      for (std::size_t i = 0; i < prompts.size(); ++i)
        j["images"].push_back({{"image", o->images[i]}, {"prompt", prompts[i]}, {"clip_score", s.scores[i]},
                               {"best_prompt", s.best_prompt[i]}});
      j["mean_clip_score"] = s.mean_score;
      j["prompt_swap_accuracy"] = has_swap ? nlohmann::json(s.swap_accuracy) : nlohmann::json(nullptr);
      j["prompt_swap_images"] = s.swap_images;
      std::cout << j.dump(2) << "\n";
      return;
    }
    const auto& c = model->config();
    std::printf("CLIP %s: image %lld (patch %lld), projection %lld; %zu images\n", o->clip.c_str(),
                static_cast<long long>(S), static_cast<long long>(c.vision.patch_size),
                static_cast<long long>(c.projection_dim), prompts.size());
    std::printf("%8s  %-6s  %s\n", "score", "best", "image: prompt");
    for (std::size_t i = 0; i < prompts.size(); ++i)
      std::printf("%8.2f  %-6lld  %s: %s\n", s.scores[i], static_cast<long long>(s.best_prompt[i]), o->images[i].c_str(),
                  prompts[i].c_str());
    std::printf("mean CLIP score %.2f\n", s.mean_score);
    if (has_swap)
      std::printf("prompt-swap accuracy %.1f%% (%lld images)\n", 100.0 * s.swap_accuracy,
                  static_cast<long long>(s.swap_images));
    else
      std::printf("prompt-swap accuracy n/a (no two different prompts)\n");
  });
}

}  // namespace luminars::cli
