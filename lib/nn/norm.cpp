#include "tapegrad/nn/norm.hpp"

#include "tapegrad/ops/norm.hpp"
#include "tapegrad/nn/repr.hpp"

#include "../core/check_eps.hpp"
#include "channel_norm_common.hpp"

namespace tapegrad {

// ---- LayerNorm ----

template <class T>
LayerNorm<T>::LayerNorm(Shape normalized_shape, LayerNormOptions options)
    : shape_(std::move(normalized_shape)), options_(options) {
  if (shape_.empty()) throw ValueError("LayerNorm: normalized_shape must have at least one dim");
  checked_numel("LayerNorm: normalized_shape", shape_);
  detail::check_eps("LayerNorm", options_.eps());  // here, not only in the op: see check_eps.hpp
  if (options_.elementwise_affine()) this->register_affine(shape_, weight, bias);
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
  detail::check_num_features("BatchNorm1d", num_features);
  detail::check_eps("BatchNorm1d", options_.eps());  // here, not only in the op: see check_eps.hpp
  detail::check_momentum("BatchNorm1d", options_.momentum());
  if (options_.affine()) this->register_affine(Shape{num_features}, weight, bias);
  if (options_.track_running_stats()) {
    this->register_running_stats(num_features, running_mean, running_var, num_batches_tracked);
  }
}

template <class T>
Var<T> BatchNorm1d<T>::forward(Tape<T>& t, const Var<T>& x) {
  const Shape& xs = t.shape(x);
  detail::check_channel_input("BatchNorm1d", xs, c_);
  const bool use_running = !this->is_training() && running_mean;
  // here too (batch_norm checks it), so that no parameter gets bound
  if (!use_running) detail::check_values_per_channel("BatchNorm1d", xs);
  const detail::AffineVars<T> a = detail::bind_affine(t, weight, bias);
  const detail::RunningStats<T> running{running_mean, running_var, num_batches_tracked};
  if (use_running) return detail::normalize_with_running_stats(x, a, running, options_.eps());

  // The batch statistics are kept only to update the running ones: an eval forward without
  // running statistics writes nothing into the module, so threads may share it.
  const bool update = this->is_training() && running_mean;
  if (!update) return batch_norm(x, a.weight, a.bias, options_.eps());
  Var<T> y = batch_norm(x, a.weight, a.bias, options_.eps(), batch_stats_);  // throws before any update
  // From the double statistics: a float batch variance may exceed FLT_MAX where the running
  // one does not. Anomaly mode refuses an update to NaN or Inf before writing anything.
  detail::update_running_stats<T>("BatchNorm1d", t, running, options_.momentum(), batch_stats_,
                                  detail::values_per_channel(xs));
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
