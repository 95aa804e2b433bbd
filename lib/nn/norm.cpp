#include "tapegrad/nn/norm.hpp"

#include <cmath>

#include "tapegrad/ops/norm.hpp"
#include "tapegrad/nn/repr.hpp"

#include "../core/check_eps.hpp"

namespace tapegrad {

// ---- LayerNorm ----

template <class T>
LayerNorm<T>::LayerNorm(Shape normalized_shape, LayerNormOptions options)
    : shape_(std::move(normalized_shape)), options_(options) {
  if (shape_.empty()) throw ValueError("LayerNorm: normalized_shape must have at least one dim");
  checked_numel("LayerNorm: normalized_shape", shape_);
  detail::check_eps("LayerNorm", options_.eps());  // here, not only in the op: see check_eps.hpp
  if (options_.elementwise_affine()) {
    weight = &this->register_parameter("weight", xt::ones<T>(shape_));
    bias = &this->register_parameter("bias", xt::zeros<T>(shape_));
  }
}

template <class T>
Var<T> LayerNorm<T>::forward(Tape<T>& t, const Var<T>& x) {
  const Shape& xs = t.shape(x);
  const std::size_t k = shape_.size();
  if (xs.size() < k || !std::equal(shape_.begin(), shape_.end(), xs.end() - static_cast<std::ptrdiff_t>(k))) {
    throw ShapeError("LayerNorm: given normalized_shape=" + shape_str(shape_) +
                     ", expected input with shape (*, " + shape_str(shape_).substr(1) +
                     ", but got input of shape " + shape_str(xs));
  }
  return layer_norm(x, weight ? t.param(*weight) : Var<T>(), bias ? t.param(*bias) : Var<T>(), k,
                    options_.eps());
}

template <class T>
std::string LayerNorm<T>::extra_repr() const {
  return python_shape(shape_) + ", eps=" + python_float(options_.eps()) +
         ", elementwise_affine=" + (options_.elementwise_affine() ? "True" : "False");
}

// ---- BatchNorm1d ----

template <class T>
BatchNorm1d<T>::BatchNorm1d(std::size_t num_features, BatchNormOptions options)
    : c_(num_features), options_(options) {
  checked_size("BatchNorm1d: num_features", num_features);
  if (num_features == 0) throw ValueError("BatchNorm1d: num_features must be positive");
  detail::check_eps("BatchNorm1d", options_.eps());  // here, not only in the op: see check_eps.hpp
  if (options_.momentum() && !(*options_.momentum() >= 0 && *options_.momentum() <= 1)) {
    throw ValueError("BatchNorm1d: momentum must be in [0, 1], got " + std::to_string(*options_.momentum()));
  }
  if (options_.affine()) {
    weight = &this->register_parameter("weight", xt::ones<T>({num_features}));
    bias = &this->register_parameter("bias", xt::zeros<T>({num_features}));
  }
  if (options_.track_running_stats()) {
    running_mean = &this->register_buffer("running_mean", xt::zeros<T>({num_features}));
    running_var = &this->register_buffer("running_var", xt::ones<T>({num_features}));
    num_batches_tracked = &this->register_buffer("num_batches_tracked", xt::xarray<T>(T(0)));
  }
}

template <class T>
Var<T> BatchNorm1d<T>::forward(Tape<T>& t, const Var<T>& x) {
  const Shape& xs = t.shape(x);
  if ((xs.size() != 2 && xs.size() != 3) || xs[1] != c_) {
    throw ShapeError("BatchNorm1d: expected input of shape (N, " + std::to_string(c_) + ") or (N, " +
                     std::to_string(c_) + ", L), got input of shape " + shape_str(xs));
  }
  const bool use_running = !this->is_training() && running_mean;
  const std::size_t per_channel = xs[0] * (xs.size() == 3 ? xs[2] : 1);
  if (!use_running && per_channel < 2) {  // checked here too so no parameter gets bound
    throw StateError("BatchNorm1d: Expected more than 1 value per channel when training, got input size " +
                     shape_str(xs) + ". Use eval() or a batch of at least 2.");
  }
  const Var<T> w = weight ? t.param(*weight) : Var<T>();
  const Var<T> b = bias ? t.param(*bias) : Var<T>();
  if (use_running) return batch_norm_eval(x, w, b, *running_mean, *running_var, options_.eps());

  // The batch statistics are kept only to update the running ones: an eval forward without
  // running statistics writes nothing into the module, so threads may share it.
  const bool update = this->is_training() && running_mean;
  if (!update) return batch_norm(x, w, b, options_.eps());
  Var<T> y = batch_norm(x, w, b, options_.eps(), batch_stats_);  // throws before any update

  // From the double statistics: a float batch variance may exceed FLT_MAX where the running
  // one does not. Anomaly mode refuses an update to NaN or Inf before writing anything.
  T& count = (*num_batches_tracked)();
  const double m = options_.momentum() ? *options_.momentum() : 1.0 / (static_cast<double>(count) + 1);
  const double n = static_cast<double>(per_channel);
  const double unbias = n / (n - 1);
  T* rm = running_mean->data();
  T* rv = running_var->data();
  const auto new_var = [&](std::size_t c) {
    return static_cast<T>((1 - m) * rv[c] + m * batch_stats_.var[c] * unbias);
  };
  for (std::size_t c = 0; c < c_ && t.detect_anomaly(); ++c) {
    if (std::isfinite(new_var(c))) continue;
    throw NumericalError("anomaly: BatchNorm1d's running_var for channel " + std::to_string(c) +
                         " would become NaN or Inf (batch variance " + std::to_string(batch_stats_.var[c]) +
                         " in double)");
  }
  count += T(1);
  for (std::size_t c = 0; c < c_; ++c) {
    rm[c] = static_cast<T>((1 - m) * rm[c] + m * batch_stats_.mean[c]);
    rv[c] = new_var(c);
  }
  return y;
}

template <class T>
std::string BatchNorm1d<T>::extra_repr() const {
  return std::to_string(c_) + ", eps=" + python_float(options_.eps()) +
         ", momentum=" + (options_.momentum() ? python_float(*options_.momentum()) : std::string("None")) +
         ", affine=" + (options_.affine() ? "True" : "False") +
         ", track_running_stats=" + (options_.track_running_stats() ? "True" : "False");
}

template class LayerNorm<float>;
template class LayerNorm<double>;
template class BatchNorm1d<float>;
template class BatchNorm1d<double>;

}  // namespace tapegrad
