// luminars evaluate: held-out flow-matching loss of a denoiser on a prepared cache (for example the
// held-out images of a data set, prepared with the model's own VAE and text encoder).
#include <nlohmann/json.hpp>

#include <cstdio>
#include <iostream>

#include "commands.h"
#include "core/device.h"
#include "core/error.h"
#include "model/checkpoint.h"
#include "pipeline/export_model.h"
#include "pipeline/model_folder.h"
#include "train/heldout_loss.h"

namespace luminars::cli {

void register_evaluate(CLI::App& app, GlobalOptions& g) {
  struct Opts {
    std::string model, denoiser, cache, device = "auto";
    int64_t batch = 64, recursions = 0;
    bool json = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "evaluate", "held-out flow-matching loss of a denoiser on a prepared cache (fixed times 0.1…0.9 and noise)");
  cmd->add_option("--cache", o->cache, "cache folder from `luminars prepare` (e.g. of held-out images)")->required();
  cmd->add_option("--model", o->model, "model folder whose denoiser is measured; default: the shipped models/emoji");
  cmd->add_option("--denoiser", o->denoiser, "override: denoiser .safetensors")->check(CLI::ExistingFile);
  cmd->add_option("--batch", o->batch, "images per forward pass")->check(CLI::Range(1, 4096))->capture_default_str();
  cmd->add_option("--recursions", o->recursions, "refinement passes T (default: the model's own)")
      ->check(CLI::Range(1, 64));
  cmd->add_option("--device", o->device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_flag("--json", o->json, "print the result as JSON");
  cmd->callback([o, &g] {
    apply_global(g);
    std::string denoiser = o->denoiser;
    if (denoiser.empty()) {
      const auto folder = ModelFolder::load(o->model.empty() ? default_model_dir() : o->model);
      denoiser = folder.path_of(folder.denoiser);
    }
    const auto device = device_from_name(o->device);
    const LatentCache cache = LatentCache::load(o->cache);
    if (cache.size() == 0) throw Error("cache " + o->cache + " holds no images");
    auto model = load_denoiser(denoiser, device);
    const auto& c = model->config();
    if (c.text_dim != cache.info.text_dim || c.latent_channels != cache.info.latent_channels)
      throw Error("cache " + o->cache + " (text width " + std::to_string(cache.info.text_dim) + ", " +
                  std::to_string(cache.info.latent_channels) + " latent channels) was not prepared for denoiser " +
                  denoiser + " (text width " + std::to_string(c.text_dim) + ", " + std::to_string(c.latent_channels) +
                  " latent channels)");
    if (o->recursions > c.max_recursions)
      throw Error("--recursions " + std::to_string(o->recursions) + " exceeds the denoiser's max_recursions " +
                  std::to_string(c.max_recursions));
    model->eval();
    const double loss = heldout_flow_loss(model, cache, {}, o->batch, device, o->recursions);
    const int64_t T = o->recursions > 0 ? o->recursions : c.recursions;
    if (o->json) {
      nlohmann::json j{{"denoiser", denoiser}, {"cache", o->cache},     {"images", cache.size()},
                       {"recursions", T},      {"heldout_loss", loss}, {"times", validation_times()}};
      std::cout << j.dump(2) << "\n";
      return;
    }
    std::printf("held-out flow-matching loss %.4f (%lld images, T = %lld, t = 0.1 0.3 0.5 0.7 0.9)\n", loss,
                static_cast<long long>(cache.size()), static_cast<long long>(T));
  });
}

}  // namespace luminars::cli
