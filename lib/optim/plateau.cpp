#include "tapegrad/optim/plateau.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tapegrad/core/error.hpp"
#include "scheduler_state.hpp"

namespace tapegrad {

using detail::format_number;

namespace {

void check_plateau(const PlateauOptions& o) {
  if (!(o.factor >= 0 && o.factor < 1)) {
    throw ValueError("ReduceLROnPlateau: factor must be in [0, 1) (Factor should be < 1.0.), got " +
                     std::to_string(o.factor));
  }
  const auto nonnegative = [](const char* what, double v) {
    if (!(v >= 0 && std::isfinite(v))) {
      throw ValueError(std::string("ReduceLROnPlateau: ") + what + " must be a finite number >= 0, got " +
                       std::to_string(v));
    }
  };
  nonnegative("threshold", o.threshold);
  nonnegative("min_lr", o.min_lr);
  nonnegative("eps", o.eps);
  if (o.patience < 0)
    throw ValueError("ReduceLROnPlateau: patience must be >= 0, got " + std::to_string(o.patience));
  if (o.cooldown < 0)
    throw ValueError("ReduceLROnPlateau: cooldown must be >= 0, got " + std::to_string(o.cooldown));
  if (o.mode != PlateauMode::min && o.mode != PlateauMode::max) {
    throw ValueError("ReduceLROnPlateau: mode " + std::to_string(static_cast<int>(o.mode)) + " is unknown!");
  }
  if (o.threshold_mode != ThresholdMode::rel && o.threshold_mode != ThresholdMode::abs) {
    throw ValueError("ReduceLROnPlateau: threshold mode " +
                     std::to_string(static_cast<int>(o.threshold_mode)) + " is unknown!");
  }
}

// PyTorch's mode_worse: the best value before any metric.
double worst(PlateauMode mode) {
  const double inf = std::numeric_limits<double>::infinity();
  return mode == PlateauMode::min ? inf : -inf;
}

}  // namespace

template <class T>
ReduceLROnPlateau<T>::ReduceLROnPlateau(Optimizer<T>& opt, PlateauOptions options)
    : opt_(opt), options_(options), best_(worst(options.mode)) {
  check_plateau(options_);
}

template <class T>
bool ReduceLROnPlateau<T>::is_better(double a) const {
  const double t = options_.threshold;
  const bool rel = options_.threshold_mode == ThresholdMode::rel;
  if (options_.mode == PlateauMode::min) return rel ? a < best_ * (1 - t) : a < best_ - t;
  return rel ? a > best_ * (t + 1) : a > best_ + t;
}

template <class T>
void ReduceLROnPlateau<T>::step(double metric) {
  double best = best_;
  std::int64_t bad = num_bad_epochs_, cooldown = cooldown_counter_;
  if (is_better(metric)) {
    best = metric;
    bad = 0;
  } else {
    ++bad;
  }
  if (cooldown > 0) {  // in cooldown
    --cooldown;
    bad = 0;
  }
  if (bad > options_.patience) {
    const double old_lr = opt_.lr();
    const double new_lr = std::max(old_lr * options_.factor, options_.min_lr);
    if (old_lr - new_lr > options_.eps) opt_.set_lr(new_lr);  // the only step that can throw
    cooldown = options_.cooldown;
    bad = 0;
  }
  best_ = best;
  num_bad_epochs_ = bad;
  cooldown_counter_ = cooldown;
  ++last_epoch_;
}

template <class T>
SchedulerState ReduceLROnPlateau<T>::state_dict() const {
  const PlateauOptions& o = options_;
  return {{"mode", o.mode == PlateauMode::min ? "min" : "max"},
          {"factor", format_number(o.factor)},
          {"patience", std::to_string(o.patience)},
          {"threshold", format_number(o.threshold)},
          {"threshold_mode", o.threshold_mode == ThresholdMode::rel ? "rel" : "abs"},
          {"cooldown", std::to_string(o.cooldown)},
          {"min_lrs", format_number(o.min_lr)},
          {"eps", format_number(o.eps)},
          {"best", format_number(best_)},
          {"num_bad_epochs", std::to_string(num_bad_epochs_)},
          {"cooldown_counter", std::to_string(cooldown_counter_)},
          {"last_epoch", std::to_string(last_epoch_)}};
}

template <class T>
void ReduceLROnPlateau<T>::load_state_dict(const SchedulerState& state) {
  const std::string who = "ReduceLROnPlateau.load_state_dict";
  detail::check_keys(who, state, state_dict());
  PlateauOptions o;
  o.mode =
      detail::read_word(who, state, "mode", {"min", "max"}) == "min" ? PlateauMode::min : PlateauMode::max;
  o.factor = detail::read_number(who, state, "factor");
  o.patience = detail::read_integer(who, state, "patience");
  o.threshold = detail::read_number(who, state, "threshold");
  o.threshold_mode = detail::read_word(who, state, "threshold_mode", {"rel", "abs"}) == "rel"
                         ? ThresholdMode::rel
                         : ThresholdMode::abs;
  o.cooldown = detail::read_integer(who, state, "cooldown");
  o.min_lr = detail::read_number(who, state, "min_lrs");
  o.eps = detail::read_number(who, state, "eps");
  const double best = detail::read_number(who, state, "best");
  const std::int64_t bad = detail::read_integer(who, state, "num_bad_epochs");
  const std::int64_t cooldown = detail::read_integer(who, state, "cooldown_counter");
  const std::int64_t epoch = detail::read_integer(who, state, "last_epoch");
  try {
    check_plateau(o);
  } catch (const ValueError& e) {
    throw ValueError(who + ": " + e.what());
  }
  for (const char* key : {"num_bad_epochs", "cooldown_counter", "last_epoch"}) {
    if (detail::read_integer(who, state, key) < 0) {
      throw ValueError(who + ": \"" + key + "\" must be >= 0, got " + state.at(key));
    }
  }
  options_ = o;
  best_ = best;
  num_bad_epochs_ = bad;
  cooldown_counter_ = cooldown;
  last_epoch_ = epoch;
}

template class ReduceLROnPlateau<float>;
template class ReduceLROnPlateau<double>;

}  // namespace tapegrad
