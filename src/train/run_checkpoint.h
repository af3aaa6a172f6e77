// Training checkpoints of any trained module: one folder per save, written under a temporary name
// and renamed, then RUN/checkpoints/latest is replaced atomically, so a kill at any moment leaves
// the last good one.
//   RUN/checkpoints/step-NNNNNNN/<name>.safetensors   the module's weights (name: denoiser, vae, clip)
//                                ema.safetensors      the averaged weights
//                                optimizer.safetensors, state.json (steps, stage, the run's contract)
#pragma once
#include <torch/torch.h>

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "train/adamw.h"
#include "train/ema.h"

namespace luminars {

struct RunState {
  int64_t global_step = 0;   // optimizer steps done in all stages
  int64_t stage_index = 0;   // index into the run's stages
  int64_t stage_step = 0;    // steps done in that stage
  uint64_t seed = 0;
  // Every option and model setting the run's results depend on (train/run_contract.h); null in
  // checkpoints written before the contract was recorded.
  nlohmann::json contract;
  std::string to_json() const;
  static RunState from_json(const std::string& text, const std::string& source);
};

// What a checkpoint holds of the trained module: its weights under `name`.safetensors with
// `metadata` (the denoiser's config, say) in that file and in the EMA file.
struct CheckpointedModule {
  torch::nn::Module& module;
  std::string name;
  std::map<std::string, std::string> metadata;
};

// Writes RUN/checkpoints/step-NNNNNNN/ and points `latest` at it; then removes older checkpoints
// by step number so that the newest `keep` stay (0 = keep all). The one just written is never
// removed, whatever else the folder holds.
std::string save_training_checkpoint(const std::string& run_dir, const CheckpointedModule& m, const Ema& ema,
                                     const AdamW& opt, const RunState& state, int64_t keep);

struct LoadedCheckpoint {
  std::string dir;
  RunState state;
};
// The newest complete checkpoint of a run, if any.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);
// Loads weights into the module and `ema`; the optimizer state is loaded separately (it depends on the stage).
LoadedCheckpoint load_training_checkpoint(const std::string& checkpoint_dir, const CheckpointedModule& m, Ema& ema);
void load_optimizer_state(const std::string& checkpoint_dir, AdamW& opt);

// Removes the temporary folders (RUN/checkpoints/.tmp-*) that a crash while writing a checkpoint
// left behind; returns how many.
int remove_stale_checkpoint_temporaries(const std::string& run_dir);

// Copies the checkpoint's EMA weights into the module's parameters (what a trained model ships).
void load_ema_weights(const std::string& checkpoint_dir, torch::nn::Module& module);

// Writes the checkpoint's EMA weights as a denoiser file (what generation should use).
void export_ema_denoiser(const std::string& checkpoint_dir, const std::string& out_path);

}  // namespace luminars
