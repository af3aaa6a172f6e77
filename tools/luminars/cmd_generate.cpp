// luminars generate: prompt -> PNG or JPEG with a model folder; image-to-image and inpainting with
// --init-image (and --mask); --from-png repeats a picture's recorded parameters.
#include <algorithm>
#include <filesystem>
#include <iostream>

#include "cli_validators.h"
#include "commands.h"
#include "from_png.h"
#include "pipeline/export_model.h"
#include "pipeline/generate.h"
#include "pipeline/lora_prompt.h"

namespace luminars::cli {

namespace {

std::string folder_name(const std::string& dir) {
  auto path = std::filesystem::path(dir).lexically_normal();
  if (path.filename().empty()) path = path.parent_path();
  return path.filename().string();
}

}  // namespace

void register_generate(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<GenerateOptions>();
  struct Extra {
    int64_t steps = 0, size = 0, width = 0, height = 0, batch = 1, mask_blur = 4;
    int64_t hires_from = -1;
    double cfg = -1, shift = -1, strength = -1, hires_strength = -1;
    std::string seed = "-1";
    std::string sampler, prompt, negative, init_image, mask, from_png;
    std::vector<std::string> loras;
    bool quiet = false, no_bf16 = false;
  };
  auto x = std::make_shared<Extra>();
  const std::string side_rule = "a multiple of the model's size step (32 for the shipped model) from that step to 4096";
  auto* cmd = app.add_subcommand("generate", "generate an image from a prompt (text-to-image, image-to-image, inpainting)");
  cmd->add_option("--model", o->pipeline.model_dir, "model folder (luminars.json, denoiser/, …); default: the shipped models/emoji");
  cmd->add_option("--prompt", x->prompt, "what to draw (required unless --from-png gives it)");
  cmd->add_option("--negative", x->negative, "what to steer away from (default: the empty prompt)");
  cmd->add_option("--steps", x->steps, "sampling steps (default from luminars.json, 12)")->check(CLI::Range(1, 1000));
  cmd->add_option("--cfg", x->cfg, "guidance scale (default from luminars.json, 4)")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--seed", x->seed,
                  "noise seed from 0 to " + std::to_string(kMaxSeed) + "; -1 or none: a random one, printed and recorded "
                  "(image i of a batch uses seed + i)")
      ->check(seed_value());
  cmd->add_option("--sampler", x->sampler, "euler or heun")->check(CLI::IsMember({"euler", "heun"}));
  cmd->add_option("--shift", x->shift, "time shift (>1 spends more steps near noise)")->check(CLI::Range(0.01, 100.0));
  cmd->add_option("--batch", x->batch, "images (written as a grid)")->capture_default_str()->check(CLI::Range(1, 64));
  cmd->add_option("--size", x->size, "image side in pixels: " + side_rule + "; default: the model's resolution")
      ->check(CLI::Range(1, 4096));
  cmd->add_option("--width", x->width, "image width in pixels (overrides --size): " + side_rule)->check(CLI::Range(1, 4096));
  cmd->add_option("--height", x->height, "image height in pixels (overrides --size): " + side_rule)->check(CLI::Range(1, 4096));
  cmd->add_flag("--any-size", o->any_size,
                "draw sizes the model was not trained at (luminars.json trained_sizes; others draw repeated, broken patterns), "
                "a --hires-from first pass included");
  cmd->add_option("--init-image", x->init_image, "image-to-image: start from this picture")->check(CLI::ExistingFile);
  cmd->add_option("--strength", x->strength, "image-to-image: how much to change, in (0, 1] (default 0.75)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--mask", x->mask, "inpainting: white repaints, black keeps (the init image's size)")->check(CLI::ExistingFile);
  cmd->add_option("--mask-blur", x->mask_blur, "inpainting: soft edge in pixels")->capture_default_str()->check(CLI::Range(0, 256));
  cmd->add_option("--hires-from", x->hires_from,
                  "hires fix: draw pictures larger than this many pixels (the longer side) in two passes, first at this size, "
                  "then upscaled and redrawn; 0: one pass (default from luminars.json: the shipped model draws 128 from 64)")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--hires-strength", x->hires_strength,
                  "hires fix: how much the second pass changes the upscaled picture, in (0, 1] (default from luminars.json, else 0.5)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--from-png", x->from_png,
                  "repeat a picture's recorded settings, its seed(s) included (options given override; what cannot be "
                  "restored is said on stderr)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--lora", x->loras,
                  "apply a LoRA file: FILE or FILE:WEIGHT (default weight 1; negative pushes its style away; repeatable)");
  cmd->add_option("--lora-dir", o->pipeline.lora_dir,
                  "folder of LoRAs named in the prompt as <lora:NAME:WEIGHT> (NAME.safetensors); default: the model folder's loras/")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--denoiser", o->pipeline.denoiser, "override: denoiser .safetensors")->check(CLI::ExistingFile);
  cmd->add_option("--text-encoder", o->pipeline.text_encoder, "override: text_encoder/ folder")->check(CLI::ExistingDirectory);
  cmd->add_option("--tokenizer", o->pipeline.tokenizer, "override: tokenizer/ folder")->check(CLI::ExistingDirectory);
  cmd->add_option("--vae", o->pipeline.vae, "override: vae/ folder")->check(CLI::ExistingDirectory);
  o->pipeline.device = "auto";
  cmd->add_option("--device", o->pipeline.device, "auto (CUDA when present), cpu, cuda or cuda:N")->capture_default_str();
  cmd->add_option("--out", o->out, "picture to write: .png (settings recorded in it) or .jpg/.jpeg")
      ->required()
      ->check(image_file_name());
  cmd->add_flag("--no-bf16", x->no_bf16, "sample in float32 (default: bf16 autocast on CUDA and on CPUs with native bf16)");
  cmd->add_option("--vae-tile", o->pipeline.vae_tile,
                  "decode pictures larger than this many pixels in overlapping tiles (bounded memory); 0: never")
      ->capture_default_str()
      ->check(CLI::Range(0, 65536));
  cmd->add_flag("--low-memory", o->pipeline.low_memory,
                "phones and small boards: q8_0/q4_0 weights stay packed and each block is dequantized only while it "
                "runs; VAE tiles of 192 pixels unless --vae-tile (the parts are always loaded one at a time)");
  cmd->add_flag("--quiet", x->quiet, "no progress bar");
  cmd->callback([o, x, cmd, &g] {
    apply_global(g);
    if (o->pipeline.model_dir.empty()) o->pipeline.model_dir = default_model_dir();
    if (o->pipeline.lora_dir.empty()) o->pipeline.lora_dir = default_lora_dir(o->pipeline.model_dir);
    auto& r = o->request;
    auto given = [&](const std::string& name) { return cmd->count(name) > 0; };
    if (o->pipeline.low_memory && !given("--vae-tile")) o->pipeline.vae_tile = std::min<int64_t>(o->pipeline.vae_tile, 192);
    const bool recorded_strength =
        !x->from_png.empty() && apply_from_png(x->from_png, given, folder_name(o->pipeline.model_dir), r, std::cerr);
    if (given("--prompt")) r.prompt = x->prompt;
    if (x->from_png.empty() && !given("--prompt")) throw CLI::RequiredError("--prompt");
    if (given("--negative")) r.negative = x->negative;
    if (given("--batch")) r.batch = x->batch;
    bool random = false;
    if (given("--seed") || x->from_png.empty()) {
      const auto seed = parse_seed(x->seed);
      random = !seed;
      r.seed = seed ? *seed : random_seed();
    }
    check_seed_range(r.seed, r.batch, given("--seed") || x->from_png.empty() ? "--seed" : "the seed from " + x->from_png);
    if (x->steps > 0) r.steps = x->steps;
    if (x->cfg >= 0) r.cfg_scale = x->cfg;
    if (x->shift > 0) r.shift = x->shift;
    if (!x->sampler.empty()) r.sampler = x->sampler;
    if (x->size > 0) r.width = r.height = x->size;
    if (x->width > 0) r.width = x->width;
    if (x->height > 0) r.height = x->height;
    for (const auto& l : x->loras) r.loras.push_back(parse_lora_argument(l));  // before the sizes: their buckets count as trained
    // Sides given on the command line: the model's rule, then its trained sizes, named by flag.
    if (given("--size") || given("--width") || given("--height")) {
      const SizeRule rule = model_size_rule(*o);
      for (const auto& [flag, value] : {std::pair<std::string, int64_t>{"--size", x->size}, {"--width", x->width}, {"--height", x->height}}) {
        if (!given(flag)) continue;
        if (auto error = size_error(flag, value, rule); !error.empty()) throw Error(error);
        if (auto error = untrained_size_error(flag, value, rule, "pass --any-size to draw it anyway"); !o->any_size && !error.empty())
          throw Error(error);
      }
    }
    if (!x->init_image.empty()) r.init_image = load_image(x->init_image);
    if (!x->mask.empty()) {
      if (x->init_image.empty()) throw Error("--mask needs --init-image (inpainting repaints part of a picture)");
      r.mask = load_image(x->mask);
    }
    if (x->strength >= 0) {
      if (x->init_image.empty()) throw Error("--strength needs --init-image");
      if (x->strength <= 0) throw Error("--strength must be in (0, 1], got 0");
      r.strength = x->strength;
    } else if (!x->mask.empty() && !recorded_strength) {
      r.strength = 1.0;  // inpainting repaints the masked region from noise unless asked otherwise
    }
    if (given("--mask-blur") || x->from_png.empty()) r.mask_blur = x->mask_blur;
    if (x->hires_from >= 0) {
      if (x->hires_from > 0 && !x->init_image.empty()) throw Error("--hires-from draws text-to-image pictures in two passes; drop --init-image or --hires-from");
      r.hires_from = x->hires_from;
    }
    if (x->hires_strength >= 0) {
      if (x->hires_strength <= 0) throw Error("--hires-strength must be in (0, 1], got 0");
      r.hires_strength = x->hires_strength;
    }
    o->pipeline.progress = !x->quiet;
    o->pipeline.bf16 = !x->no_bf16;
    auto res = generate(*o);
    std::cout << "wrote " << res.path << " (" << res.count << " image" << (res.count > 1 ? "s" : "") << ", " << res.width << "x"
              << res.height << ", seed" << (res.count > 1 ? "s " : " ") << r.seed;
    if (res.count > 1) std::cout << " to " << r.seed + static_cast<uint64_t>(res.count - 1);
    std::cout << (random ? ", random" : "") << ")\n";
  });
}

}  // namespace luminars::cli
