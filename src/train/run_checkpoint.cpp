#include "train/run_checkpoint.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/module_state.h"
#include "core/tensor_io.h"
#include "model/checkpoint.h"

namespace luminars {

namespace fs = std::filesystem;

std::string RunState::to_json() const {
  nlohmann::ordered_json j;
  j["global_step"] = global_step;
  j["stage_index"] = stage_index;
  j["stage_step"] = stage_step;
  j["seed"] = seed;
  return j.dump(1);
}

RunState RunState::from_json(const std::string& text, const std::string& source) {
  RunState s;
  try {
    auto j = nlohmann::json::parse(text);
    s.global_step = j.at("global_step");
    s.stage_index = j.at("stage_index");
    s.stage_step = j.at("stage_step");
    s.seed = j.at("seed");
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": invalid training state: " + e.what());
  }
  return s;
}

std::string save_training_checkpoint(const std::string& run_dir, LuminaRS& model, const Ema& ema, const AdamW& opt,
                                     const RunState& state, int64_t keep) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  fs::create_directories(root);
  char name[64];
  std::snprintf(name, sizeof name, "step-%07lld", static_cast<long long>(state.global_step));
  const fs::path final_dir = root / name, tmp = root / (std::string(".tmp-") + name);
  fs::remove_all(tmp);
  fs::create_directories(tmp);
  save_denoiser(model, (tmp / "denoiser.safetensors").string());
  save_tensors((tmp / "ema.safetensors").string(), ema.weights(),
               {{kConfigMetadataKey, model->config().to_json()}}, torch::kFloat32);
  save_tensors((tmp / "optimizer.safetensors").string(), opt.state());
  write_file_atomic((tmp / "state.json").string(), [&](std::ostream& o) { o << state.to_json() << "\n"; });
  fs::remove_all(final_dir);
  fs::rename(tmp, final_dir);
  write_file_atomic((root / "latest").string(), [&](std::ostream& o) { o << name << "\n"; });
  // Prune older checkpoints, newest `keep` stay.
  std::vector<fs::path> all;
  for (const auto& e : fs::directory_iterator(root))
    if (e.is_directory() && e.path().filename().string().rfind("step-", 0) == 0) all.push_back(e.path());
  std::sort(all.begin(), all.end());
  for (std::size_t i = 0; keep > 0 && i + static_cast<std::size_t>(keep) < all.size(); ++i) fs::remove_all(all[i]);
  return final_dir.string();
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  if (!fs::exists(root / "latest")) return std::nullopt;
  std::string name = read_file((root / "latest").string());
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  const auto dir = root / name;
  if (!fs::exists(dir / "state.json")) throw Error((root / "latest").string() + " points at a missing checkpoint " + dir.string());
  return dir.string();
}

LoadedCheckpoint load_training_checkpoint(const std::string& dir, LuminaRS& model, Ema& ema) {
  const fs::path d(dir);
  load_denoiser_weights(model, (d / "denoiser.safetensors").string());
  ema.load(load_tensors((d / "ema.safetensors").string(), torch::kFloat32), (d / "ema.safetensors").string());
  return {dir, RunState::from_json(read_file((d / "state.json").string()), (d / "state.json").string())};
}

void load_optimizer_state(const std::string& dir, AdamW& opt) {
  const auto file = (fs::path(dir) / "optimizer.safetensors").string();
  opt.load_state(load_tensors(file), file);
}

}  // namespace luminars

namespace luminars {

void export_ema_denoiser(const std::string& dir, const std::string& out_path) {
  const auto file = (fs::path(dir) / "ema.safetensors").string();
  LuminaRS model(read_denoiser_config(file));
  load_module_state(*model, load_tensors(file, torch::kFloat32), file);
  save_denoiser(model, out_path);
}

}  // namespace luminars
