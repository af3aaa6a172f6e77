// Training checkpoints: one folder per save, written under a temporary name and renamed, then
// RUN/checkpoints/latest is replaced atomically, so a kill at any moment leaves the last good one.
#pragma once
#include <optional>
#include <string>

#include "model/luminars.h"
#include "train/adamw.h"
#include "train/ema.h"

namespace luminars {

struct RunState {
  int64_t global_step = 0;   // optimizer steps done in all stages
  int64_t stage_index = 0;   // index into TrainOptions::stages
  int64_t stage_step = 0;    // steps done in that stage
  uint64_t seed = 0;
  std::string to_json() const;
  static RunState from_json(const std::string& text, const std::string& source);
};

// Writes RUN/checkpoints/step-NNNNNNN/ and points `latest` at it; removes all but the newest `keep`.
std::string save_training_checkpoint(const std::string& run_dir, LuminaRS& model, const Ema& ema, const AdamW& opt,
                                     const RunState& state, int64_t keep);

struct LoadedCheckpoint {
  std::string dir;
  RunState state;
};
// The newest complete checkpoint of a run, if any.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);
// Loads weights into `model` and `ema`; the optimizer state is loaded separately (it depends on the stage).
LoadedCheckpoint load_training_checkpoint(const std::string& checkpoint_dir, LuminaRS& model, Ema& ema);
void load_optimizer_state(const std::string& checkpoint_dir, AdamW& opt);

// Writes the checkpoint's EMA weights as a denoiser file (what generation should use).
void export_ema_denoiser(const std::string& checkpoint_dir, const std::string& out_path);

}  // namespace luminars
