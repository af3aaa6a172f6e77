// The one training loop every model of the project shares (denoiser, VAE, CLIP): stages with
// parameter groups, AdamW, warm-up and decay, gradient accumulation and clipping, EMA, bf16
// autocast on CUDA, atomic checkpoints with bit-exact --resume, Ctrl-C save, progress line,
// log.jsonl, loss plot, validation and sample grids. The model's part is a TrainTask.
//   RUN/checkpoints/step-NNNNNNN/   see train/run_checkpoint.h; RUN/checkpoints/latest
//   RUN/log.jsonl, RUN/loss.png, RUN/samples/step-NNNNNNN.png
#pragma once
#include <torch/torch.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/adamw.h"
#include "train/distributed.h"
#include "train/schedule.h"
#include "train/train_task.h"

namespace luminars {

struct StagePlan {
  int stage = 1;         // passed to TrainTask::trainable
  int64_t steps = 1000;  // optimizer steps
  double lr = 1e-4;
};

struct LoopOptions {
  std::string out_dir;
  std::vector<StagePlan> stages = std::vector<StagePlan>(1);  // one stage of StagePlan defaults
  int64_t grad_accum = 1;
  double beta1 = 0.9, beta2 = 0.999, adam_eps = 1e-8, weight_decay = 0.01;
  int64_t warmup = 100;                // linear warm-up steps at the start of every stage
  LrDecay decay = LrDecay::Constant;
  double min_lr_ratio = 0.1;
  double clip_grad = 1.0;              // max global gradient norm; 0 = off
  double ema_decay = 0.999;
  int64_t checkpoint_every = 500, keep_checkpoints = 3;
  int64_t validate_every = 250, sample_every = 500;
  uint64_t seed = 0;
  torch::Device device = torch::kCPU;
  bool bf16 = true;                    // autocast to bf16 on CUDA (ignored on the CPU unless cpu_bf16)
  bool cpu_bf16 = false;               // bf16 autocast on the CPU too, where it has native bf16
  bool resume = false;                 // continue from the run's latest checkpoint
  bool overwrite = false;              // start afresh in a run folder that holds an earlier run
  int64_t stop_after = 0;              // stop (with a checkpoint) after this many steps in this run
  int64_t skip_nonfinite = 0;          // steps in a row whose loss is NaN or infinite that are skipped
                                       // (no update) before training stops; 0 = stop at the first
  bool quiet = false;                  // no progress output
  // Data-parallel training over these ranks (train/distributed.h); null: this process alone.
  // Every rank runs the loop on its part of each batch; rank 0 alone reads and writes the run
  // folder (checkpoints, log, samples) and hands its weights and state to the others. The ranks
  // compare their contracts before starting; rank 0's own work runs in ProcessGroup::rank0_section.
  std::shared_ptr<ProcessGroup> group;
};

struct TrainResult {
  int64_t global_step = 0;
  bool finished = false;      // every stage done (false when stopped early)
  int64_t skipped_steps = 0;  // steps skipped for a NaN or infinite loss (LoopOptions::skip_nonfinite)
  double last_loss = 0;
  std::string checkpoint;     // newest checkpoint folder (rank 0 of a data-parallel run; empty on the others)
};

// Checks the options alone (stage list, counts, ranges); throws naming the option at fault.
void check_loop_options(const LoopOptions& options);

// Makes RUN ready for a run: creates it; an existing folder with anything in it is refused unless
// `resume` (then its checkpoints continue) or `overwrite` (then the files of the earlier run —
// checkpoints/, samples/, log.jsonl, loss.png — are removed first).
void prepare_run_folder(const LoopOptions& options);

// Trains `task` through every stage from where the run folder's latest checkpoint left off (with
// `resume`, which refuses a checkpoint whose contract differs from this run's outside the fields
// that may change) or from the module's current weights. Every stage ends with a checkpoint of its
// last weights, even when its last step was skipped; stale temporary checkpoint folders go at the start. A stop request (SIGINT, SIGTERM, stop_after)
// finishes the step, saves a checkpoint and returns with finished = false. With `group`, every
// rank must call it with the same options; a stop request to any rank stops them all at the same
// step.
TrainResult run_training(TrainTask& task, const LoopOptions& options);

// The run's contract (train/run_contract.h): the loop's options (named like the flags: "lr",
// "lr-schedule", "grad-accum", ...; "threads" the intra-op threads) and the task's own, flat.
// Recorded in every checkpoint, compared on resume and between ranks.
nlohmann::json training_contract(const TrainTask& task, const LoopOptions& options);

}  // namespace luminars
