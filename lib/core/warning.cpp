#include "tapegrad/core/warning.hpp"

#include <cstdio>
#include <mutex>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {

std::mutex& warning_mutex() {
  static std::mutex m;
  return m;
}
WarningHandler& current_handler() {
  static WarningHandler h;
  return h;
}
TapeGrowthCheck& current_growth_check() {
  static TapeGrowthCheck c;
  return c;
}

}  // namespace

WarningHandler set_warning_handler(WarningHandler handler) {
  std::lock_guard<std::mutex> lock(warning_mutex());
  WarningHandler previous = std::move(current_handler());
  current_handler() = std::move(handler);
  return previous;
}

void emit_warning(const std::string& message) {
  WarningHandler h;
  {
    std::lock_guard<std::mutex> lock(warning_mutex());
    h = current_handler();
  }
  if (h) {
    h(message);
  } else {
    std::fprintf(stderr, "%s\n", message.c_str());
  }
}

TapeGrowthCheck set_tape_growth_check(const TapeGrowthCheck& check) {
  if (check.min_sweeps == 0) throw ValueError("set_tape_growth_check: min_sweeps must be >= 1, got 0");
  std::lock_guard<std::mutex> lock(warning_mutex());
  const TapeGrowthCheck previous = current_growth_check();
  current_growth_check() = check;
  return previous;
}

TapeGrowthCheck tape_growth_check() {
  std::lock_guard<std::mutex> lock(warning_mutex());
  return current_growth_check();
}

}  // namespace tapegrad
