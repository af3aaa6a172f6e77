// A tqdm-like progress bar for long work, redrawn in place on a terminal and throttled to short
// plain lines in logs.
#pragma once
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <ostream>
#include <string>

namespace luminars {

struct ProgressOptions {
  std::string unit = "it";           // "it", "img", "step", …
  int bar_width = 20;                // characters of the bar on a terminal
  double redraw_interval_s = 0.1;    // terminal: at most ~10 redraws a second
  double log_interval_s = 30.0;      // log: a line at least this often while work goes on …
  double log_min_gap_s = 3.0;        // … and, on each new 10% of the total, one if this much time passed
  int log_step_percent = 10;
  std::ostream* out = nullptr;       // default std::cerr
  std::optional<bool> tty;           // default: whether stderr is a terminal
  std::function<double()> clock;     // seconds on a monotonic clock; default std::chrono::steady_clock
};

class Progress {
 public:
  // total = 0: unknown; the line shows the count and rate only.
  Progress(int64_t total, std::string label, ProgressOptions options = {});
  ~Progress();  // finishes if finish() was not called
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void update(int64_t n = 1);
  void set_postfix(std::string postfix);  // text after the bracket, e.g. "loss 0.123"
  void finish();                          // draws the final state and ends the line

  int64_t count() const;
  int64_t total() const { return total_; }
  double elapsed() const;  // seconds since construction
  std::string line() const;  // the line as it would be drawn now (with the bar)

  // The formatted line, a pure function of its arguments:
  //   label  37%|██████▍    | 370/1000 [00:12<00:20, 30.1 it/s] postfix
  //   label 370 it [00:12, 30.1 it/s] postfix                      (total = 0)
  // bar_width = 0 leaves the bar out ("label  37% 370/1000 [...]"); below 1 item a second the
  // rate reads "2.50 s/it"; the ETA is "?" until the rate is known.
  static std::string format_line(const std::string& label, int64_t n, int64_t total, double elapsed_s,
                                 const std::string& unit = "it", const std::string& postfix = "",
                                 int bar_width = 20);
  // "00:12", "12:34", "1:02:03"; "?" for negative or non-finite seconds.
  static std::string format_duration(double seconds);

 private:
  void draw_locked(bool final);
  std::string line_locked(int bar_width) const;

  const int64_t total_;
  const std::string label_;
  ProgressOptions opt_;
  std::ostream* out_;
  bool tty_;
  double start_;
  mutable std::mutex mutex_;
  int64_t n_ = 0;
  std::string postfix_;
  bool finished_ = false;
  double last_draw_ = -1e300;  // time of the last redraw or log line
  int64_t last_logged_n_ = -1;
  int64_t last_logged_step_ = 0;  // index of the last logged log_step_percent step
};

}  // namespace luminars
