#pragma once
// Learning-rate schedulers: call step() once per epoch (or per iteration, as you count),
// after optimizer.step(), as in PyTorch. They set the optimizer's lr from the closed forms.
//
// Every argument is checked at construction (a ValueError naming it: NaN, infinity, or a value
// outside its range). step() is all or nothing: it computes the next lr first and, if the
// optimizer refuses it (say gamma^k overflowed to infinity), throws with last_epoch() and the
// lr unchanged.
#include <cstdint>
#include <string>

#include "tapegrad/core/error.hpp"
#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad {

template <class T>
class LRScheduler {
 public:
  explicit LRScheduler(Optimizer<T>& opt) : opt_(opt), base_lr_(opt.lr()) {}
  virtual ~LRScheduler() = default;
  void step() {
    opt_.set_lr(lr_at(epoch_ + 1));  // throws before changing anything if the lr is refused
    ++epoch_;
  }
  std::int64_t last_epoch() const { return epoch_; }
  double base_lr() const { return base_lr_; }
  // The learning rate after `epoch` scheduler steps (epoch >= 0, else a ValueError).
  virtual double lr_at(std::int64_t epoch) const = 0;

 protected:
  void init() { opt_.set_lr(lr_at(0)); }
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

 private:
  double start_, end_;
  std::int64_t total_;
};

extern template class StepLR<float>;
extern template class StepLR<double>;
extern template class CosineAnnealingLR<float>;
extern template class CosineAnnealingLR<double>;
extern template class LinearLR<float>;
extern template class LinearLR<double>;

}  // namespace tapegrad
