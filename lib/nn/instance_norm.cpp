#include "tapegrad/nn/instance_norm.hpp"

#include <string>

#include "tapegrad/ops/norm.hpp"
#include "tapegrad/nn/repr.hpp"

#include "../core/check_eps.hpp"
#include "channel_norm_common.hpp"

namespace tapegrad {

template <class T>
InstanceNorm1d<T>::InstanceNorm1d(std::size_t num_features, InstanceNormOptions options)
    : c_(num_features), options_(options) {
  detail::check_num_features("InstanceNorm1d", num_features);
  detail::check_eps("InstanceNorm1d", options_.eps());
  detail::check_momentum("InstanceNorm1d", options_.momentum());
  if (options_.affine()) this->register_affine(Shape{num_features}, weight, bias);
  if (options_.track_running_stats()) {
    this->register_running_stats(num_features, running_mean, running_var, num_batches_tracked);
  }
}

template <class T>
Var<T> InstanceNorm1d<T>::forward(Tape<T>& t, const Var<T>& x) {
  const Shape& xs = t.shape(x);
  detail::check_channel_input("InstanceNorm1d", xs, c_, detail::ChannelInput::sequence);
  if (xs[0] == 0 || xs[2] == 0) {
    throw ShapeError("InstanceNorm1d: expected a non-empty input, got shape " + shape_str(xs));
  }
  const bool use_input_stats = this->is_training() || !running_mean;
  if (use_input_stats && xs[2] == 1) {  // PyTorch's _verify_spatial_size
    throw ValueError("InstanceNorm1d: Expected more than 1 spatial element when training, got input size " +
                     shape_str(xs));
  }
  const detail::AffineVars<T> a = detail::bind_affine(t, weight, bias);
  if (!use_input_stats) {
    return detail::normalize_with_running_stats(x, a, {running_mean, running_var, num_batches_tracked},
                                                options_.eps());
  }
  const bool update = this->is_training() && running_mean;
  if (!update) return group_norm(x, c_, a.weight, a.bias, options_.eps());
  Var<T> y = group_norm(x, c_, a.weight, a.bias, options_.eps(), &stats_);  // throws before any update

  const std::size_t n = xs[0];
  const double m = options_.momentum(), len = static_cast<double>(xs[2]);
  const double unbias = len / (len - 1);
  T* rm = running_mean->data();
  T* rv = running_var->data();
  for (std::size_t c = 0; c < c_; ++c) {
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < n; ++i) {
      mean += stats_.mean[i * c_ + c];
      var += stats_.var[i * c_ + c] * unbias;
    }
    rm[c] = static_cast<T>((1 - m) * rm[c] + m * (mean / static_cast<double>(n)));
    rv[c] = static_cast<T>((1 - m) * rv[c] + m * (var / static_cast<double>(n)));
  }
  return y;
}

template <class T>
std::string InstanceNorm1d<T>::extra_repr() const {
  return std::to_string(c_) + ", eps=" + python_float(options_.eps()) +
         ", momentum=" + python_float(options_.momentum()) +
         ", affine=" + (options_.affine() ? "True" : "False") +
         ", track_running_stats=" + (options_.track_running_stats() ? "True" : "False");
}

template class InstanceNorm1d<float>;
template class InstanceNorm1d<double>;

}  // namespace tapegrad
