#include "core/progress.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>

namespace luminars {

namespace {

double steady_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

template <typename... Parts>
void append(std::string& s, const Parts&... parts) {
  (s.append(parts), ...);
}

// Three significant figures for rates: "312", "30.1", "4.25".
std::string format_rate_value(double v) {
  char buf[32];
  if (v >= 100) std::snprintf(buf, sizeof buf, "%.0f", v);
  else if (v >= 10) std::snprintf(buf, sizeof buf, "%.1f", v);
  else std::snprintf(buf, sizeof buf, "%.2f", v);
  return buf;
}

// The bar in eighths of a character: full blocks, one partial block, spaces.
std::string format_bar(double fraction, int width) {
  static const char* const kPartial[] = {"", "▏", "▎", "▍", "▌", "▋", "▊", "▉"};
  const auto eighths = static_cast<int64_t>(std::floor(std::clamp(fraction, 0.0, 1.0) * width * 8));
  const int64_t full = eighths / 8, rem = eighths % 8;
  std::string bar;
  for (int64_t i = 0; i < full; ++i) bar += "█";
  int64_t used = full;
  if (rem > 0) {
    bar += kPartial[rem];
    ++used;
  }
  bar.append(static_cast<std::size_t>(std::max<int64_t>(0, width - used)), ' ');
  return bar;
}

}  // namespace

std::string Progress::format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "?";
  const auto s = static_cast<int64_t>(seconds);
  const int64_t h = s / 3600, m = (s / 60) % 60, sec = s % 60;
  char buf[48];
  if (h > 0) std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", static_cast<long long>(h), static_cast<long long>(m),
                           static_cast<long long>(sec));
  else std::snprintf(buf, sizeof buf, "%02lld:%02lld", static_cast<long long>(m), static_cast<long long>(sec));
  return buf;
}

std::string Progress::format_line(const std::string& label, int64_t n, int64_t total, double elapsed_s,
                                  const std::string& unit, const std::string& postfix, int bar_width) {
  const bool rate_known = n > 0 && elapsed_s > 0;
  const double rate = rate_known ? static_cast<double>(n) / elapsed_s : 0.0;
  std::string rate_text;
  if (!rate_known) append(rate_text, "? ", unit, "/s");
  else if (rate >= 1.0) append(rate_text, format_rate_value(rate), " ", unit, "/s");
  else append(rate_text, format_rate_value(1.0 / rate), " s/", unit);

  std::string line = label;
  if (total > 0) {
    const double fraction = std::clamp(static_cast<double>(n) / static_cast<double>(total), 0.0, 1.0);
    char pct[16];
    std::snprintf(pct, sizeof pct, "%3d%%", static_cast<int>(std::floor(fraction * 100.0)));
    if (!line.empty()) line += "  ";
    line += pct;
    if (bar_width > 0) append(line, "|", format_bar(fraction, bar_width), "|");
    const double eta = rate_known ? std::max<double>(0.0, static_cast<double>(total - n)) / rate : -1.0;
    append(line, " ", std::to_string(n), "/", std::to_string(total), " [", format_duration(elapsed_s), "<",
           format_duration(eta), ", ", rate_text, "]");
  } else {
    if (!line.empty()) line += " ";
    append(line, std::to_string(n), " ", unit, " [", format_duration(elapsed_s), ", ", rate_text, "]");
  }
  if (!postfix.empty()) append(line, " ", postfix);
  return line;
}

Progress::Progress(int64_t total, std::string label, ProgressOptions options)
    : total_(std::max<int64_t>(0, total)), label_(std::move(label)), opt_(std::move(options)) {
  if (!opt_.clock) opt_.clock = steady_seconds;
  out_ = opt_.out ? opt_.out : &std::cerr;
  tty_ = opt_.tty.has_value() ? *opt_.tty : (opt_.out == nullptr && ::isatty(STDERR_FILENO) == 1);
  start_ = opt_.clock();
  std::lock_guard lock(mutex_);
  last_draw_ = start_;
  if (tty_) draw_locked(false);
}

Progress::~Progress() {
  try {
    finish();
  } catch (...) {
  }
}

int64_t Progress::count() const {
  std::lock_guard lock(mutex_);
  return n_;
}

double Progress::elapsed() const { return opt_.clock() - start_; }

std::string Progress::line() const {
  std::lock_guard lock(mutex_);
  return line_locked(opt_.bar_width);
}

std::string Progress::line_locked(int bar_width) const {
  return format_line(label_, n_, total_, opt_.clock() - start_, opt_.unit, postfix_, bar_width);
}

void Progress::update(int64_t n) {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  n_ += n;
  const double now = opt_.clock();
  if (tty_) {
    if (now - last_draw_ >= opt_.redraw_interval_s) draw_locked(false);
    return;
  }
  const int64_t step = (total_ > 0 && opt_.log_step_percent > 0)
                           ? std::min<int64_t>(n_, total_) * 100 / total_ / opt_.log_step_percent
                           : 0;
  const bool heartbeat = now - last_draw_ >= opt_.log_interval_s;
  const bool new_step = step > last_logged_step_ && now - last_draw_ >= opt_.log_min_gap_s;
  if (heartbeat || new_step) {
    last_logged_step_ = std::max(last_logged_step_, step);
    draw_locked(false);
  }
}

void Progress::set_postfix(std::string postfix) {
  std::lock_guard lock(mutex_);
  postfix_ = std::move(postfix);
}

void Progress::finish() {
  std::lock_guard lock(mutex_);
  if (finished_) return;
  finished_ = true;
  if (tty_ || last_logged_n_ != n_) draw_locked(true);
}

void Progress::draw_locked(bool final) {
  last_draw_ = opt_.clock();
  last_logged_n_ = n_;
  if (tty_) {
    // Carriage return, the line, clear to the end of the terminal line.
    *out_ << '\r' << line_locked(opt_.bar_width) << "\x1b[K";
    if (final) *out_ << '\n';
  } else {
    *out_ << line_locked(0) << '\n';
  }
  out_->flush();
}

}  // namespace luminars
