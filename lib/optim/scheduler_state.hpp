#pragma once
// Reading and writing SchedulerState entries (optim/scheduler.hpp): numbers as exact text.
#include <cstdint>
#include <initializer_list>
#include <string>

#include "tapegrad/optim/scheduler.hpp"

namespace tapegrad {
namespace detail {

// The shortest text that reads back as exactly v ("%.17g"; "inf", "-inf", "nan").
std::string format_number(double v);
// Throws ValueError unless `state` has exactly the keys of `expected`, naming the first key
// that is missing or unknown; `who` is "<Scheduler>.load_state_dict".
void check_keys(const std::string& who, const SchedulerState& state, const SchedulerState& expected);
// state.at(key) as a number / a whole number; anything else is a ValueError naming both.
double read_number(const std::string& who, const SchedulerState& state, const std::string& key);
std::int64_t read_integer(const std::string& who, const SchedulerState& state, const std::string& key);
// state.at(key), which must be one of `words`.
std::string read_word(const std::string& who, const SchedulerState& state, const std::string& key,
                      std::initializer_list<const char*> words);

}  // namespace detail
}  // namespace tapegrad
