#include "train/loss_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>

#include "core/error.h"

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

namespace luminars {

using nlohmann::json;
namespace colors = loss_plot_colors;

// ---------------------------------------------------------------------------------------------
// History from log records
// ---------------------------------------------------------------------------------------------

LossHistory loss_history_from_records(const std::vector<json>& records, const LossLogKeys& keys) {
  LossHistory h;
  auto number = [](const json& r, const std::string& key, double& out) {
    auto it = r.find(key);
    if (it == r.end() || !it->is_number()) return false;
    out = it->get<double>();
    return std::isfinite(out);
  };
  int64_t last_step = std::numeric_limits<int64_t>::min();
  bool have_stage = false;
  int first_stage = 0, stage = 0;
  for (const auto& r : records) {
    if (!r.is_object()) continue;
    double s = 0;
    if (!number(r, keys.step, s)) continue;
    const auto step = static_cast<int64_t>(std::llround(s));
    if (step < last_step) {  // a resumed run went back to its checkpoint
      auto later = [step](const LossPoint& p) { return p.step >= step; };
      h.train.erase(std::remove_if(h.train.begin(), h.train.end(), later), h.train.end());
      h.validation.erase(std::remove_if(h.validation.begin(), h.validation.end(), later), h.validation.end());
      h.stages.erase(std::remove_if(h.stages.begin(), h.stages.end(), [step](const StageStart& b) { return b.step >= step; }),
                     h.stages.end());
      stage = h.stages.empty() ? first_stage : h.stages.back().stage;
    }
    last_step = step;
    double v = 0;
    if (number(r, keys.stage, v)) {
      const int st = static_cast<int>(std::llround(v));
      if (!have_stage) {
        have_stage = true;
        first_stage = stage = st;
      } else if (st != stage) {
        h.stages.push_back({step, st});
        stage = st;
      }
    }
    if (number(r, keys.loss, v)) h.train.push_back({step, v});
    if (number(r, keys.val_loss, v)) h.validation.push_back({step, v});
  }
  return h;
}

std::vector<double> ema_smooth(const std::vector<double>& values, double weight) {
  std::vector<double> out(values.size());
  double acc = 0, scale = 1;
  for (std::size_t i = 0; i < values.size(); ++i) {
    acc = acc * weight + (1 - weight) * values[i];
    scale *= weight;
    out[i] = acc / (1 - scale);  // debiased: the first value is itself, not pulled towards 0
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Rasterising
// ---------------------------------------------------------------------------------------------

namespace {

struct Canvas {
  Image& img;
  void blend(int x, int y, const Rgb& c, double a) {
    if (x < 0 || y < 0 || x >= img.width || y >= img.height || a <= 0) return;
    uint8_t* p = &img.rgb[(static_cast<std::size_t>(y) * img.width + x) * 3];
    a = std::min(a, 1.0);
    for (int k = 0; k < 3; ++k) p[k] = static_cast<uint8_t>(std::lround(p[k] * (1 - a) + c[k] * a));
  }
  void fill(int x0, int y0, int x1, int y1, const Rgb& c) {  // inclusive
    for (int y = std::max(0, y0); y <= std::min(img.height - 1, y1); ++y)
      for (int x = std::max(0, x0); x <= std::min(img.width - 1, x1); ++x) blend(x, y, c, 1.0);
  }
};

// Anti-aliased coverage of one shape (a polyline, a set of dots), kept as the maximum per pixel
// and blended once, so joints where segments overlap are not drawn twice. Pixel (i, j) has its
// centre at (i, j); drawing is clipped to `clip`.
class Coverage {
 public:
  Coverage(int width, int height, PlotArea clip) : w_(width), h_(height), clip_(clip), cov_(std::size_t(width) * height, 0.f) {}

  void segment(double ax, double ay, double bx, double by, double half_width) {
    const double r = half_width + 1;
    const int x_lo = std::max(clip_.x0, static_cast<int>(std::floor(std::min(ax, bx) - r)));
    const int x_hi = std::min(clip_.x1, static_cast<int>(std::ceil(std::max(ax, bx) + r)));
    const int y_lo = std::max(clip_.y0, static_cast<int>(std::floor(std::min(ay, by) - r)));
    const int y_hi = std::min(clip_.y1, static_cast<int>(std::ceil(std::max(ay, by) + r)));
    const double dx = bx - ax, dy = by - ay, len2 = dx * dx + dy * dy;
    for (int y = y_lo; y <= y_hi; ++y)
      for (int x = x_lo; x <= x_hi; ++x) {
        double t = len2 > 0 ? ((x - ax) * dx + (y - ay) * dy) / len2 : 0.0;
        t = std::clamp(t, 0.0, 1.0);
        const double d = std::hypot(x - (ax + t * dx), y - (ay + t * dy));
        put(x, y, half_width + 0.5 - d);
      }
  }

  void dot(double cx, double cy, double radius) { segment(cx, cy, cx, cy, radius); }

  void composite(Canvas& canvas, const Rgb& color) const {
    for (int y = 0; y < h_; ++y)
      for (int x = 0; x < w_; ++x)
        if (float c = cov_[std::size_t(y) * w_ + x]; c > 0) canvas.blend(x, y, color, c);
  }

 private:
  void put(int x, int y, double c) {
    if (c <= 0) return;
    float& v = cov_[std::size_t(y) * w_ + x];
    v = std::max(v, static_cast<float>(std::min(c, 1.0)));
  }
  int w_, h_;
  PlotArea clip_;
  std::vector<float> cov_;
};

// A polyline through (x, y) pixel positions; NaN breaks it. Runs of points inside one pixel
// column become one vertical span, so a million points cost about as much as the plot's width.
void polyline(Coverage& cov, const std::vector<std::pair<double, double>>& pts, double half_width) {
  bool have_prev = false, have_span = false;
  double px = 0, py = 0;
  long span_col = 0;
  double span_lo = 0, span_hi = 0;
  auto flush = [&] {
    if (have_span) cov.segment(double(span_col), span_lo, double(span_col), span_hi, half_width);
    have_span = false;
  };
  for (const auto& [x, y] : pts) {
    if (!std::isfinite(x) || !std::isfinite(y)) {
      flush();
      have_prev = false;
      continue;
    }
    const long col = std::lround(x);
    if (!have_span || col != span_col) {
      flush();
      if (have_prev) cov.segment(px, py, x, y, half_width);
      have_span = true;
      span_col = col;
      span_lo = span_hi = y;
    } else {
      span_lo = std::min(span_lo, y);
      span_hi = std::max(span_hi, y);
    }
    px = x;
    py = y;
    have_prev = true;
  }
  flush();
  if (have_prev && pts.size() == 1) cov.dot(px, py, half_width);
}

// Text through stb_easy_font's quads, at an integer scale; (x, y) is the top left.
int text_width(const std::string& text, int scale = 1) {
  std::string copy = text;
  return stb_easy_font_width(copy.data()) * scale;
}
constexpr int kTextHeight = 7;  // rows a capital or digit covers at scale 1

void draw_text(Canvas& canvas, int x, int y, const std::string& text, const Rgb& color, int scale = 1) {
  std::string copy = text;
  std::vector<char> buffer(300 * (copy.size() + 1));
  const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer.data(), static_cast<int>(buffer.size()));
  for (int q = 0; q < quads; ++q) {
    float x_lo = 1e30f, x_hi = -1e30f, y_lo = 1e30f, y_hi = -1e30f;
    for (int v = 0; v < 4; ++v) {
      float vx, vy;
      std::memcpy(&vx, buffer.data() + (q * 4 + v) * 16, sizeof(float));
      std::memcpy(&vy, buffer.data() + (q * 4 + v) * 16 + 4, sizeof(float));
      x_lo = std::min(x_lo, vx), x_hi = std::max(x_hi, vx), y_lo = std::min(y_lo, vy), y_hi = std::max(y_hi, vy);
    }
    canvas.fill(x + static_cast<int>(std::lround(x_lo * scale)), y + static_cast<int>(std::lround(y_lo * scale)),
                x + static_cast<int>(std::lround(x_hi * scale)) - 1, y + static_cast<int>(std::lround(y_hi * scale)) - 1,
                color);
  }
}

// Ticks at 1, 2 or 5 × 10^k, about `target` of them, inside [lo, hi].
std::vector<double> nice_ticks(double lo, double hi, int target, double min_step = 0) {
  std::vector<double> ticks;
  if (!(hi > lo)) return ticks;
  const double raw = (hi - lo) / target;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double norm = raw / mag;
  double step = (norm < 1.5 ? 1 : norm < 3 ? 2 : norm < 7 ? 5 : 10) * mag;
  step = std::max(step, min_step);
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

// Decimal places that tell ticks `step` apart.
int decimals_for(double step) {
  return step > 0 ? std::clamp(static_cast<int>(-std::floor(std::log10(step) + 1e-9)), 0, 8) : 0;
}

std::string format_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string format_step(double v, bool thousands) {
  char buf[64];
  if (thousands && v != 0) std::snprintf(buf, sizeof buf, "%lldk", static_cast<long long>(std::llround(v / 1000)));
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(std::llround(v)));
  return buf;
}

std::string format_log_tick(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity(), hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  bool empty() const { return !(hi >= lo); }
};

}  // namespace

PlotArea loss_plot_area(const LossPlotOptions& o) {
  const int left = o.labels ? 72 : 12, right = 24;
  const int top = o.labels ? (o.title.empty() ? 24 : 40) : 12, bottom = o.labels ? 40 : 12;
  return {left, top, o.width - 1 - right, o.height - 1 - bottom};
}

Image render_loss_plot(const LossHistory& history, const LossPlotOptions& o) {
  if (o.width < 200 || o.height < 150)
    throw Error("loss plot: size " + std::to_string(o.width) + "x" + std::to_string(o.height) + " is under 200x150");
  if (o.smoothing >= 1) throw Error("loss plot: smoothing must be below 1, got " + std::to_string(o.smoothing));
  Image img;
  img.width = o.width;
  img.height = o.height;
  img.rgb.assign(std::size_t(o.width) * o.height * 3, 255);
  Canvas canvas{img};
  const PlotArea a = loss_plot_area(o);

  // Data ranges: losses as plotted (log10 when log_y), steps.
  auto usable = [&](double v) { return std::isfinite(v) && (!o.log_y || v > 0); };
  auto yval = [&](double v) { return o.log_y ? std::log10(v) : v; };
  Range xr, yr;
  for (const auto* series : {&history.train, &history.validation})
    for (const auto& p : *series)
      if (usable(p.loss)) {
        xr.add(static_cast<double>(p.step));
        yr.add(yval(p.loss));
      }
  const bool no_data = xr.empty();
  if (no_data) xr = {0, 1}, yr = {o.log_y ? -1.0 : 0.0, o.log_y ? 0.0 : 1.0};
  if (xr.hi == xr.lo) xr.lo -= 1, xr.hi += 1;
  if (yr.hi == yr.lo) {
    const double d = o.log_y ? 0.1 : std::max(std::abs(yr.lo) * 0.1, 1e-3);
    yr.lo -= d, yr.hi += d;
  }
  const double pad = (yr.hi - yr.lo) * 0.05;
  yr.lo -= pad, yr.hi += pad;
  auto to_x = [&](double step) { return a.x0 + (step - xr.lo) / (xr.hi - xr.lo) * (a.x1 - a.x0); };
  auto to_y = [&](double v) { return a.y1 - (v - yr.lo) / (yr.hi - yr.lo) * (a.y1 - a.y0); };

  // Ticks and grid.
  const std::vector<double> xticks = nice_ticks(xr.lo, xr.hi, std::max(2, (a.x1 - a.x0) / 110), 1.0);
  std::vector<double> yticks;  // in plotted units
  std::vector<std::string> ylabels;
  const int ytarget = std::max(2, (a.y1 - a.y0) / 60);
  if (o.log_y && std::floor(yr.hi) - std::ceil(yr.lo) >= 1) {  // at least two decades: 10^k (and 2, 5 ×)
    const bool fine = std::floor(yr.hi) - std::ceil(yr.lo) < 3;
    for (double k = std::floor(yr.lo); k <= std::ceil(yr.hi); ++k)
      for (double m : fine ? std::vector<double>{1, 2, 5} : std::vector<double>{1}) {
        const double t = k + std::log10(m);
        if (t >= yr.lo && t <= yr.hi) yticks.push_back(t), ylabels.push_back(format_log_tick(std::pow(10.0, t)));
      }
  } else if (o.log_y) {  // a narrow log range: evenly spaced values
    const auto values = nice_ticks(std::pow(10.0, yr.lo), std::pow(10.0, yr.hi), ytarget);
    const int dec = values.size() > 1 ? decimals_for(values[1] - values[0]) : 3;
    for (double v : values)
      if (v > 0) yticks.push_back(std::log10(v)), ylabels.push_back(format_fixed(v, dec));
  } else {
    yticks = nice_ticks(yr.lo, yr.hi, ytarget);
    const int dec = yticks.size() > 1 ? decimals_for(yticks[1] - yticks[0]) : 3;
    for (double v : yticks) ylabels.push_back(format_fixed(v, dec));
  }
  for (double t : xticks) {
    const int x = static_cast<int>(std::lround(to_x(t)));
    canvas.fill(x, a.y0, x, a.y1, colors::kGrid);
  }
  for (double t : yticks) {
    const int y = static_cast<int>(std::lround(to_y(t)));
    canvas.fill(a.x0, y, a.x1, y, colors::kGrid);
  }

  // Stage boundaries: vertical dashed lines, 6 on, 4 off.
  for (const auto& s : history.stages) {
    if (s.step < xr.lo || s.step > xr.hi) continue;
    const int x = static_cast<int>(std::lround(to_x(static_cast<double>(s.step))));
    for (int y = a.y0; y <= a.y1; ++y)
      if ((y - a.y0) % 10 < 6) canvas.blend(x, y, colors::kStage, 1.0);
    if (o.labels) draw_text(canvas, x + 4, a.y0 + 4, "stage " + std::to_string(s.stage), colors::kStage);
  }

  // Training loss: raw, then smoothed.
  std::vector<double> values;
  std::vector<int64_t> steps;
  for (const auto& p : history.train)
    if (usable(p.loss)) values.push_back(p.loss), steps.push_back(p.step);
  if (!values.empty()) {
    std::vector<std::pair<double, double>> pts(values.size());
    for (std::size_t i = 0; i < values.size(); ++i) pts[i] = {to_x(double(steps[i])), to_y(yval(values[i]))};
    Coverage raw(o.width, o.height, a);
    polyline(raw, pts, 0.75);
    raw.composite(canvas, colors::kTrainRaw);

    const double span = std::max(1.0, static_cast<double>(values.size()) / 30.0);
    const double weight = o.smoothing >= 0 ? o.smoothing : 1.0 - 2.0 / (span + 1.0);
    const auto smooth = ema_smooth(values, weight);
    for (std::size_t i = 0; i < values.size(); ++i) pts[i].second = to_y(yval(smooth[i]));
    Coverage line(o.width, o.height, a);
    polyline(line, pts, 1.1);
    line.composite(canvas, colors::kTrainSmooth);
  }
  // Validation: dots.
  Coverage dots(o.width, o.height, a);
  bool any_validation = false;
  for (const auto& p : history.validation)
    if (usable(p.loss)) {
      dots.dot(to_x(double(p.step)), to_y(yval(p.loss)), 3.0);
      any_validation = true;
    }
  dots.composite(canvas, colors::kValidation);

  // Axes and ticks.
  canvas.fill(a.x0 - 1, a.y0, a.x0 - 1, a.y1 + 1, colors::kAxis);
  canvas.fill(a.x0 - 1, a.y1 + 1, a.x1, a.y1 + 1, colors::kAxis);
  if (!o.labels) return img;

  // Step labels in thousands ("25k") when every tick is a multiple of 1000.
  const bool thousands =
      std::any_of(xticks.begin(), xticks.end(), [](double t) { return t != 0; }) &&
      std::all_of(xticks.begin(), xticks.end(), [](double t) { return std::fmod(std::abs(t), 1000.0) == 0; });
  for (double t : xticks) {
    const int x = static_cast<int>(std::lround(to_x(t)));
    canvas.fill(x, a.y1 + 2, x, a.y1 + 5, colors::kAxis);
    const std::string label = format_step(t, thousands);
    draw_text(canvas, x - text_width(label) / 2, a.y1 + 9, label, colors::kAxis);
  }
  for (std::size_t i = 0; i < yticks.size(); ++i) {
    const int y = static_cast<int>(std::lround(to_y(yticks[i])));
    canvas.fill(a.x0 - 5, y, a.x0 - 2, y, colors::kAxis);
    draw_text(canvas, a.x0 - 8 - text_width(ylabels[i]), y - kTextHeight / 2, ylabels[i], colors::kAxis);
  }
  draw_text(canvas, a.x1 - text_width("step"), a.y1 + 24, "step", colors::kAxis);
  draw_text(canvas, 8, a.y0 - 16, o.log_y ? "loss (log scale)" : "loss", colors::kAxis);
  if (!o.title.empty()) draw_text(canvas, (o.width - text_width(o.title, 2)) / 2, 8, o.title, colors::kAxis, 2);
  if (no_data) draw_text(canvas, (a.x0 + a.x1 - text_width("no data", 2)) / 2, (a.y0 + a.y1) / 2 - kTextHeight, "no data",
                         colors::kAxis, 2);

  // Legend, top right inside the plot.
  struct Entry {
    std::string name;
    Rgb color;
    int kind;  // 0 thin line, 1 thick line, 2 dot
  };
  std::vector<Entry> entries;
  if (!values.empty()) {
    entries.push_back({"training loss", colors::kTrainRaw, 0});
    entries.push_back({"training loss, smoothed", colors::kTrainSmooth, 1});
  }
  if (any_validation) entries.push_back({"validation loss", colors::kValidation, 2});
  if (!entries.empty()) {
    int text_w = 0;
    for (const auto& e : entries) text_w = std::max(text_w, text_width(e.name));
    const int row = 14, box_w = 36 + text_w, box_h = row * static_cast<int>(entries.size()) + 8;
    const int bx1 = a.x1 - 8, bx0 = bx1 - box_w, by0 = a.y0 + 8;
    canvas.fill(bx0, by0, bx1, by0 + box_h, colors::kBackground);
    canvas.fill(bx0, by0, bx1, by0, colors::kGrid);
    canvas.fill(bx0, by0 + box_h, bx1, by0 + box_h, colors::kGrid);
    canvas.fill(bx0, by0, bx0, by0 + box_h, colors::kGrid);
    canvas.fill(bx1, by0, bx1, by0 + box_h, colors::kGrid);
    for (std::size_t i = 0; i < entries.size(); ++i) {
      const int cy = by0 + 4 + row * static_cast<int>(i) + row / 2;
      const auto& e = entries[i];
      if (e.kind == 2) canvas.fill(bx0 + 13, cy - 2, bx0 + 17, cy + 2, e.color);
      else canvas.fill(bx0 + 6, cy - e.kind, bx0 + 26, cy + e.kind, e.color);
      draw_text(canvas, bx0 + 32, cy - kTextHeight / 2, e.name, colors::kAxis);
    }
  }
  return img;
}

void save_loss_plot(const std::string& path, const LossHistory& history, const LossPlotOptions& options) {
  save_png(path, render_loss_plot(history, options));
}

}  // namespace luminars
