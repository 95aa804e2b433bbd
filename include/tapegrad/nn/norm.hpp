#pragma once
// LayerNorm and BatchNorm1d modules. The arithmetic is in the fused ops of ops/norm.hpp; the
// modules hold the parameters and (BatchNorm) the running statistics.
#include <optional>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/ops/norm.hpp"

namespace tapegrad {

class LayerNormOptions {
 public:
  LayerNormOptions& eps(double e) {
    eps_ = e;
    return *this;
  }
  LayerNormOptions& elementwise_affine(bool a) {
    affine_ = a;
    return *this;
  }
  double eps() const { return eps_; }
  bool elementwise_affine() const { return affine_; }

 private:
  double eps_ = 1e-5;
  bool affine_ = true;
};

// torch.nn.LayerNorm: normalizes each example over its trailing dims `normalized_shape`
// (biased variance), then y = xhat * weight + bias (weight = 1, bias = 0 at init). An
// example's output depends on that example alone: not on the rest of its batch.
template <class T>
class LayerNorm : public Module<T> {
 public:
  explicit LayerNorm(Shape normalized_shape, LayerNormOptions options = {});
  // LayerNorm(64) as in PyTorch: an int is the size of the last dim, LayerNorm(Shape{64}).
  explicit LayerNorm(std::size_t normalized_shape, LayerNormOptions options = {})
      : LayerNorm(Shape{normalized_shape}, options) {}
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "LayerNorm"; }
  std::string extra_repr() const override;
  const LayerNormOptions& options() const { return options_; }

  Parameter<T>* weight = nullptr;  // null without elementwise_affine
  Parameter<T>* bias = nullptr;

 private:
  Shape shape_;
  LayerNormOptions options_;
};

class BatchNormOptions {
 public:
  BatchNormOptions& eps(double e) {
    eps_ = e;
    return *this;
  }
  // std::nullopt: running statistics are the cumulative average over all batches seen.
  BatchNormOptions& momentum(std::optional<double> m) {
    momentum_ = m;
    return *this;
  }
  BatchNormOptions& affine(bool a) {
    affine_ = a;
    return *this;
  }
  BatchNormOptions& track_running_stats(bool t) {
    track_ = t;
    return *this;
  }
  double eps() const { return eps_; }
  std::optional<double> momentum() const { return momentum_; }
  bool affine() const { return affine_; }
  bool track_running_stats() const { return track_; }

 private:
  double eps_ = 1e-5;
  std::optional<double> momentum_ = 0.1;
  bool affine_ = true;
  bool track_ = true;
};

// torch.nn.BatchNorm1d for x of shape (N, C) or (N, C, L): each channel is normalized over
// the batch (and length) axes, so an example's output depends on the other examples in its
// batch. Training mode uses the batch's mean and biased variance and updates
//   running_mean = (1 - m) running_mean + m * batch_mean
//   running_var  = (1 - m) running_var  + m * batch_var * n / (n - 1)     (unbiased, n = N*L)
//   num_batches_tracked += 1          (m = momentum, or 1 / num_batches_tracked if none)
// Eval mode uses the running statistics. Without track_running_stats there are no buffers
// and both modes use batch statistics. Training with one value per channel throws StateError
// and changes nothing.
//
// num_batches_tracked is stored as a 0-d array of T (PyTorch: int64), so it fits a
// state_dict of one dtype; it counts exactly up to 2^24 batches in float.
template <class T>
class BatchNorm1d : public Module<T> {
 public:
  explicit BatchNorm1d(std::size_t num_features, BatchNormOptions options = {});
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "BatchNorm1d"; }
  std::string extra_repr() const override;

  Parameter<T>* weight = nullptr;  // null without affine
  Parameter<T>* bias = nullptr;
  xt::xarray<T>* running_mean = nullptr;  // null without track_running_stats
  xt::xarray<T>* running_var = nullptr;
  xt::xarray<T>* num_batches_tracked = nullptr;

 private:
  std::size_t c_;
  BatchNormOptions options_;
  BatchStatistics batch_stats_;  // a training forward's, for the running statistics
};

extern template class LayerNorm<float>;
extern template class LayerNorm<double>;
extern template class BatchNorm1d<float>;
extern template class BatchNorm1d<double>;

}  // namespace tapegrad
