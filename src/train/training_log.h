// What a training run tells: RUN/log.jsonl (one JSON object per step / validation), a progress
// line on stderr (stage, step, loss, img/s, ETA) and RUN/loss.png.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace luminars {

// Named numbers logged beside a loss ("kl", "psnr", "i2t_top1", ...).
using Metrics = std::vector<std::pair<std::string, double>>;

class TrainingLog {
 public:
  // Opens RUN/log.jsonl for appending; earlier records (a resumed run) are read back for the plot.
  // `what` names the model in the progress line and the plot title ("denoiser", "vae", "clip").
  explicit TrainingLog(const std::string& run_dir, const std::string& what = "denoiser");
  ~TrainingLog();
  void train_step(int64_t step, int stage, double loss, double lr, double grad_norm, double img_per_s,
                  const Metrics& parts = {});
  // The held-out loss (plotted) and any other held-out figures.
  void validation(int64_t step, int stage, double val_loss, const Metrics& metrics = {});
  // steps_done/steps_total count this run's steps (the bar measures time and ETA itself).
  void progress(int stage, int64_t step, int64_t steps_done, int64_t steps_total, double loss, double img_per_s);
  void plot();    // rewrites RUN/loss.png
  void finish();  // final plot, ends the progress line

 private:
  struct Impl;
  Impl* impl_;
};

}  // namespace luminars
