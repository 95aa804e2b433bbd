#include "tapegrad/nn/rms_norm.hpp"
#include "tapegrad/nn/repr.hpp"

#include <algorithm>
#include <string>

#include "../core/check_eps.hpp"

namespace tapegrad {

template <class T>
RMSNorm<T>::RMSNorm(Shape normalized_shape, RMSNormOptions options)
    : shape_(std::move(normalized_shape)), options_(options) {
  if (shape_.empty()) throw ValueError("RMSNorm: normalized_shape must have at least one dim");
  if (checked_numel("RMSNorm: normalized_shape", shape_) == 0) {
    throw ValueError("RMSNorm: normalized_shape " + shape_str(shape_) + " is empty");
  }
  if (options_.eps()) detail::check_eps("RMSNorm", *options_.eps());
  if (options_.elementwise_affine()) weight = &this->register_parameter("weight", xt::ones<T>(shape_));
}

template <class T>
Var<T> RMSNorm<T>::forward(Tape<T>& t, const Var<T>& x) {
  const Shape& xs = t.shape(x);
  const std::size_t k = shape_.size();
  if (xs.size() < k || !std::equal(shape_.begin(), shape_.end(), xs.end() - static_cast<std::ptrdiff_t>(k))) {
    throw ShapeError("RMSNorm: given normalized_shape=" + shape_str(shape_) +
                     ", expected input with shape (*, " + shape_str(shape_).substr(1) +
                     ", but got input of shape " + shape_str(xs));
  }
  return rms_norm(x, weight ? t.param(*weight) : Var<T>(), k, options_.eps());
}

template <class T>
std::string RMSNorm<T>::extra_repr() const {
  return python_shape(shape_) +
         ", eps=" + (options_.eps() ? python_float(*options_.eps()) : std::string("None")) +
         ", elementwise_affine=" + (options_.elementwise_affine() ? "True" : "False");
}

template class RMSNorm<float>;
template class RMSNorm<double>;

}  // namespace tapegrad
