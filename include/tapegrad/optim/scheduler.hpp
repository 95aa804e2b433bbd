#pragma once
// Learning-rate schedulers: call step() once per epoch (or per iteration, as you count),
// after optimizer.step(), as in PyTorch. They set the optimizer's lr from the closed forms.
//
// Every argument is checked at construction (a ValueError naming it: NaN, infinity, or a value
// outside its range). step() is all or nothing: it computes the next lr first and, if the
// optimizer refuses it (say gamma^k overflowed to infinity), throws with last_epoch() and the
// lr unchanged.
#include <cstdint>
#include <map>
#include <string>

#include "tapegrad/core/error.hpp"
#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad {

// A scheduler's state, PyTorch's scheduler.state_dict() as text: each entry's value is a
// number written so that it reads back exactly ("%.17g": "0.10000000000000001", "inf") or a
// word ("min", "cos"). Keys follow PyTorch 1.13 where it has them: "last_epoch", "base_lrs"
// (this library keeps one parameter group: one number), and each scheduler's own fields
// ("step_size", "gamma", "T_max", "eta_min", ...). Checkpoints store it as metadata.
using SchedulerState = std::map<std::string, std::string>;

// What every scheduler has, so that a checkpoint can save and restore any of them.
class Scheduler {
 public:
  virtual ~Scheduler() = default;
  // The class name ("StepLR", "OneCycleLR", ...): a checkpoint records it.
  virtual const char* name() const = 0;
  virtual SchedulerState state_dict() const = 0;
  // Restores a state_dict() of the same kind of scheduler, all or nothing: a missing or
  // unknown key, a value that is not a number (or not one of the allowed words), or a value the
  // constructor would refuse is a ValueError naming the key and the value, and then nothing
  // changed. Like PyTorch's, it does not touch the optimizer: its lr (and momentum) come from
  // the optimizer's own state (load both, as a checkpoint does).
  virtual void load_state_dict(const SchedulerState& state) = 0;
};

template <class T>
class LRScheduler : public Scheduler {
 public:
  explicit LRScheduler(Optimizer<T>& opt) : opt_(opt), base_lr_(opt.lr()) {}
  void step() {
    apply(epoch_ + 1);  // throws before changing anything if the lr is refused
    ++epoch_;
  }
  std::int64_t last_epoch() const { return epoch_; }
  double base_lr() const { return base_lr_; }
  // The learning rate after `epoch` scheduler steps (epoch >= 0, else a ValueError).
  virtual double lr_at(std::int64_t epoch) const = 0;

  // "last_epoch", "base_lrs" and the fields of fields().
  SchedulerState state_dict() const override;
  void load_state_dict(const SchedulerState& state) override;

 protected:
  explicit LRScheduler(Optimizer<T>& opt, double base_lr) : opt_(opt), base_lr_(base_lr) {}
  void init() { apply(0); }
  // Sets the optimizer's lr (and whatever else the scheduler drives) for `epoch`, all or nothing.
  virtual void apply(std::int64_t epoch) { opt_.set_lr(lr_at(epoch)); }
  Optimizer<T>& optimizer() const { return opt_; }
  // The scheduler's own fields by PyTorch's names.
  virtual SchedulerState fields() const = 0;
  // Parses and validates every field of `state` (all of fields()'s keys are there, checked by
  // the caller) and sets them, or throws ValueError and changes nothing.
  virtual void load_fields(const SchedulerState& state) = 0;
  // Throws ValueError for a negative epoch: `who` names the scheduler.
  static void check_epoch(const char* who, std::int64_t epoch) {
    if (epoch < 0) {
      throw ValueError(std::string(who) + ".lr_at: epoch must be >= 0, got " + std::to_string(epoch));
    }
  }

 private:
  Optimizer<T>& opt_;
  double base_lr_;
  std::int64_t epoch_ = 0;
};

// lr = base * gamma^floor(epoch / step_size)   (torch.optim.lr_scheduler.StepLR)
// step_size > 0; gamma finite and > 0 (PyTorch accepts any gamma: 0 or a negative one gives
// an lr of 0 or a negative lr, which the optimizer refuses one step_size later).
template <class T>
class StepLR : public LRScheduler<T> {
 public:
  StepLR(Optimizer<T>& opt, std::int64_t step_size, double gamma = 0.1);
  double lr_at(std::int64_t epoch) const override;
  const char* name() const override { return "StepLR"; }

 protected:
  SchedulerState fields() const override;
  void load_fields(const SchedulerState& state) override;

 private:
  std::int64_t step_size_;
  double gamma_;
};

// lr = eta_min + (base - eta_min) (1 + cos(pi epoch / T_max)) / 2   (CosineAnnealingLR's
// closed form; PyTorch's step() uses an equivalent recursive form that agrees to rounding).
// T_max > 0; eta_min finite and >= 0.
template <class T>
class CosineAnnealingLR : public LRScheduler<T> {
 public:
  CosineAnnealingLR(Optimizer<T>& opt, std::int64_t t_max, double eta_min = 0);
  double lr_at(std::int64_t epoch) const override;
  const char* name() const override { return "CosineAnnealingLR"; }

 protected:
  SchedulerState fields() const override;
  void load_fields(const SchedulerState& state) override;

 private:
  std::int64_t t_max_;
  double eta_min_;
};

// Linear warmup, torch.optim.lr_scheduler.LinearLR: the factor goes linearly from
// start_factor to end_factor over total_iters steps, then stays. start_factor in (0, 1],
// end_factor in [0, 1], total_iters > 0.
template <class T>
class LinearLR : public LRScheduler<T> {
 public:
  LinearLR(Optimizer<T>& opt, double start_factor = 1.0 / 3, double end_factor = 1.0,
           std::int64_t total_iters = 5);
  double lr_at(std::int64_t epoch) const override;
  const char* name() const override { return "LinearLR"; }

 protected:
  SchedulerState fields() const override;
  void load_fields(const SchedulerState& state) override;

 private:
  double start_, end_;
  std::int64_t total_;
};

extern template class LRScheduler<float>;
extern template class LRScheduler<double>;
extern template class StepLR<float>;
extern template class StepLR<double>;
extern template class CosineAnnealingLR<float>;
extern template class CosineAnnealingLR<double>;
extern template class LinearLR<float>;
extern template class LinearLR<double>;

}  // namespace tapegrad
