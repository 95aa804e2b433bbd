#pragma once
// LayerNorm and BatchNorm1d modules. The arithmetic is in the fused ops of ops/norm.hpp; the
// modules hold the parameters and (BatchNorm) the running statistics.
#include <optional>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/ops/norm.hpp"

namespace tapegrad {

// The option pieces the normalization modules' option classes are made of, as nn/rnn.hpp's are
// for the recurrent modules: LayerNormOptions and BatchNormOptions here, InstanceNormOptions
// (nn/instance_norm.hpp), BatchRenormOptions (nn/batch_renorm.hpp), GroupNormOptions
// (nn/group_norm.hpp), and LNLSTMOptions' and LNGRUOptions' eps (nn/ln_recurrent.hpp). Each is
// a base of the final options class, Derived, whose setters chain (each returns Derived&). The
// defaults that differ between modules are template arguments. The values are validated by the
// module's constructor.
template <class Derived>
class EpsOption {
 public:
  // Added to the variance before the square root (PyTorch's default: 1e-5).
  Derived& eps(double e) {
    eps_ = e;
    return static_cast<Derived&>(*this);
  }
  double eps() const { return eps_; }

 private:
  double eps_ = 1e-5;
};

// The running statistics' momentum (default 0.1), a double or (BatchNormOptions) an
// std::optional<double>.
template <class Derived, class Momentum = double>
class MomentumOption {
 public:
  Derived& momentum(Momentum m) {
    momentum_ = m;
    return static_cast<Derived&>(*this);
  }
  Momentum momentum() const { return momentum_; }

 private:
  Momentum momentum_ = 0.1;
};

// Whether the module has a per-channel weight and bias.
template <class Derived, bool Default>
class AffineOption {
 public:
  Derived& affine(bool a) {
    affine_ = a;
    return static_cast<Derived&>(*this);
  }
  bool affine() const { return affine_; }

 private:
  bool affine_ = Default;
};

// Whether the module keeps running statistics (buffers) for eval mode.
template <class Derived, bool Default>
class TrackRunningStatsOption {
 public:
  Derived& track_running_stats(bool t) {
    track_ = t;
    return static_cast<Derived&>(*this);
  }
  bool track_running_stats() const { return track_; }

 private:
  bool track_ = Default;
};

class LayerNormOptions : public EpsOption<LayerNormOptions> {
 public:
  LayerNormOptions& elementwise_affine(bool a) {
    affine_ = a;
    return *this;
  }
  bool elementwise_affine() const { return affine_; }

 private:
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

// torch.nn.BatchNorm1d's: eps = 1e-5, momentum = 0.1 (std::nullopt: the running statistics are
// the cumulative average over all batches seen), affine = true, track_running_stats = true.
class BatchNormOptions : public EpsOption<BatchNormOptions>,
                         public MomentumOption<BatchNormOptions, std::optional<double>>,
                         public AffineOption<BatchNormOptions, true>,
                         public TrackRunningStatsOption<BatchNormOptions, true> {};

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
  std::size_t num_features() const { return c_; }
  const BatchNormOptions& options() const { return options_; }

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
