// luminars train-lora: a LoRA of a model folder's denoiser from a captioned image folder.
#include <iostream>
#include <sstream>

#include "cli_validators.h"
#include "commands.h"
#include "core/device.h"
#include "core/error.h"
#include "pipeline/lora_trainer.h"

namespace luminars::cli {

void register_train_lora(CLI::App& app, GlobalOptions& g) {
  auto o = std::make_shared<LoraTrainOptions>();
  struct Extra {
    std::string device = "auto", targets = "attn,mlp";
    double alpha = 0;
  };
  auto x = std::make_shared<Extra>();
  auto* cmd = app.add_subcommand("train-lora", "teach a model a style or subject from a captioned image folder (a LoRA file)");
  cmd->add_option("--model", o->model_dir, "model folder whose denoiser the LoRA adapts")->required()->check(CLI::ExistingDirectory);
  cmd->add_option("--data", o->data_dir, "image folder (metadata.jsonl or .txt captions), or a cache from `luminars prepare`")
      ->required()
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--out", o->out_dir, "folder to write: cache/, run/ (checkpoints, samples/) and NAME.safetensors")->required();
  cmd->add_option("--name", o->name, "the LoRA's name (its file NAME.safetensors); default: the --out folder's name");
  cmd->add_option("--steps", o->steps, "optimizer steps (default: 4 per picture, 200 to 1000)")->check(CLI::Range(1, 10000000));
  cmd->add_option("--rank", o->lora.rank, "adapter rank")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--alpha", x->alpha, "adapter alpha (scale alpha/rank; default: the rank)")->check(CLI::PositiveNumber);
  cmd->add_option("--dropout", o->lora.dropout, "dropout on the adapters' inputs")->capture_default_str()->check(CLI::Range(0.0, 0.95));
  cmd->add_option("--targets", x->targets, "layers adapted, comma-separated: attn, mlp, ada, conv, text (the text encoder's attention)")->capture_default_str();
  cmd->add_option("--lr", o->lr, "learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  cmd->add_option("--batch", o->batch_size, "images per step")->capture_default_str()->check(CLI::Range(1, 4096));
  cmd->add_option("--warmup", o->warmup, "linear warm-up steps (-1: a tenth of the steps, at most 100)")->capture_default_str()->check(CLI::Range(-1, 1000000));
  cmd->add_option("--caption-dropout", o->caption_dropout, "probability of the empty prompt")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--trigger", o->trigger, "word put before every caption and recorded in the LoRA file");
  cmd->add_flag("--flip", o->flip, "also train on every picture mirrored left-right");
  cmd->add_flag("--buckets", o->buckets,
                "aspect-ratio buckets: pictures that are not square trained near their own shape instead of cropped square");
  cmd->add_option("--checkpoint-every", o->checkpoint_every, "steps between checkpoints")->capture_default_str()->check(CLI::Range(1, 100000000));
  cmd->add_option("--keep-checkpoints", o->keep_checkpoints, "checkpoints kept")->capture_default_str()->check(CLI::Range(1, 1000));
  cmd->add_option("--sample-every", o->sample_every, "steps between sample grids (0: at the end)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", o->seed, "seed of the adapters, data order, noise and t")->capture_default_str()->check(fixed_seed());
  cmd->add_option("--device", x->device, "auto, cpu or cuda")->capture_default_str();
  auto* resume = cmd->add_flag("--resume", o->resume, "continue from the run's latest checkpoint");
  cmd->add_flag("--overwrite", o->overwrite, "start afresh in a folder that holds an earlier run")->excludes(resume);
  cmd->add_option("--stop-after", o->stop_after, "stop (with a checkpoint) after this many steps")->check(CLI::NonNegativeNumber);
  cmd->add_flag("--quiet", o->quiet, "no progress output");
  cmd->callback([o, x, &g] {
    apply_global(g);
    o->device = device_from_name(x->device);
    o->lora.alpha = x->alpha > 0 ? x->alpha : static_cast<double>(o->lora.rank);
    o->lora.groups.clear();
    std::stringstream list(x->targets);
    for (std::string t; std::getline(list, t, ',');)
      if (!t.empty()) o->lora.groups.push_back(t);
    const auto r = train_lora(*o);
    if (!r.finished) {
      std::cout << "stopped after " << r.steps << " steps; continue with --resume\n";
      return;
    }
    std::cout << "trained " << r.steps << " steps on " << r.images << " pictures, final loss " << r.last_loss << "; wrote " << r.lora_path
              << "\n";
  });
}

}  // namespace luminars::cli
