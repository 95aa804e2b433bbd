#include "tapegrad/optim/one_cycle.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

#include "tapegrad/core/error.hpp"
#include "scheduler_state.hpp"

namespace tapegrad {

using detail::format_number;

namespace {

void check_positive(const char* what, double v) {
  if (!(v > 0 && std::isfinite(v))) {
    throw ValueError(std::string("OneCycleLR: ") + what + " must be a finite number > 0, got " +
                     std::to_string(v));
  }
}

// The options with total_steps resolved, after PyTorch's checks (and ours: finite values,
// max_lr >= 0, momenta >= 0, div factors > 0).
OneCycleOptions resolve(double max_lr, OneCycleOptions o) {
  if (o.total_steps < 0) {
    throw ValueError("OneCycleLR: Expected positive integer total_steps, but got " +
                     std::to_string(o.total_steps));
  }
  if (o.total_steps == 0) {
    if (o.epochs == 0 && o.steps_per_epoch == 0) {
      throw ValueError("OneCycleLR: You must define either total_steps OR (epochs AND steps_per_epoch)");
    }
    if (o.epochs <= 0)
      throw ValueError("OneCycleLR: Expected positive integer epochs, but got " + std::to_string(o.epochs));
    if (o.steps_per_epoch <= 0) {
      throw ValueError("OneCycleLR: Expected positive integer steps_per_epoch, but got " +
                       std::to_string(o.steps_per_epoch));
    }
    if (o.epochs > std::numeric_limits<std::int64_t>::max() / o.steps_per_epoch) {
      throw ValueError("OneCycleLR: epochs " + std::to_string(o.epochs) + " times steps_per_epoch " +
                       std::to_string(o.steps_per_epoch) + " overflows");
    }
    o.total_steps = o.epochs * o.steps_per_epoch;
  }
  if (!(o.pct_start >= 0 && o.pct_start <= 1)) {
    throw ValueError("OneCycleLR: Expected float between 0 and 1 pct_start, but got " +
                     std::to_string(o.pct_start));
  }
  if (!(max_lr >= 0 && std::isfinite(max_lr))) {
    throw ValueError("OneCycleLR: max_lr must be a finite number >= 0, got " + std::to_string(max_lr));
  }
  check_positive("div_factor", o.div_factor);
  check_positive("final_div_factor", o.final_div_factor);
  for (const double m : {o.base_momentum, o.max_momentum}) {
    if (!(m >= 0 && std::isfinite(m))) {
      throw ValueError("OneCycleLR: base_momentum and max_momentum must be finite numbers >= 0, got " +
                       std::to_string(o.base_momentum) + " and " + std::to_string(o.max_momentum));
    }
  }
  return o;
}

double initial_lr(double max_lr, const OneCycleOptions& o) { return max_lr / resolve(max_lr, o).div_factor; }

double anneal(AnnealStrategy s, double start, double end, double pct) {
  if (s == AnnealStrategy::linear) return (end - start) * pct + start;
  const double pi = 3.14159265358979323846;
  return end + (start - end) / 2.0 * (std::cos(pi * pct) + 1);
}

}  // namespace

template <class T>
OneCycleLR<T>::OneCycleLR(Optimizer<T>& opt, double max_lr, OneCycleOptions options)
    : LRScheduler<T>(opt, initial_lr(max_lr, options)), options_(resolve(max_lr, options)), max_lr_(max_lr) {
  min_lr_ = this->base_lr() / options_.final_div_factor;
  const Hyperparameters h = opt.hyperparameters();
  momentum_key_ = h.count("momentum") ? "momentum" : "beta1";
  if (options_.cycle_momentum && !h.count(momentum_key_)) {
    throw ValueError(std::string("OneCycleLR: optimizer ") + opt.name() +
                     " must support momentum with `cycle_momentum` option enabled");
  }
  this->init();
}

template <class T>
OneCycleLR<T>::OneCycleLR(Optimizer<T>& opt, double max_lr, std::int64_t total_steps)
    : OneCycleLR(opt, max_lr, [total_steps] {
        OneCycleOptions o;
        o.total_steps = total_steps;
        if (total_steps <= 0) {
          throw ValueError("OneCycleLR: Expected positive integer total_steps, but got " +
                           std::to_string(total_steps));
        }
        return o;
      }()) {}

template <class T>
void OneCycleLR<T>::values_at(std::int64_t epoch, double& lr, double& momentum) const {
  this->check_epoch("OneCycleLR", epoch);
  const std::int64_t total = options_.total_steps;
  if (epoch > total) {
    throw ValueError("OneCycleLR: Tried to step " + std::to_string(epoch + 1) +
                     " times. The specified number of total steps is " + std::to_string(total));
  }
  const double pct_total = options_.pct_start * static_cast<double>(total);
  const double init = this->base_lr(), base_m = options_.base_momentum, max_m = options_.max_momentum;
  // {end_step, start_lr, end_lr, start_momentum, end_momentum} per phase, as PyTorch lists them.
  struct Phase {
    double end, lr0, lr1, m0, m1;
  };
  const Phase two[] = {{pct_total - 1, init, max_lr_, max_m, base_m},
                       {static_cast<double>(total - 1), max_lr_, min_lr_, base_m, max_m}};
  const Phase three[] = {{pct_total - 1, init, max_lr_, max_m, base_m},
                         {2 * pct_total - 2, max_lr_, init, base_m, max_m},
                         {static_cast<double>(total - 1), init, min_lr_, max_m, max_m}};
  const Phase* phases = options_.three_phase ? three : two;
  const std::size_t count = options_.three_phase ? 3 : 2;
  const double s = static_cast<double>(epoch);
  double start = 0;
  for (std::size_t i = 0; i < count; ++i) {
    const Phase& p = phases[i];
    if (s <= p.end || i + 1 == count) {
      if (p.end == start) {
        throw ValueError("OneCycleLR: step " + std::to_string(epoch) + " falls in phase " +
                         std::to_string(i + 1) + ", which has zero length (it starts and ends at step " +
                         format_number(start) + "; total_steps " + std::to_string(total) + ", pct_start " +
                         format_number(options_.pct_start) + ")");
      }
      const double pct = (s - start) / (p.end - start);
      // At step total_steps (pct > 1) a linear anneal overshoots below min_lr, to a negative lr
      // that PyTorch sets; an optimizer refuses it, so it is clamped at 0 (see one_cycle.hpp).
      lr = std::max(anneal(options_.anneal_strategy, p.lr0, p.lr1, pct), 0.0);
      momentum = anneal(options_.anneal_strategy, p.m0, p.m1, pct);
      return;
    }
    start = p.end;
  }
}

template <class T>
double OneCycleLR<T>::lr_at(std::int64_t epoch) const {
  double lr = 0, m = 0;
  values_at(epoch, lr, m);
  return lr;
}

template <class T>
double OneCycleLR<T>::momentum_at(std::int64_t epoch) const {
  if (!options_.cycle_momentum) throw ValueError("OneCycleLR.momentum_at: cycle_momentum is off");
  double lr = 0, m = 0;
  values_at(epoch, lr, m);
  return m;
}

template <class T>
void OneCycleLR<T>::apply(std::int64_t epoch) {
  double lr = 0, m = 0;
  values_at(epoch, lr, m);
  Hyperparameters h{{"lr", lr}};
  if (options_.cycle_momentum) h[momentum_key_] = m;
  this->optimizer().set_hyperparameters(h);  // all or nothing
}

template <class T>
SchedulerState OneCycleLR<T>::fields() const {
  return {{"total_steps", std::to_string(options_.total_steps)},
          {"max_lrs", format_number(max_lr_)},
          {"min_lrs", format_number(min_lr_)},
          {"pct_start", format_number(options_.pct_start)},
          {"anneal_strategy", options_.anneal_strategy == AnnealStrategy::cos ? "cos" : "linear"},
          {"cycle_momentum", options_.cycle_momentum ? "1" : "0"},
          {"use_beta1", std::string(momentum_key_) == "beta1" ? "1" : "0"},
          {"base_momentum", format_number(options_.base_momentum)},
          {"max_momentum", format_number(options_.max_momentum)},
          {"three_phase", options_.three_phase ? "1" : "0"}};
}

template <class T>
void OneCycleLR<T>::load_fields(const SchedulerState& state) {
  const std::string who = "OneCycleLR.load_state_dict";
  const auto flag = [&](const char* key) { return detail::read_word(who, state, key, {"0", "1"}) == "1"; };
  OneCycleOptions o = options_;
  o.total_steps = detail::read_integer(who, state, "total_steps");
  o.epochs = o.steps_per_epoch = 0;
  o.pct_start = detail::read_number(who, state, "pct_start");
  o.anneal_strategy = detail::read_word(who, state, "anneal_strategy", {"cos", "linear"}) == "cos"
                          ? AnnealStrategy::cos
                          : AnnealStrategy::linear;
  o.cycle_momentum = flag("cycle_momentum");
  o.base_momentum = detail::read_number(who, state, "base_momentum");
  o.max_momentum = detail::read_number(who, state, "max_momentum");
  o.three_phase = flag("three_phase");
  const double max_lr = detail::read_number(who, state, "max_lrs");
  const double min_lr = detail::read_number(who, state, "min_lrs");
  if (flag("use_beta1") != (std::string(momentum_key_) == "beta1")) {
    throw ValueError(who + ": \"use_beta1\" is " + state.at("use_beta1") + " but this optimizer cycles \"" +
                     momentum_key_ + "\"");
  }
  if (o.total_steps <= 0)
    throw ValueError(who + ": \"total_steps\" must be positive, got " + state.at("total_steps"));
  if (!(min_lr >= 0 && std::isfinite(min_lr))) {
    throw ValueError(who + ": \"min_lrs\" must be a finite number >= 0, got " + state.at("min_lrs"));
  }
  try {
    o = resolve(max_lr, o);
  } catch (const ValueError& e) {
    throw ValueError(who + ": " + e.what());
  }
  options_ = o;
  max_lr_ = max_lr;
  min_lr_ = min_lr;
}

template class OneCycleLR<float>;
template class OneCycleLR<double>;

}  // namespace tapegrad
