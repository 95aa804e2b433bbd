#include "tapegrad/train/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>

namespace tapegrad {

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return "?";
  // Beyond ~3e5 years llround would leave long long's range: say how many hours instead.
  if (seconds >= 1e13) {
    char big[64];
    std::snprintf(big, sizeof big, "%.3g h", seconds / 3600);
    return big;
  }
  const auto total = static_cast<long long>(std::llround(seconds));
  const long long h = total / 3600, m = (total / 60) % 60, s = total % 60;
  char buf[64];
  if (h > 0) {
    std::snprintf(buf, sizeof buf, "%lld:%02lld:%02lld", h, m, s);
  } else {
    std::snprintf(buf, sizeof buf, "%lld:%02lld", m, s);
  }
  return buf;
}

std::string format_rate(double r) {
  char buf[64];
  if (!std::isfinite(r) || r < 0) return "?";
  if (r >= 1e5) {
    std::snprintf(buf, sizeof buf, "%.2e", r);
  } else if (r >= 100) {
    std::snprintf(buf, sizeof buf, "%.0f", r);
  } else if (r >= 10) {
    std::snprintf(buf, sizeof buf, "%.1f", r);
  } else if (r >= 1) {
    std::snprintf(buf, sizeof buf, "%.2f", r);
  } else {
    std::snprintf(buf, sizeof buf, "%.3g", r);
  }
  return buf;
}

std::string format_progress(const ProgressInfo& p) {
  std::string s = "epoch " + std::to_string(p.epoch);
  if (p.epochs > 0) s += "/" + std::to_string(p.epochs);
  s += "  step " + std::to_string(p.step);
  if (p.total_steps > 0) s += "/" + std::to_string(p.total_steps);
  if (!std::isnan(p.loss)) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.4g", p.loss);
    s += "  loss ";
    s += buf;
  }
  if (p.elapsed_seconds > 0 && p.step > 0) {
    const double steps_per_s = static_cast<double>(p.step) / p.elapsed_seconds;
    if (p.examples > 0) {
      s += "  " + format_rate(static_cast<double>(p.examples) / p.elapsed_seconds) + " ex/s";
    } else {
      s += "  " + format_rate(steps_per_s) + " steps/s";
    }
    if (p.total_steps >= p.step && p.total_steps > 0) {
      s += "  ETA " + format_duration(static_cast<double>(p.total_steps - p.step) / steps_per_s);
    }
  }
  return s;
}

ProgressLine::ProgressLine(std::size_t epochs, std::size_t total_steps)
    : ProgressLine(epochs, total_steps, std::cerr, ::isatty(STDERR_FILENO) == 1) {}

ProgressLine::ProgressLine(std::size_t epochs, std::size_t total_steps, std::ostream& out, bool enabled,
                           double min_interval)
    : out_(&out), enabled_(enabled), min_interval_(min_interval), start_(std::chrono::steady_clock::now()) {
  info_.epochs = epochs;
  info_.total_steps = total_steps;
}

void ProgressLine::step(std::size_t epoch, double loss, std::size_t batch_examples) {
  info_.epoch = epoch;
  info_.loss = loss;
  ++info_.step;
  info_.examples += batch_examples;
  info_.elapsed_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (!enabled_) return;
  const bool last = info_.total_steps > 0 && info_.step >= info_.total_steps;
  if (last_draw_ < 0 || info_.elapsed_seconds - last_draw_ >= min_interval_ || last) draw();
}

void ProgressLine::draw() {
  const std::string line = format_progress(info_);
  // Pad with spaces over whatever a longer previous line left on screen.
  std::string padded = "\r" + line;
  if (line.size() < drawn_width_) padded.append(drawn_width_ - line.size(), ' ');
  *out_ << padded << std::flush;
  drawn_width_ = line.size();
  last_draw_ = info_.elapsed_seconds;
}

void ProgressLine::clear() {
  if (!enabled_ || drawn_width_ == 0) return;
  *out_ << '\r' << std::string(drawn_width_, ' ') << '\r' << std::flush;
  drawn_width_ = 0;
  last_draw_ = -1;
}

}  // namespace tapegrad
