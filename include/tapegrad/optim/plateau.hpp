#pragma once
// torch.optim.lr_scheduler.ReduceLROnPlateau (PyTorch 1.13): lower the lr by `factor` when a
// metric (a validation loss, an accuracy) has stopped improving for `patience` epochs.
//
//   tg::ReduceLROnPlateau<float> plateau(opt);           // mode min, factor 0.1, patience 10
//   for (...) { train_epoch(...); plateau.step(validation_loss); }
//
// step(metric), after each epoch:
//   better: mode min, rel: metric < best (1 - threshold)    abs: metric < best - threshold
//           mode max, rel: metric > best (1 + threshold)    abs: metric > best + threshold
//   better -> best = metric, num_bad_epochs = 0; else ++num_bad_epochs (a NaN metric is never
//   better). In cooldown (cooldown_counter > 0): --cooldown_counter, num_bad_epochs = 0.
//   num_bad_epochs > patience -> new_lr = max(lr factor, min_lr), set only if lr - new_lr > eps;
//   then cooldown_counter = cooldown, num_bad_epochs = 0.
// It reads the optimizer's current lr, so it composes with a schedule that set it.
//
// Checked at construction (ValueError naming the value): factor in [0, 1) (PyTorch refuses only
// factor >= 1; a negative factor would give a negative lr, which the optimizer refuses),
// threshold, min_lr and eps finite and >= 0, patience and cooldown >= 0.
#include <cstdint>

#include "tapegrad/optim/optimizer.hpp"
#include "tapegrad/optim/scheduler.hpp"

namespace tapegrad {

enum class PlateauMode { min, max };
enum class ThresholdMode { rel, abs };

struct PlateauOptions {
  PlateauMode mode = PlateauMode::min;
  double factor = 0.1;
  std::int64_t patience = 10;
  double threshold = 1e-4;
  ThresholdMode threshold_mode = ThresholdMode::rel;
  std::int64_t cooldown = 0;
  double min_lr = 0;
  double eps = 1e-8;
};

template <class T>
class ReduceLROnPlateau : public Scheduler {
 public:
  explicit ReduceLROnPlateau(Optimizer<T>& opt, PlateauOptions options = {});

  // One epoch's metric. All or nothing: if the optimizer refused the reduced lr, nothing changed.
  void step(double metric);

  const char* name() const override { return "ReduceLROnPlateau"; }
  // PyTorch's keys: "mode" ("min"/"max"), "factor", "patience", "threshold", "threshold_mode"
  // ("rel"/"abs"), "cooldown", "min_lrs", "eps", "best", "num_bad_epochs", "cooldown_counter",
  // "last_epoch".
  SchedulerState state_dict() const override;
  void load_state_dict(const SchedulerState& state) override;

  std::int64_t last_epoch() const { return last_epoch_; }
  double best() const { return best_; }
  std::int64_t num_bad_epochs() const { return num_bad_epochs_; }
  std::int64_t cooldown_counter() const { return cooldown_counter_; }
  const PlateauOptions& options() const { return options_; }

 private:
  bool is_better(double metric) const;

  Optimizer<T>& opt_;
  PlateauOptions options_;
  double best_;
  std::int64_t num_bad_epochs_ = 0;
  std::int64_t cooldown_counter_ = 0;
  std::int64_t last_epoch_ = 0;
};

extern template class ReduceLROnPlateau<float>;
extern template class ReduceLROnPlateau<double>;

}  // namespace tapegrad
