// The progress bar: the formatted line (percent, counts, ETA, rate) and the redraw/log throttling,
// with an injected clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

#include "core/progress.h"

namespace luminars {
namespace {

TEST(Progress, FormatLineKnownTotal) {
  // 370 of 1000 in 12.3 s: 30.08 it/s, 630 left -> 20.9 s; 0.37 * 20 chars = 7 full blocks + 3/8.
  EXPECT_EQ(Progress::format_line("train", 370, 1000, 12.3, "it", "loss 0.123", 20),
            "train   37%|███████▍            | 370/1000 [00:12<00:20, 30.1 it/s] loss 0.123");
}

TEST(Progress, FormatLineUnknownTotalShowsCountAndRate) {
  EXPECT_EQ(Progress::format_line("scan", 370, 0, 12.3, "img"), "scan 370 img [00:12, 30.1 img/s]");
}

TEST(Progress, FormatLineSlowRateAndNoBar) {
  // 2 of 10 in 5 s: 0.4 it/s reads as 2.50 s/it; 8 left -> 20 s.
  EXPECT_EQ(Progress::format_line("x", 2, 10, 5.0, "it", "", 0), "x   20% 2/10 [00:05<00:20, 2.50 s/it]");
}

TEST(Progress, FormatLineBeforeAnyProgressHasUnknownEta) {
  EXPECT_EQ(Progress::format_line("x", 0, 10, 0.0, "it", "", 4), "x    0%|    | 0/10 [00:00<?, ? it/s]");
}

TEST(Progress, FormatLineCompleteAndOvershoot) {
  EXPECT_EQ(Progress::format_line("", 4, 4, 2.0, "img", "", 4), "100%|████| 4/4 [00:02<00:00, 2.00 img/s]");
  // More than the total: percent and bar stay at 100%, the count tells the truth.
  EXPECT_EQ(Progress::format_line("", 5, 4, 1.0, "it", "", 2), "100%|██| 5/4 [00:01<00:00, 5.00 it/s]");
}

TEST(Progress, FormatRateSignificantFigures) {
  EXPECT_NE(Progress::format_line("a", 3125, 0, 10.0).find("312 it/s"), std::string::npos);
  EXPECT_NE(Progress::format_line("a", 425, 0, 100.0).find("4.25 it/s"), std::string::npos);
}

TEST(Progress, FormatDuration) {
  EXPECT_EQ(Progress::format_duration(0), "00:00");
  EXPECT_EQ(Progress::format_duration(754.9), "12:34");
  EXPECT_EQ(Progress::format_duration(3723), "1:02:03");
  EXPECT_EQ(Progress::format_duration(-1), "?");
}

struct FakeClock {
  double now = 100.0;
  std::function<double()> fn() {
    return [this] { return now; };
  }
};

std::size_t count_of(const std::string& s, char c) { return static_cast<std::size_t>(std::count(s.begin(), s.end(), c)); }

TEST(Progress, TerminalRedrawsInPlaceAtMostTenTimesASecond) {
  FakeClock clock;
  std::ostringstream out;
  ProgressOptions o;
  o.out = &out;
  o.tty = true;
  o.clock = clock.fn();
  o.bar_width = 10;
  {
    Progress bar(1000, "train", o);  // draws 0% at once
    EXPECT_EQ(count_of(out.str(), '\r'), 1u);
    for (int i = 0; i < 1000; ++i) {  // 1000 updates over 2 s
      clock.now = 100.0 + (i + 1) / 500.0;
      bar.update();
    }
    // 2 s at >= 0.1 s between redraws: about 20 redraws, not 1000.
    const auto redraws = count_of(out.str(), '\r');
    EXPECT_GE(redraws, 18u);
    EXPECT_LE(redraws, 22u);
    EXPECT_EQ(count_of(out.str(), '\n'), 0u);
    bar.set_postfix("loss 0.123");
    bar.finish();
  }
  const std::string s = out.str();
  EXPECT_EQ(count_of(s, '\n'), 1u);  // the destructor after finish() adds nothing
  const auto last = s.substr(s.rfind('\r') + 1);
  EXPECT_EQ(last, "train  100%|██████████| 1000/1000 [00:02<00:00, 500 it/s] loss 0.123\x1b[K\n");
}

TEST(Progress, LogLinesAtEachTenPercent) {
  FakeClock clock;
  std::ostringstream out;
  ProgressOptions o;
  o.out = &out;
  o.tty = false;
  o.clock = clock.fn();
  Progress bar(100, "encode", o);
  for (int i = 0; i < 100; ++i) {  // one item a second
    clock.now += 1.0;
    bar.update();
  }
  bar.finish();
  const std::string s = out.str();
  EXPECT_EQ(count_of(s, '\r'), 0u);
  EXPECT_EQ(count_of(s, '\n'), 10u);  // 10%, 20%, …, 100%; finish() does not repeat 100%
  EXPECT_EQ(s.substr(0, s.find('\n')), "encode   10% 10/100 [00:10<01:30, 1.00 it/s]");
}

TEST(Progress, FastWorkInLogsPrintsOneLine) {
  FakeClock clock;
  std::ostringstream out;
  ProgressOptions o;
  o.out = &out;
  o.tty = false;
  o.clock = clock.fn();
  o.unit = "img";
  Progress bar(1000, "scan", o);
  for (int i = 0; i < 1000; ++i) {  // 1 s in all: less than log_min_gap_s between deciles
    clock.now += 0.001;
    bar.update();
  }
  bar.finish();
  EXPECT_EQ(out.str(), "scan  100% 1000/1000 [00:01<00:00, 1000 img/s]\n");
}

TEST(Progress, UnknownTotalInLogsPrintsAHeartbeat) {
  FakeClock clock;
  std::ostringstream out;
  ProgressOptions o;
  o.out = &out;
  o.tty = false;
  o.clock = clock.fn();
  Progress bar(0, "stream", o);
  for (int i = 0; i < 100; ++i) {
    clock.now += 1.0;
    bar.update();
  }
  bar.finish();
  const std::string s = out.str();
  EXPECT_EQ(count_of(s, '\n'), 4u);  // at 30 s, 60 s, 90 s and the end
  EXPECT_EQ(s.substr(0, s.find('\n')), "stream 30 it [00:30, 1.00 it/s]");
  EXPECT_EQ(bar.count(), 100);
}

}  // namespace
}  // namespace luminars
