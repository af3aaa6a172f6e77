#include "train/run_checkpoint.h"

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/format_version.h"
#include "core/json_fields.h"
#include "core/weight_loader.h"
#include "core/safetensors.h"
#include "core/tensor_io.h"
#include "model/checkpoint.h"

namespace luminars {

namespace fs = std::filesystem;

std::string RunState::to_json() const {
  nlohmann::ordered_json j;
  j[kFormatVersionKey] = kFormatVersion;
  j["global_step"] = global_step;
  j["stage_index"] = stage_index;
  j["stage_step"] = stage_step;
  j["seed"] = seed;
  j["contract"] = contract;
  return j.dump(1);
}

RunState RunState::from_json(const std::string& text, const std::string& source) {
  RunState s;
  try {
    auto j = json_fields::parse(text, source);
    read_format_version(j, source);
    s.global_step = j.at("global_step");
    s.stage_index = j.at("stage_index");
    s.stage_step = j.at("stage_step");
    s.seed = j.at("seed");
    if (j.contains("contract") && !j["contract"].is_null()) {
      if (!j["contract"].is_object()) throw Error(source + ": invalid training state: 'contract' is not an object");
      s.contract = j["contract"];
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(source + ": invalid training state: " + e.what());
  }
  return s;
}

namespace {

// The step number of a "step-NNNNNNN" folder name; -1 for other names.
int64_t checkpoint_step(const std::string& name) {
  if (name.rfind("step-", 0) != 0 || name.size() == 5) return -1;
  int64_t n = 0;
  for (std::size_t i = 5; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || n > (int64_t{1} << 50)) return -1;
    n = n * 10 + (name[i] - '0');
  }
  return n;
}

// Fault injection for the reliability tests: LUMINARS_KILL_IN_CHECKPOINT=N makes the process
// SIGKILL itself halfway through writing checkpoint N, as a power cut or the OOM killer would.
void kill_here_if_asked(int64_t step) {
  const char* at = std::getenv("LUMINARS_KILL_IN_CHECKPOINT");
  if (at && *at && std::strtoll(at, nullptr, 10) == step) std::raise(SIGKILL);
}

}  // namespace

std::string save_training_checkpoint(const std::string& run_dir, const CheckpointedModule& m, const Ema& ema,
                                     const AdamW& opt, const RunState& state, int64_t keep) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  fs::create_directories(root);
  char name[64];
  std::snprintf(name, sizeof name, "step-%07lld", static_cast<long long>(state.global_step));
  const fs::path final_dir = root / name, tmp = root / (std::string(".tmp-") + name),
                 aside = root / (std::string(".old-") + name);
  // 1. Every file into a temporary folder (each written atomically and fsynced), the folder fsynced.
  //    On any failure (a full disk, say) the temporary folder goes and the earlier checkpoints,
  //    which nothing has touched yet, stay as they were.
  try {
    fs::remove_all(tmp);
    fs::create_directories(tmp);
    auto metadata = m.metadata;
    metadata[kFormatVersionKey] = std::to_string(kFormatVersion);
    save_tensors((tmp / (m.name + ".safetensors")).string(), module_state(m.module), metadata, torch::kFloat32);
    kill_here_if_asked(state.global_step);
    save_tensors((tmp / "ema.safetensors").string(), ema.weights(), metadata, torch::kFloat32);
    save_tensors((tmp / "optimizer.safetensors").string(), opt.state());
    write_file_atomic((tmp / "state.json").string(), [&](std::ostream& o) { o << state.to_json() << "\n"; });
    sync_directory(tmp.string());
  } catch (const std::exception& e) {
    std::error_code ec;
    fs::remove_all(tmp, ec);
    const auto previous = latest_checkpoint(run_dir);
    throw Error("cannot save checkpoint " + final_dir.string() + ": " + e.what() + "; " +
                (previous ? "the previous checkpoint " + *previous + " is intact" : std::string("no earlier checkpoint exists")));
  }
  // 2. In place of a checkpoint of the same step: the old one is renamed aside, not deleted, until
  //    the new one is in place; then `latest` points at it.
  if (fs::exists(final_dir)) {
    fs::remove_all(aside);
    fs::rename(final_dir, aside);
  }
  fs::rename(tmp, final_dir);
  sync_directory(root.string());
  write_file_atomic((root / "latest").string(), [&](std::ostream& o) { o << name << "\n"; });
  fs::remove_all(aside);
  // Prune by step number, never the checkpoint just written.
  std::vector<std::pair<int64_t, fs::path>> older;
  for (const auto& e : fs::directory_iterator(root)) {
    const auto step = checkpoint_step(e.path().filename().string());
    if (e.is_directory() && step >= 0 && e.path() != final_dir) older.emplace_back(step, e.path());
  }
  std::sort(older.begin(), older.end());
  for (std::size_t i = 0; keep > 0 && i + static_cast<std::size_t>(keep - 1) < older.size(); ++i) fs::remove_all(older[i].second);
  return final_dir.string();
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  if (!fs::exists(root / "latest")) return std::nullopt;
  std::string name = read_file((root / "latest").string());
  while (!name.empty() && (name.back() == '\n' || name.back() == ' ')) name.pop_back();
  const auto dir = root / name;
  if (!fs::exists(dir / "state.json")) {
    // Killed between renaming a checkpoint of the same step aside and putting its successor in place.
    const auto aside = root / (".old-" + name);
    if (fs::exists(aside / "state.json")) return aside.string();
    throw Error((root / "latest").string() + " points at a missing checkpoint " + dir.string());
  }
  return dir.string();
}

LoadedCheckpoint load_training_checkpoint(const std::string& dir, const CheckpointedModule& m, Ema& ema) {
  const fs::path d(dir);
  const auto weights = (d / (m.name + ".safetensors")).string();
  if (!fs::exists(weights)) throw Error(dir + ": no " + m.name + ".safetensors (a checkpoint of another kind of run?)");
  const safetensors::Reader file(weights);
  read_format_version(file.metadata(), weights);
  load_module_state(m.module, file);
  ema.load(safetensors::Reader((d / "ema.safetensors").string()));
  return {dir, RunState::from_json(read_file((d / "state.json").string()), (d / "state.json").string())};
}

void load_optimizer_state(const std::string& dir, AdamW& opt) {
  const auto file = (fs::path(dir) / "optimizer.safetensors").string();
  opt.load_state(safetensors::Reader(file));
}

int remove_stale_checkpoint_temporaries(const std::string& run_dir) {
  const fs::path root = fs::path(run_dir) / "checkpoints";
  if (!fs::is_directory(root)) return 0;
  std::vector<fs::path> stale;
  for (const auto& e : fs::directory_iterator(root))
    if (e.path().filename().string().rfind(".tmp-", 0) == 0) stale.push_back(e.path());
  for (const auto& p : stale) fs::remove_all(p);
  return static_cast<int>(stale.size());
}

void load_ema_weights(const std::string& dir, torch::nn::Module& module) {
  const auto file = (fs::path(dir) / "ema.safetensors").string();
  Ema ema(module, 0.0);  // the EMA holds parameters only (no buffers): read it as the trainer wrote it
  ema.load(safetensors::Reader(file));
  ema.copy_to(module);
}

void export_ema_denoiser(const std::string& dir, const std::string& out_path) {
  const auto file = (fs::path(dir) / "ema.safetensors").string();
  LuminaRS model(read_denoiser_config(file));
  load_module_state(*model, safetensors::Reader(file));
  save_denoiser(model, out_path);
}

}  // namespace luminars
