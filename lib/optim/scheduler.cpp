#include "tapegrad/optim/scheduler.hpp"

#include <algorithm>
#include <cmath>

#include "tapegrad/core/error.hpp"
#include "scheduler_state.hpp"

namespace tapegrad {

using detail::format_number;
using detail::read_integer;
using detail::read_number;

template <class T>
SchedulerState LRScheduler<T>::state_dict() const {
  SchedulerState s = fields();
  s["last_epoch"] = std::to_string(epoch_);
  s["base_lrs"] = format_number(base_lr_);
  return s;
}

template <class T>
void LRScheduler<T>::load_state_dict(const SchedulerState& state) {
  const std::string who = std::string(name()) + ".load_state_dict";
  SchedulerState expected = fields();
  expected["last_epoch"];
  expected["base_lrs"];
  detail::check_keys(who, state, expected);
  const std::int64_t epoch = read_integer(who, state, "last_epoch");
  if (epoch < 0) throw ValueError(who + ": \"last_epoch\" must be >= 0, got " + std::to_string(epoch));
  const double base = read_number(who, state, "base_lrs");
  if (!(base >= 0 && std::isfinite(base))) {
    throw ValueError(who + ": \"base_lrs\" must be a finite number >= 0, got " + state.at("base_lrs"));
  }
  load_fields(state);  // the last thing that can throw
  epoch_ = epoch;
  base_lr_ = base;
}

namespace {

void check_step_lr(std::int64_t step_size, double gamma) {
  if (step_size <= 0)
    throw ValueError("StepLR: step_size must be positive, got " + std::to_string(step_size));
  if (!(std::isfinite(gamma) && gamma > 0)) {
    throw ValueError("StepLR: gamma must be a positive finite number, got " + std::to_string(gamma));
  }
}

void check_cosine(std::int64_t t_max, double eta_min) {
  if (t_max <= 0) throw ValueError("CosineAnnealingLR: T_max must be positive, got " + std::to_string(t_max));
  if (!(std::isfinite(eta_min) && eta_min >= 0)) {
    throw ValueError("CosineAnnealingLR: eta_min must be a finite number >= 0, got " +
                     std::to_string(eta_min));
  }
}

void check_linear(double start_factor, double end_factor, std::int64_t total_iters) {
  if (!(start_factor > 0 && start_factor <= 1) || !(end_factor >= 0 && end_factor <= 1)) {
    throw ValueError("LinearLR: start_factor must be in (0, 1] and end_factor in [0, 1]; got " +
                     std::to_string(start_factor) + " and " + std::to_string(end_factor));
  }
  if (total_iters <= 0)
    throw ValueError("LinearLR: total_iters must be positive, got " + std::to_string(total_iters));
}

// Runs a constructor's check on values read by load_state_dict, its message prefixed by `who`.
template <class F>
void check_loaded(const std::string& who, F&& check) {
  try {
    check();
  } catch (const ValueError& e) {
    throw ValueError(who + ": " + e.what());
  }
}

}  // namespace

template <class T>
StepLR<T>::StepLR(Optimizer<T>& opt, std::int64_t step_size, double gamma)
    : LRScheduler<T>(opt), step_size_(step_size), gamma_(gamma) {
  check_step_lr(step_size, gamma);
  this->init();
}

template <class T>
double StepLR<T>::lr_at(std::int64_t epoch) const {
  this->check_epoch("StepLR", epoch);
  const std::int64_t decays = epoch / step_size_;  // whole periods: PyTorch's epoch // step_size
  return this->base_lr() * std::pow(gamma_, static_cast<double>(decays));
}

template <class T>
SchedulerState StepLR<T>::fields() const {
  return {{"step_size", std::to_string(step_size_)}, {"gamma", format_number(gamma_)}};
}

template <class T>
void StepLR<T>::load_fields(const SchedulerState& state) {
  const std::string who = "StepLR.load_state_dict";
  const std::int64_t step_size = read_integer(who, state, "step_size");
  const double gamma = read_number(who, state, "gamma");
  check_loaded(who, [&] { check_step_lr(step_size, gamma); });
  step_size_ = step_size;
  gamma_ = gamma;
}

template <class T>
CosineAnnealingLR<T>::CosineAnnealingLR(Optimizer<T>& opt, std::int64_t t_max, double eta_min)
    : LRScheduler<T>(opt), t_max_(t_max), eta_min_(eta_min) {
  check_cosine(t_max, eta_min);
  this->init();
}

template <class T>
double CosineAnnealingLR<T>::lr_at(std::int64_t epoch) const {
  this->check_epoch("CosineAnnealingLR", epoch);
  const double pi = 3.14159265358979323846;
  return eta_min_ + (this->base_lr() - eta_min_) *
                        (1 + std::cos(pi * static_cast<double>(epoch) / static_cast<double>(t_max_))) / 2;
}

template <class T>
SchedulerState CosineAnnealingLR<T>::fields() const {
  return {{"T_max", std::to_string(t_max_)}, {"eta_min", format_number(eta_min_)}};
}

template <class T>
void CosineAnnealingLR<T>::load_fields(const SchedulerState& state) {
  const std::string who = "CosineAnnealingLR.load_state_dict";
  const std::int64_t t_max = read_integer(who, state, "T_max");
  const double eta_min = read_number(who, state, "eta_min");
  check_loaded(who, [&] { check_cosine(t_max, eta_min); });
  t_max_ = t_max;
  eta_min_ = eta_min;
}

template <class T>
LinearLR<T>::LinearLR(Optimizer<T>& opt, double start_factor, double end_factor, std::int64_t total_iters)
    : LRScheduler<T>(opt), start_(start_factor), end_(end_factor), total_(total_iters) {
  check_linear(start_factor, end_factor, total_iters);
  this->init();
}

template <class T>
double LinearLR<T>::lr_at(std::int64_t epoch) const {
  this->check_epoch("LinearLR", epoch);
  const double f = static_cast<double>(std::min(epoch, total_)) / static_cast<double>(total_);
  return this->base_lr() * (start_ + (end_ - start_) * f);
}

template <class T>
SchedulerState LinearLR<T>::fields() const {
  return {{"start_factor", format_number(start_)},
          {"end_factor", format_number(end_)},
          {"total_iters", std::to_string(total_)}};
}

template <class T>
void LinearLR<T>::load_fields(const SchedulerState& state) {
  const std::string who = "LinearLR.load_state_dict";
  const double start = read_number(who, state, "start_factor");
  const double end = read_number(who, state, "end_factor");
  const std::int64_t total = read_integer(who, state, "total_iters");
  check_loaded(who, [&] { check_linear(start, end, total); });
  start_ = start;
  end_ = end;
  total_ = total;
}

template class LRScheduler<float>;
template class LRScheduler<double>;
template class StepLR<float>;
template class StepLR<double>;
template class CosineAnnealingLR<float>;
template class CosineAnnealingLR<double>;
template class LinearLR<float>;
template class LinearLR<double>;

}  // namespace tapegrad
