#include "loop_flags.h"

#include "cli_validators.h"
#include "core/device.h"

namespace luminars::cli {

void add_loop_flags(CLI::App* cmd, const std::shared_ptr<LoopFlags>& f) {
  auto& l = f->loop;
  cmd->add_option("--out", l.out_dir, "run folder: checkpoints, log.jsonl, loss.png, samples/ and the trained model")->required();
  cmd->add_option("--steps", f->steps, "optimizer steps")->capture_default_str()->check(CLI::Range(int64_t{1}, int64_t{1} << 40));
  cmd->add_option("--lr", f->lr, "peak learning rate")->capture_default_str()->check(CLI::Range(1e-9, 1.0));
  cmd->add_option("--batch", f->batch, "images per step")->capture_default_str()->check(CLI::Range(1, 65536));
  cmd->add_option("--warmup", l.warmup, "linear warm-up steps")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--lr-schedule", f->decay, "after warm-up: constant or cosine")->capture_default_str();
  cmd->add_option("--clip-grad", l.clip_grad, "max gradient norm (0 = off)")->capture_default_str()->check(CLI::NonNegativeNumber);
  cmd->add_option("--weight-decay", l.weight_decay, "AdamW weight decay")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--ema", l.ema_decay, "EMA decay of the weights")->capture_default_str()->check(CLI::Range(0.0, 0.999999));
  cmd->add_option("--checkpoint-every", l.checkpoint_every, "steps between checkpoints")->capture_default_str();
  cmd->add_option("--keep-checkpoints", l.keep_checkpoints, "checkpoints kept")->capture_default_str();
  cmd->add_option("--validate-every", l.validate_every, "steps between held-out figures (0 = off)")->capture_default_str();
  cmd->add_option("--sample-every", l.sample_every, "steps between picture grids (0 = off)")->capture_default_str();
  cmd->add_option("--val-fraction", f->val_fraction, "held-out fraction of the images")->capture_default_str()->check(CLI::Range(0.0, 0.9));
  cmd->add_option("--seed", l.seed, "seed of weights, data order and noise")->capture_default_str()->check(fixed_seed());
  cmd->add_option("--device", f->device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_flag("--no-bf16", f->no_bf16, "no bf16 autocast on CUDA");
  cmd->add_flag("--cpu-bf16", l.cpu_bf16, "bf16 autocast on the CPU too, where it has native bf16 (AVX-512 BF16, AMX)");
  auto* resume = cmd->add_flag("--resume", l.resume, "continue from the run's latest checkpoint");
  cmd->add_flag("--overwrite", l.overwrite, "start afresh in a run folder that holds an earlier run")->excludes(resume);
  cmd->add_option("--stop-after", l.stop_after, "stop (with a checkpoint) after this many steps");
  cmd->add_option("--skip-nonfinite", l.skip_nonfinite,
                  "steps in a row with a NaN or infinite loss to skip (no update) before stopping; 0: stop at the first")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  add_distributed_flags(cmd, f->dist);
}

LoopOptions loop_options_of(const LoopFlags& f) {
  LoopOptions l = f.loop;
  l.stages = {StagePlan{1, f.steps, f.lr}};
  l.device = device_from_name(f.device);
  l.bf16 = !f.no_bf16;
  l.decay = lr_decay_from_name(f.decay);
  return l;
}

}  // namespace luminars::cli
