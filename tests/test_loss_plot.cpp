// Loss curve rendering: where the curves land in the picture, log scale, stage lines, saving,
// smoothing, and reading the history back from log records.
#include <cmath>

#include "core/error.h"
#include "core/image.h"
#include "test_support.h"
#include "train/loss_plot.h"

namespace luminars {
namespace {

using nlohmann::json;
namespace colors = loss_plot_colors;

bool is(const Image& img, int x, int y, const Rgb& c) {
  const uint8_t* p = &img.rgb[(static_cast<std::size_t>(y) * img.width + x) * 3];
  return p[0] == c[0] && p[1] == c[1] && p[2] == c[2];
}

// Rows of column x (within the plot area) that have exactly colour c.
std::vector<int> rows_with(const Image& img, const PlotArea& a, int x, const Rgb& c) {
  std::vector<int> rows;
  for (int y = a.y0; y <= a.y1; ++y)
    if (is(img, x, y, c)) rows.push_back(y);
  return rows;
}

std::size_t count_color(const Image& img, const Rgb& c) {
  std::size_t n = 0;
  for (int y = 0; y < img.height; ++y)
    for (int x = 0; x < img.width; ++x) n += is(img, x, y, c);
  return n;
}

// 0.1 + e^(−step/200) for steps 0…999 with a ±0.03 zig-zag; validation every 100 steps.
LossHistory falling_curve() {
  LossHistory h;
  for (int s = 0; s < 1000; ++s) h.train.push_back({s, 0.1 + std::exp(-s / 200.0) + (s % 2 ? 0.03 : -0.03)});
  for (int s = 100; s < 1000; s += 100) h.validation.push_back({s, 0.12 + std::exp(-s / 200.0)});
  h.stages = {{400, 2}, {800, 3}};
  return h;
}

TEST(LossPlot, FallingCurveStartsHighEndsLow) {
  LossPlotOptions o;
  o.width = 640;
  o.height = 360;
  o.title = "tiny run";
  const Image img = render_loss_plot(falling_curve(), o);
  ASSERT_EQ(img.width, 640);
  ASSERT_EQ(img.height, 360);
  const PlotArea a = loss_plot_area(o);
  const double h = a.y1 - a.y0;
  EXPECT_TRUE(is(img, 2, 2, colors::kBackground));

  // The loss range is [0.0768 (step 998), 1.125 (step 1)] padded by 5%: the start is near the top.
  const auto first = rows_with(img, a, a.x0, colors::kTrainSmooth);
  ASSERT_FALSE(first.empty());
  EXPECT_LT(first.front() - a.y0, 0.10 * h);
  const auto last = rows_with(img, a, a.x1, colors::kTrainSmooth);
  ASSERT_FALSE(last.empty());
  EXPECT_GT(last.front() - a.y0, 0.90 * h);

  // Raw loss is drawn (in its lighter colour) around the smoothed line.
  EXPECT_GT(count_color(img, colors::kTrainRaw), 300u);

  // Validation dots where the data puts them.
  const double lo = 0.1 + std::exp(-998 / 200.0) - 0.03, hi = 0.1 + std::exp(-1 / 200.0) + 0.03, pad = (hi - lo) * 0.05;
  for (int s : {100, 500, 900}) {
    const double v = 0.12 + std::exp(-s / 200.0);
    const int x = static_cast<int>(std::lround(a.x0 + s / 999.0 * (a.x1 - a.x0)));
    const int y = static_cast<int>(std::lround(a.y1 - (v - (lo - pad)) / (hi - lo + 2 * pad) * h));
    EXPECT_TRUE(is(img, x, y, colors::kValidation)) << "validation dot at step " << s;
  }

  // Stage boundaries: dashed (about 60% of the column) in the stage colour.
  for (int s : {400, 800}) {
    const int x = static_cast<int>(std::lround(a.x0 + s / 999.0 * (a.x1 - a.x0)));
    const auto dashes = rows_with(img, a, x, colors::kStage);
    EXPECT_GT(dashes.size(), 0.45 * h) << "stage line at step " << s;
    EXPECT_LT(dashes.size(), 0.65 * h) << "stage line at step " << s;
  }
  // Axes in their colour along the left and bottom edges.
  EXPECT_TRUE(is(img, a.x0 - 1, (a.y0 + a.y1) / 2, colors::kAxis));
  EXPECT_TRUE(is(img, (a.x0 + a.x1) / 2, a.y1 + 1, colors::kAxis));
}

TEST(LossPlot, LogScaleMakesAnExponentialStraight) {
  LossHistory hist;
  for (int s = 0; s <= 1000; ++s) hist.train.push_back({s, std::pow(10.0, -3.0 * s / 1000)});
  LossPlotOptions o;
  o.width = 400;
  o.height = 300;
  o.smoothing = 0;  // the smoothed line is the data
  o.labels = false;  // no legend over the middle column
  const PlotArea a = loss_plot_area(o);
  const int mid_x = (a.x0 + a.x1) / 2;  // step 500: 10^-1.5, the middle of [-3, 0] in log10
  o.log_y = true;
  auto rows = rows_with(render_loss_plot(hist, o), a, mid_x, colors::kTrainSmooth);
  ASSERT_FALSE(rows.empty());
  EXPECT_NEAR(rows.front(), (a.y0 + a.y1) / 2.0, 2.0);
  o.log_y = false;  // on a linear axis 0.0316 is near the bottom
  rows = rows_with(render_loss_plot(hist, o), a, mid_x, colors::kTrainSmooth);
  ASSERT_FALSE(rows.empty());
  EXPECT_GT(rows.front() - a.y0, 0.9 * (a.y1 - a.y0));
}

TEST(LossPlot, SavesAPngThatReloads) {
  test::TempDir dir;
  LossPlotOptions o;
  o.log_y = true;
  const LossHistory h = falling_curve();
  save_loss_plot(dir.file("loss.png"), h, o);
  const Image back = load_image(dir.file("loss.png"));
  EXPECT_EQ(back.width, 960);
  EXPECT_EQ(back.height, 540);
  EXPECT_EQ(back.rgb, render_loss_plot(h, o).rgb);
}

TEST(LossPlot, EdgeCasesRender) {
  LossPlotOptions o;
  o.width = 300;
  o.height = 200;
  const Image empty = render_loss_plot({}, o);
  EXPECT_EQ(empty.width, 300);
  EXPECT_EQ(count_color(empty, colors::kTrainSmooth), 0u);
  LossHistory one;
  one.train.push_back({7, 0.5});
  EXPECT_GT(count_color(render_loss_plot(one, o), colors::kTrainSmooth), 0u);
  // Non-finite and (on a log axis) non-positive losses are left out, not fatal.
  LossHistory odd;
  odd.train = {{0, 1.0}, {1, std::nan("")}, {2, 0.0}, {3, -1.0}, {4, 0.5}};
  o.log_y = true;
  EXPECT_GT(count_color(render_loss_plot(odd, o), colors::kTrainSmooth), 0u);
  o.width = 100;
  EXPECT_THROW(render_loss_plot(one, o), Error);
  o.width = 300;
  o.smoothing = 1.0;
  EXPECT_THROW(render_loss_plot(one, o), Error);
}

TEST(LossPlot, EmaIsDebiased) {
  const auto s = ema_smooth({1.0, 0.0, 0.0}, 0.5);
  ASSERT_EQ(s.size(), 3u);
  EXPECT_DOUBLE_EQ(s[0], 1.0);
  EXPECT_DOUBLE_EQ(s[1], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(s[2], 1.0 / 7.0);
  EXPECT_EQ(ema_smooth({3.0, 4.0}, 0.0), (std::vector<double>{3.0, 4.0}));
}

std::vector<std::pair<int64_t, double>> pairs(const std::vector<LossPoint>& v) {
  std::vector<std::pair<int64_t, double>> out;
  for (const auto& p : v) out.emplace_back(p.step, p.loss);
  return out;
}

TEST(LossPlot, HistoryFromLogRecords) {
  const std::vector<json> records = {
      {{"step", 0}, {"stage", 1}, {"loss", 1.0}},
      {{"step", 10}, {"stage", 1}, {"loss", 0.8}},
      {{"step", 10}, {"val_loss", 0.9}},
      {{"step", 20}, {"stage", 2}, {"loss", 0.7}},
      {{"step", 30}, {"stage", 2}, {"loss", nullptr}},
      {{"step", 40}, {"stage", 2}, {"loss", 0.6}, {"val_loss", 0.65}},
      {{"note", "no step"}},
      {{"step", 25}, {"stage", 2}, {"loss", 0.65}},  // resumed from a checkpoint at step 24
      {{"step", 35}, {"stage", 3}, {"loss", 0.5}},
      {{"step", "x"}, {"loss", 3.0}},
  };
  const LossHistory h = loss_history_from_records(records);
  using P = std::vector<std::pair<int64_t, double>>;
  EXPECT_EQ(pairs(h.train), (P{{0, 1.0}, {10, 0.8}, {20, 0.7}, {25, 0.65}, {35, 0.5}}));
  EXPECT_EQ(pairs(h.validation), (P{{10, 0.9}}));
  ASSERT_EQ(h.stages.size(), 2u);
  EXPECT_EQ(h.stages[0].step, 20);
  EXPECT_EQ(h.stages[0].stage, 2);
  EXPECT_EQ(h.stages[1].step, 35);
  EXPECT_EQ(h.stages[1].stage, 3);

  // A rewind to before a stage boundary removes the boundary; custom keys.
  LossLogKeys keys;
  keys.loss = "train_loss";
  const LossHistory r = loss_history_from_records(
      {{{"step", 0}, {"stage", 1}, {"train_loss", 1.0}},
       {{"step", 50}, {"stage", 2}, {"train_loss", 0.5}},
       {{"step", 40}, {"stage", 1}, {"train_loss", 0.6}},
       {{"step", 60}, {"stage", 2}, {"train_loss", 0.4}}},
      keys);
  EXPECT_EQ(pairs(r.train), (P{{0, 1.0}, {40, 0.6}, {60, 0.4}}));
  ASSERT_EQ(r.stages.size(), 1u);
  EXPECT_EQ(r.stages[0].step, 60);
}

}  // namespace
}  // namespace luminars
