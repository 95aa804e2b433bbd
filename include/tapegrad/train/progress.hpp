#pragma once
// A one-line progress display for training loops:
//
//   epoch 3/20  step 450/3000  loss 0.4123  1.52e+03 ex/s  ETA 0:12
//
// redrawn in place with '\r' on a terminal, at most every `min_interval` seconds. When stderr is
// not a terminal (output piped to a file, a test, CI) it writes nothing, so logs stay clean.
// The formatting is a pure function, format_progress, so it can be tested without a terminal.
#include <chrono>
#include <cstddef>
#include <iosfwd>
#include <limits>
#include <string>

namespace tapegrad {

struct ProgressInfo {
  std::size_t epoch = 0;                                   // current epoch, 1-based
  std::size_t epochs = 0;                                  // total epochs; 0 = unknown (printed as "epoch 3")
  std::size_t step = 0;                                    // optimizer steps done so far, over all epochs
  std::size_t total_steps = 0;                             // 0 = unknown: no "/total" and no ETA
  double loss = std::numeric_limits<double>::quiet_NaN();  // NaN = not shown
  double elapsed_seconds = 0;                              // since training started
  std::size_t examples = 0;  // examples seen; > 0 shows the rate in ex/s, else steps/s
};

// "epoch E/EPOCHS  step S/TOTAL  loss L  R ex/s  ETA m:ss". The rate is examples (or steps)
// per elapsed second, the ETA the remaining steps at the current step rate; both are left out
// until some time has passed.
std::string format_progress(const ProgressInfo& p);
// Seconds as "m:ss", or "h:mm:ss" from an hour on ("0:07", "12:30", "1:02:03"); "?" when
// negative or not finite.
std::string format_duration(double seconds);
// A rate with three significant digits and no exponent below 1e5 ("0.123", "12.3", "1520").
std::string format_rate(double per_second);

class ProgressLine {
 public:
  // Construct it just before the first step: the clock starts here.
  // Draws on stderr when stderr is a terminal (isatty), otherwise stays silent.
  ProgressLine(std::size_t epochs, std::size_t total_steps);
  // Draws on `out` when `enabled` (for tests, or to force output); `min_interval` in seconds.
  ProgressLine(std::size_t epochs, std::size_t total_steps, std::ostream& out, bool enabled,
               double min_interval = 0.1);
  ~ProgressLine() { clear(); }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;

  // After each optimizer step: counts the step (and `batch_examples` examples) and redraws
  // the line if min_interval has passed since the last draw (or it is the last step).
  void step(std::size_t epoch, double loss, std::size_t batch_examples = 0);
  // Erases the line (call before printing anything else to the terminal); the next step()
  // draws it again.
  void clear();
  bool enabled() const { return enabled_; }
  const ProgressInfo& info() const { return info_; }

 private:
  void draw();
  std::ostream* out_;
  bool enabled_;
  double min_interval_;
  ProgressInfo info_;
  std::chrono::steady_clock::time_point start_;
  double last_draw_ = -1;
  std::size_t drawn_width_ = 0;  // characters on screen, 0 = nothing drawn
};

}  // namespace tapegrad
