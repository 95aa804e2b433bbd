#include "scheduler_state.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "tapegrad/core/error.hpp"

namespace tapegrad {
namespace detail {

std::string format_number(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

void check_keys(const std::string& who, const SchedulerState& state, const SchedulerState& expected) {
  std::string names;
  for (const auto& kv : expected) names += (names.empty() ? "" : ", ") + kv.first;
  for (const auto& kv : expected) {
    if (!state.count(kv.first)) {
      throw ValueError(who + ": missing key \"" + kv.first + "\" (expected " + names + ")");
    }
  }
  for (const auto& kv : state) {
    if (!expected.count(kv.first)) {
      throw ValueError(who + ": unexpected key \"" + kv.first + "\" (expected " + names + ")");
    }
  }
}

double read_number(const std::string& who, const SchedulerState& state, const std::string& key) {
  const std::string& text = state.at(key);
  const char* s = text.c_str();
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s, &end);
  const bool blank = text.empty() || std::isspace(static_cast<unsigned char>(text[0]));
  if (blank || end != s + text.size() || (errno == ERANGE && std::isinf(v))) {
    throw ValueError(who + ": \"" + key + "\" is \"" + text + "\", not a number");
  }
  return v;
}

std::int64_t read_integer(const std::string& who, const SchedulerState& state, const std::string& key) {
  const double v = read_number(who, state, key);
  // Whole numbers up to 2^53 are exact in a double and in their text.
  if (!(std::abs(v) <= 9007199254740992.0) || v != std::floor(v)) {
    throw ValueError(who + ": \"" + key + "\" is \"" + state.at(key) + "\", not a whole number");
  }
  return static_cast<std::int64_t>(v);
}

std::string read_word(const std::string& who, const SchedulerState& state, const std::string& key,
                      std::initializer_list<const char*> words) {
  const std::string& text = state.at(key);
  std::string names;
  for (const char* w : words) {
    if (text == w) return text;
    names += std::string(names.empty() ? "\"" : ", \"") + w + "\"";
  }
  throw ValueError(who + ": \"" + key + "\" is \"" + text + "\"; expected one of " + names);
}

}  // namespace detail
}  // namespace tapegrad
