// The flags every from-scratch trainer shares with `luminars train` (--steps, --batch, --lr,
// --resume, --overwrite, --device, --seed, --val-fraction, checkpoints, validation, samples), so
// train-vae and train-clip read them the same way.
#pragma once
#include <memory>
#include <string>

#include "commands.h"
#include "distributed_flags.h"
#include "train/train_loop.h"

namespace luminars::cli {

struct LoopFlags {
  LoopOptions loop;
  int64_t steps = 2000;
  double lr = 1e-4;
  int64_t batch = 32;
  double val_fraction = 0.05;
  std::string device = "auto", decay = "cosine";
  bool no_bf16 = false;
  DistFlags dist;
};

// Adds the shared flags to `cmd`, with these defaults (the data-parallel ones included).
void add_loop_flags(CLI::App* cmd, const std::shared_ptr<LoopFlags>& f);
// The loop options the flags give (device resolved, one stage).
LoopOptions loop_options_of(const LoopFlags& f);

}  // namespace luminars::cli
