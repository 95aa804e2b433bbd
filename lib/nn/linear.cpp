#include "tapegrad/nn/linear.hpp"

#include <cmath>

#include "tapegrad/ops/matmul.hpp"

namespace tapegrad {

namespace {
template <class T>
xt::xarray<T> fan_in_uniform(const Shape& shape, std::size_t fan_in, Generator& gen) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(static_cast<double>(fan_in)) : 0.0;
  return uniform_array<T>(shape, -bound, bound, gen);
}

// (out_features, in_features), checked before anything is allocated: a negative size passed
// as size_t, or a product that overflows, is a ValueError naming both.
Shape weight_shape(std::size_t in_features, std::size_t out_features) {
  checked_size("Linear: in_features", in_features);
  checked_size("Linear: out_features", out_features);
  checked_mul("Linear: out_features * in_features (the weight's number of elements)", out_features,
              in_features);
  return {out_features, in_features};
}
}  // namespace

template <class T>
Linear<T>::Linear(std::size_t in_features, std::size_t out_features, LinearOptions options, Generator& gen)
    // kaiming_uniform(a = sqrt(5)): gain = sqrt(2 / (1 + 5)), bound = gain * sqrt(3 / fan_in)
    // = 1 / sqrt(fan_in).
    : weight(&this->register_parameter(
          "weight", fan_in_uniform<T>(weight_shape(in_features, out_features), in_features, gen))),
      in_(in_features),
      out_(out_features) {
  if (options.bias())
    bias = &this->register_parameter("bias", fan_in_uniform<T>({out_features}, in_features, gen));
}

template <class T>
Var<T> Linear<T>::forward(Tape<T>& t, const Var<T>& x) {
  // Validate before binding the parameters, so a bad input leaves the tape unchanged.
  const Shape& xs = t.shape(x);
  if (xs.empty() || xs.back() != in_) {
    throw ShapeError("Linear: expected input with last dim in_features=" + std::to_string(in_) +
                     ", got input of shape " + shape_str(xs));
  }
  return linear(x, t.param(*weight), bias ? t.param(*bias) : Var<T>());
}

template <class T>
std::string Linear<T>::extra_repr() const {
  return "in_features=" + std::to_string(in_) + ", out_features=" + std::to_string(out_) +
         ", bias=" + (bias ? "True" : "False");
}

template class Linear<float>;
template class Linear<double>;

}  // namespace tapegrad
