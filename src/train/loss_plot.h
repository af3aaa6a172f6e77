// Loss curves as PNG: training loss (raw and smoothed), validation points and stage boundaries
// against the step, drawn by a small rasteriser into a core/image.h Image.
#pragma once
#include <array>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/image.h"

namespace luminars {

struct LossPoint {
  int64_t step;
  double loss;
};

struct StageStart {
  int64_t step;
  int stage;
};

struct LossHistory {
  std::vector<LossPoint> train;
  std::vector<LossPoint> validation;
  std::vector<StageStart> stages;  // where each stage after the first begins
};

struct LossLogKeys {
  std::string step = "step", loss = "loss", val_loss = "val_loss", stage = "stage";
};

// The history in a run's JSONL log records (see train/jsonl_log.h): `step` with `loss` (training)
// and/or `val_loss` (validation); a change of `stage` marks a boundary. Records without a numeric
// step are ignored, null or non-numeric losses too. When a run resumes from a checkpoint older
// than its last log lines, the step goes back: points logged at or after that step before the
// rewind are dropped, so the curve shows the run that continued.
LossHistory loss_history_from_records(const std::vector<nlohmann::json>& records, const LossLogKeys& keys = {});

struct LossPlotOptions {
  int width = 960, height = 540;  // at least 200×150
  bool log_y = false;             // logarithmic loss axis (non-positive losses are left out)
  double smoothing = -1;          // EMA weight of the smoothed line in [0, 1); < 0: from the point count
  bool labels = true;             // tick numbers, axis names, legend
  std::string title;              // drawn above the plot when not empty
};

using Rgb = std::array<uint8_t, 3>;
namespace loss_plot_colors {
inline constexpr Rgb kBackground{255, 255, 255};
inline constexpr Rgb kGrid{228, 228, 228};
inline constexpr Rgb kAxis{64, 64, 64};
inline constexpr Rgb kTrainRaw{170, 199, 232};
inline constexpr Rgb kTrainSmooth{31, 97, 170};
inline constexpr Rgb kValidation{230, 105, 20};
inline constexpr Rgb kStage{140, 140, 140};
}  // namespace loss_plot_colors

// The plot area in pixels, inclusive: data from the first to the last step spans x0..x1, the loss
// range (padded by 5%) spans y1 (bottom) to y0 (top).
struct PlotArea {
  int x0, y0, x1, y1;
};
PlotArea loss_plot_area(const LossPlotOptions& options);

// The training line's smoothing: a debiased exponential moving average, as TensorBoard draws it.
std::vector<double> ema_smooth(const std::vector<double>& values, double weight);

Image render_loss_plot(const LossHistory& history, const LossPlotOptions& options = {});
void save_loss_plot(const std::string& path, const LossHistory& history, const LossPlotOptions& options = {});

}  // namespace luminars
