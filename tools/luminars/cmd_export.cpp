// luminars export: a self-contained model folder with weights in F16/BF16/F32 or 8/4-bit blocks (pipeline/export_model.h).
#include <iostream>

#include "commands.h"
#include "core/error.h"
#include "core/files.h"
#include "pipeline/calibration.h"
#include "pipeline/export_model.h"
#include "pipeline/lora_prompt.h"

namespace luminars::cli {

void register_export(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<ExportOptions>();
  auto dtype = std::make_shared<std::string>("f16");
  auto* cmd = app.add_subcommand("export", "copy a model folder and all its parts into one self-contained folder");
  cmd->add_option("--model", o->model_dir, "model folder (RUN/model)")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--out", o->out_dir, "folder to write (replaced when complete)")->required();
  cmd->add_option("--dtype", *dtype, "weight storage: f16, bf16, f32, or q8_0 / q4_0 (linear, convolution and embedding weights in 8 or 4 bits, blocks of 32 with an F16 scale; the rest F16)")
      ->capture_default_str()
      ->check(CLI::IsMember({"f16", "bf16", "f32", "q8_0", "q4_0"}));
  auto denoiser_dtype = std::make_shared<std::string>();
  cmd->add_option("--denoiser-dtype", *denoiser_dtype,
                  "the denoiser's scheme where it differs from --dtype's, e.g. q8_0 in a q4_0 folder: larger, pictures "
                  "closer to float32 (README: 8- and 4-bit weights)")
      ->check(CLI::IsMember({"q8_0", "q4_0"}));
  auto tensor_dtypes = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--tensor-dtype", *tensor_dtypes,
                  "PATTERN=q8_0|q4_0: the weights whose names the regular expression matches in that scheme, e.g. "
                  "'mlp_in=q8_0' (repeatable, the first match decides; names like unet.up.0.blocks.0.mlp_in.weight, "
                  "text_model.encoder.layers.0.mlp.fc1.weight, decoder.up_blocks.0.resnets.0.conv1.weight)");
  cmd->add_option("--steps", o->steps, "default sampling steps written to luminars.json")->check(CLI::Range(1, 1000));
  cmd->add_option("--cfg", o->cfg_scale, "default guidance scale written to luminars.json")->check(CLI::Range(0.0, 100.0));
  cmd->add_option("--hires-from", o->hires_from,
                  "default hires fix written to luminars.json: pictures larger than this side drawn in two passes, first at it "
                  "(0: one pass; default: the source folder's)")
      ->check(CLI::Range(0, 4096));
  cmd->add_option("--hires-strength", o->hires_strength,
                  "the hires fix's second-pass strength written to luminars.json, in (0, 1] (default: the source folder's)")
      ->check(CLI::Range(0.0, 1.0));
  auto merge = std::make_shared<std::vector<std::string>>();
  cmd->add_option("--merge-lora", *merge, "merge a LoRA into the denoiser: FILE or FILE:WEIGHT (repeatable)");
  auto prompts_file = std::make_shared<std::string>();
  auto no_calibration = std::make_shared<bool>(false);
  cmd->add_option("--calibration-prompts", *prompts_file,
                  "q4_0: prompts (one a line) the model draws while its layers' inputs are measured; each input channel's "
                  "rounding error is weighted by them (default: 16 built-in prompts)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--tune-steps", o->tune_steps,
                  "q8_0/q4_0: tune the denoiser's weights for their rounding first, this many steps: the float model "
                  "draws the tuning prompts and its rounded copy learns to follow it (0: off; 800 take about 20 minutes "
                  "for models/emoji on 2 cores; README: 8- and 4-bit weights)")
      ->check(CLI::Range(int64_t{0}, int64_t{1000000}));
  cmd->add_option("--tune-lr", o->tune_lr, "the tuning's learning rate (Adam, decayed to 0 by a cosine)")->capture_default_str()->check(CLI::Range(1e-8, 1.0));
  cmd->add_option("--tune-seeds", o->tune_seeds, "the tuning's trajectories per prompt")->capture_default_str()->check(CLI::Range(1, 1000));
  auto tune_prompts = std::make_shared<std::string>();
  cmd->add_option("--tune-prompts", *tune_prompts, "the tuning's prompts, one a line, every 8th held out and only measured (default: 256 built-in emoji prompts)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--no-calibration", *no_calibration, "q4_0: weigh every value's rounding error alike (no calibration run)");
  cmd->add_option("--vae", o->vae_dir,
                  "export this VAE folder instead of the model's: a decoder fine-tuned for the same latents "
                  "(train-vae --init MODEL/vae --decoder-only); refused if its latents differ")
      ->check(CLI::ExistingDirectory);
  cmd->callback([o, dtype, denoiser_dtype, tensor_dtypes, merge, prompts_file, no_calibration, tune_prompts, &g] {
    apply_global(g);
    o->quantize = quant::scheme_from_name(*dtype);
    if (!denoiser_dtype->empty()) o->denoiser_quantize = quant::scheme_from_name(*denoiser_dtype);
    for (const auto& arg : *tensor_dtypes) {
      const auto eq = arg.rfind('=');
      const auto scheme = eq == std::string::npos ? std::nullopt : quant::scheme_from_name(arg.substr(eq + 1));
      if (!scheme || eq == 0)
        throw Error("--tensor-dtype '" + arg + "': expected PATTERN=q8_0 or PATTERN=q4_0");
      o->tensor_schemes.push_back({arg.substr(0, eq), *scheme});
    }
    // Used where the denoiser has 4-bit weights (the export decides).
    if (o->quantize && !*no_calibration) {
      o->calibration_prompts = prompts_file->empty() ? default_calibration_prompts() : read_nonblank_lines(*prompts_file);
      if (o->calibration_prompts.empty()) throw Error(*prompts_file + ": no prompts (one a line) to calibrate with");
    }
    if (!tune_prompts->empty()) {
      o->tuning_prompts = read_nonblank_lines(*tune_prompts);
      if (o->tuning_prompts.empty()) throw Error(*tune_prompts + ": no prompts (one a line) to tune on");
    }
    for (const auto& m : *merge) o->merge_loras.push_back(parse_lora_argument(m));
    o->dtype = *dtype == "bf16" ? torch::kBFloat16 : *dtype == "f32" ? torch::kFloat32 : torch::kFloat16;
    std::cout << export_model(*o).text << "\n";
  });
}

}  // namespace luminars::cli
