#pragma once
// torch.optim.lr_scheduler.OneCycleLR (PyTorch 1.13): the 1cycle policy, stepped once per
// batch. The lr rises from max_lr / div_factor to max_lr over the first pct_start of the steps,
// then falls to max_lr / (div_factor final_div_factor); with three_phase it first falls back to
// max_lr / div_factor, symmetrically, and only then to the minimum. The optimizer's own lr is
// ignored (as in PyTorch). With cycle_momentum the momentum moves inversely between
// max_momentum and base_momentum: SGD's and RMSprop's "momentum", Adam's and AdamW's "beta1"
// (PyTorch cycles betas[0]).
//
//   tg::OneCycleLR<float> sched(opt, 0.1, steps);   // or OneCycleOptions with epochs, steps_per_epoch
//   for (...) { ...; opt.step(); sched.step(); }
//
// Phase k runs from step s0 to s1 (PyTorch's end steps: pct_start total - 1, total - 1; three
// phases: pct_start total - 1, 2 pct_start total - 2, total - 1); at step s,
// pct = (s - s0) / (s1 - s0) and the value is anneal(start, end, pct), where
// anneal cos = end + (start - end) (1 + cos(pi pct)) / 2 and linear = start + (end - start) pct.
// Stepping past total_steps is a ValueError ("Tried to step 101 times. The specified number of
// total steps is 100"), as in PyTorch; so is a phase of zero length that a step falls in (PyTorch
// divides by zero there: ZeroDivisionError).
// One deliberate difference: the last step allowed, total_steps, lies past the end of the last
// phase (pct > 1); there a linear anneal overshoots min_lr and PyTorch sets a negative lr
// (-0.018 for max_lr 0.5 over 37 steps). Optimizers here refuse a negative lr, so OneCycleLR
// gives 0 instead; every other value is PyTorch's.
#include <cstdint>

#include "tapegrad/optim/optimizer.hpp"
#include "tapegrad/optim/scheduler.hpp"

namespace tapegrad {

enum class AnnealStrategy { cos, linear };

struct OneCycleOptions {
  // Either total_steps > 0, or total_steps = 0 and epochs > 0, steps_per_epoch > 0
  // (total = epochs steps_per_epoch).
  std::int64_t total_steps = 0;
  std::int64_t epochs = 0;
  std::int64_t steps_per_epoch = 0;
  double pct_start = 0.3;  // in [0, 1]
  AnnealStrategy anneal_strategy = AnnealStrategy::cos;
  bool cycle_momentum = true;
  double base_momentum = 0.85;
  double max_momentum = 0.95;
  double div_factor = 25;         // initial lr = max_lr / div_factor
  double final_div_factor = 1e4;  // min lr = initial lr / final_div_factor
  bool three_phase = false;
};

template <class T>
class OneCycleLR : public LRScheduler<T> {
 public:
  OneCycleLR(Optimizer<T>& opt, double max_lr, OneCycleOptions options);
  OneCycleLR(Optimizer<T>& opt, double max_lr, std::int64_t total_steps);

  double lr_at(std::int64_t epoch) const override;
  // The momentum (or beta1) at `epoch`; ValueError unless cycle_momentum.
  double momentum_at(std::int64_t epoch) const;
  std::int64_t total_steps() const { return options_.total_steps; }
  const char* name() const override { return "OneCycleLR"; }

 protected:
  void apply(std::int64_t epoch) override;
  // "total_steps", "max_lrs", "min_lrs" (PyTorch keeps these two, initial_lr = base_lrs, and the
  // momenta in param_groups), "pct_start", "anneal_strategy" ("cos"/"linear"), "cycle_momentum",
  // "use_beta1", "base_momentum", "max_momentum", "three_phase" (flags 0/1).
  SchedulerState fields() const override;
  void load_fields(const SchedulerState& state) override;

 private:
  // (lr, momentum) at step `epoch`.
  void values_at(std::int64_t epoch, double& lr, double& momentum) const;

  OneCycleOptions options_;
  double max_lr_, min_lr_;
  const char* momentum_key_;  // "momentum" or "beta1"
};

extern template class OneCycleLR<float>;
extern template class OneCycleLR<double>;

}  // namespace tapegrad
