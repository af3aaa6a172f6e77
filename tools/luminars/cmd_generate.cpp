// luminars generate: prompt -> PNG with a model folder.
#include <iostream>

#include "commands.h"
#include "core/device.h"
#include "pipeline/export_model.h"
#include "pipeline/generate.h"

namespace luminars::cli {

void register_generate(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<GenerateOptions>();
  struct Extra {
    int64_t steps = 0, size = 0;
    double cfg = -1, shift = -1;
    std::string sampler, device = "auto";
    bool quiet = false, no_bf16 = false;
  };
  auto x = std::make_shared<Extra>();
  auto* cmd = app.add_subcommand("generate", "generate an image from a prompt");
  cmd->add_option("--model", o->model_dir, "model folder (luminars.json, denoiser/, …); default: the shipped models/emoji");
  cmd->add_option("--prompt", o->prompt, "what to draw")->required();
  cmd->add_option("--negative", o->negative, "what to steer away from (default: the empty prompt)");
  cmd->add_option("--steps", x->steps, "sampling steps (default from luminars.json, 12)")->check(CLI::Range(1, 1000));
  cmd->add_option("--cfg", x->cfg, "guidance scale (default from luminars.json, 4)")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--seed", o->seed, "noise seed")->capture_default_str();
  cmd->add_option("--sampler", x->sampler, "euler or heun")->check(CLI::IsMember({"euler", "heun"}));
  cmd->add_option("--shift", x->shift, "time shift (>1 spends more steps near noise)")->check(CLI::Range(0.01, 100.0));
  cmd->add_option("--batch", o->batch, "images (written as a grid)")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--size", x->size, "image side in pixels (default: the model's resolution)")->check(CLI::Range(8, 4096));
  cmd->add_option("--denoiser", o->denoiser, "override: denoiser .safetensors")->check(CLI::ExistingFile);
  cmd->add_option("--text-encoder", o->text_encoder, "override: text_encoder/ folder")->check(CLI::ExistingDirectory);
  cmd->add_option("--tokenizer", o->tokenizer, "override: tokenizer/ folder")->check(CLI::ExistingDirectory);
  cmd->add_option("--vae", o->vae, "override: vae/ folder")->check(CLI::ExistingDirectory);
  cmd->add_option("--device", x->device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--out", o->out, "PNG to write")->required();
  cmd->add_flag("--no-bf16", x->no_bf16, "sample in float32 (default: bf16 autocast on CUDA and on CPUs with native bf16)");
  cmd->add_option("--vae-tile", o->vae_tile,
                  "decode pictures larger than this many pixels in overlapping tiles (bounded memory); 0: never")
      ->capture_default_str()
      ->check(CLI::Range(0, 65536));
  cmd->add_flag("--quiet", x->quiet, "no progress bar");
  cmd->callback([o, x, &g] {
    apply_global(g);
    if (o->model_dir.empty()) o->model_dir = default_model_dir();
    o->device = device_from_name(x->device);
    if (x->steps > 0) o->steps = x->steps;
    if (x->size > 0) o->size = x->size;
    if (x->cfg >= 0) o->cfg_scale = x->cfg;
    if (x->shift > 0) o->shift = x->shift;
    if (!x->sampler.empty()) o->sampler = x->sampler;
    o->progress = !x->quiet;
    o->bf16 = !x->no_bf16;
    auto r = generate(*o);
    std::cout << "wrote " << r.path << " (" << r.images.size(0) << " image" << (r.images.size(0) > 1 ? "s" : "") << ", "
              << r.images.size(3) << "x" << r.images.size(2) << ")\n";
  });
}

}  // namespace luminars::cli
