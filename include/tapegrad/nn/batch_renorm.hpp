#pragma once
// BatchRenorm1d (Ioffe 2017, "Batch Renormalization: Towards Reducing Minibatch Dependence in
// Batch-Normalized Models") and its warm-up schedule. PyTorch has no such layer: the module
// follows the paper's Algorithm 1 with BatchNorm1d's running statistics and names.
#include <cstddef>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/norm.hpp"
#include "tapegrad/ops/norm.hpp"

namespace tapegrad {

// eps = 1e-5, momentum = 0.1, affine = true as BatchNorm1d (the option pieces: nn/norm.hpp),
// and the clipping limits.
class BatchRenormOptions : public EpsOption<BatchRenormOptions>,
                           public MomentumOption<BatchRenormOptions>,
                           public AffineOption<BatchRenormOptions, true> {
 public:
  // The clipping limits at construction (set_limits changes them per step).
  BatchRenormOptions& r_max(double r) {
    r_max_ = r;
    return *this;
  }
  BatchRenormOptions& d_max(double d) {
    d_max_ = d;
    return *this;
  }
  double r_max() const { return r_max_; }
  double d_max() const { return d_max_; }

 private:
  double r_max_ = 3.0;  // the paper's final values
  double d_max_ = 5.0;
};

// Batch Renormalization for x of shape (N, C) or (N, C, L). Training, per channel c with the
// batch mean mu_B and biased variance var_B over the N * L values, and the running statistics
// before this step (mu = running_mean, sigma = sqrt(running_var + eps)):
//   sigma_B = sqrt(var_B + eps)
//   r = clip(sigma_B / sigma, 1 / r_max, r_max),   d = clip((mu_B - mu) / sigma, -d_max, d_max)
//   y = ((x - mu_B) / sigma_B * r + d) * weight + bias
// r and d are constants in backward (the paper's stop_gradient). The running statistics are
// BatchNorm1d's (momentum, unbiased running_var, num_batches_tracked; the paper keeps a moving
// sigma instead: here sigma is derived from running_var); eval mode uses them as BatchNorm1d.
// With r_max = 1 and d_max = 0 it is BatchNorm1d (the same bits).
// Errors: StateError for training with one value per channel or an empty batch (nothing
// changes); ShapeError for a wrong channel count or rank; ValueError for r_max < 1, d_max < 0,
// NaN limits, a bad eps or momentum.
template <class T>
class BatchRenorm1d : public Module<T> {
 public:
  explicit BatchRenorm1d(std::size_t num_features, BatchRenormOptions options = {});
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "BatchRenorm1d"; }
  std::string extra_repr() const override;
  // The limits for the next training steps (the warm-up: BatchRenormSchedule).
  void set_limits(double r_max, double d_max);
  double r_max() const { return r_max_; }
  double d_max() const { return d_max_; }

  Parameter<T>* weight = nullptr;  // null without affine
  Parameter<T>* bias = nullptr;
  xt::xarray<T>* running_mean = nullptr;
  xt::xarray<T>* running_var = nullptr;
  xt::xarray<T>* num_batches_tracked = nullptr;

 private:
  std::size_t c_;
  BatchRenormOptions options_;
  double r_max_, d_max_;
  BatchStatistics batch_stats_;
};

// The paper's schedule (section 4.1): r_max = 1 and d_max = 0 for the first warmup_steps
// steps, then relaxed linearly to r_max_final at step r_reach and to d_max_final at step
// d_reach (the paper: 5000, 3 at 40k, 5 at 25k). Step counts are 0-based.
struct BatchRenormSchedule {
  std::size_t warmup_steps = 5000;
  double r_max_final = 3.0;
  std::size_t r_reach = 40000;
  double d_max_final = 5.0;
  std::size_t d_reach = 25000;
  double r_max(std::size_t step) const;
  double d_max(std::size_t step) const;
  // Sets both limits of m for `step`.
  template <class T>
  void apply(BatchRenorm1d<T>& m, std::size_t step) const {
    m.set_limits(r_max(step), d_max(step));
  }
};

extern template class BatchRenorm1d<float>;
extern template class BatchRenorm1d<double>;

}  // namespace tapegrad
