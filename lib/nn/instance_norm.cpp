#include "tapegrad/nn/instance_norm.hpp"

#include <string>

#include "tapegrad/ops/norm.hpp"
#include "tapegrad/nn/repr.hpp"

#include "../core/check_eps.hpp"

namespace tapegrad {

template <class T>
InstanceNorm1d<T>::InstanceNorm1d(std::size_t num_features, InstanceNormOptions options)
    : c_(num_features), options_(options) {
  checked_size("InstanceNorm1d: num_features", num_features);
  if (num_features == 0) throw ValueError("InstanceNorm1d: num_features must be positive");
  detail::check_eps("InstanceNorm1d", options_.eps());
  if (!(options_.momentum() >= 0 && options_.momentum() <= 1)) {
    throw ValueError("InstanceNorm1d: momentum must be in [0, 1], got " +
                     std::to_string(options_.momentum()));
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
Var<T> InstanceNorm1d<T>::forward(Tape<T>& t, const Var<T>& x) {
  const Shape& xs = t.shape(x);
  if (xs.size() != 3 || xs[1] != c_) {
    throw ShapeError("InstanceNorm1d: expected input of shape (N, " + std::to_string(c_) +
                     ", L), got input of shape " + shape_str(xs));
  }
  if (xs[0] == 0 || xs[2] == 0) {
    throw ShapeError("InstanceNorm1d: expected a non-empty input, got shape " + shape_str(xs));
  }
  const bool use_input_stats = this->is_training() || !running_mean;
  if (use_input_stats && xs[2] == 1) {  // PyTorch's _verify_spatial_size
    throw ValueError("InstanceNorm1d: Expected more than 1 spatial element when training, got input size " +
                     shape_str(xs));
  }
  const Var<T> w = weight ? t.param(*weight) : Var<T>();
  const Var<T> b = bias ? t.param(*bias) : Var<T>();
  if (!use_input_stats) return batch_norm_eval(x, w, b, *running_mean, *running_var, options_.eps());
  const bool update = this->is_training() && running_mean;
  if (!update) return group_norm(x, c_, w, b, options_.eps());
  Var<T> y = group_norm(x, c_, w, b, options_.eps(), &stats_);  // throws before any update

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
