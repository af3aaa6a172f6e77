#include "train/training_log.h"

#include <cstdio>
#include <filesystem>
#include <memory>

#include "core/progress.h"
#include "train/jsonl_log.h"
#include "train/loss_plot.h"

namespace luminars {

namespace fs = std::filesystem;

struct TrainingLog::Impl {
  std::string run_dir, what;
  std::unique_ptr<JsonlWriter> writer;
  std::vector<nlohmann::json> records;  // this run's history, resumed runs included
  std::unique_ptr<Progress> bar;
};

TrainingLog::TrainingLog(const std::string& run_dir, const std::string& what) : impl_(new Impl) {
  impl_->run_dir = run_dir;
  impl_->what = what;
  const auto path = (fs::path(run_dir) / "log.jsonl").string();
  if (fs::exists(path)) impl_->records = read_jsonl(path).records;
  impl_->writer = std::make_unique<JsonlWriter>(path);
}

TrainingLog::~TrainingLog() { delete impl_; }

void TrainingLog::train_step(int64_t step, int stage, double loss, double lr, double grad_norm, double img_per_s,
                             const Metrics& parts) {
  nlohmann::json r{{"type", "train"}, {"step", step},           {"stage", stage},        {"loss", loss},
                   {"lr", lr},        {"grad_norm", grad_norm}, {"img_per_s", img_per_s}};
  for (const auto& [name, value] : parts) r[name] = value;
  impl_->writer->write(r);
  impl_->records.push_back(std::move(r));
}

void TrainingLog::validation(int64_t step, int stage, double val_loss, const Metrics& metrics) {
  nlohmann::json r{{"type", "val"}, {"step", step}, {"stage", stage}, {"val_loss", val_loss}};
  for (const auto& [name, value] : metrics) r[name] = value;
  impl_->writer->write(r);
  impl_->records.push_back(std::move(r));
}

void TrainingLog::progress(int stage, int64_t step, int64_t steps_done, int64_t steps_total, double loss,
                           double img_per_s) {
  if (!impl_->bar) {
    ProgressOptions o;
    o.unit = "step";
    impl_->bar = std::make_unique<Progress>(steps_total, "train " + impl_->what, o);
  }
  char postfix[160];
  std::snprintf(postfix, sizeof postfix, "stage %d step %lld loss %.4f %.1f img/s", stage, static_cast<long long>(step),
                loss, img_per_s);
  impl_->bar->set_postfix(postfix);
  impl_->bar->update(steps_done - impl_->bar->count());
}

void TrainingLog::plot() {
  LossPlotOptions o;
  o.log_y = true;
  o.title = "LuminaRS " + impl_->what + " training loss";
  save_loss_plot((fs::path(impl_->run_dir) / "loss.png").string(), loss_history_from_records(impl_->records), o);
}

void TrainingLog::finish() {
  if (impl_->bar) impl_->bar->finish();
  plot();
}

}  // namespace luminars
