#pragma once
// A trainable tensor that outlives tapes: a module's weight, an optimizer's target.
#include <cstdint>
#include <string>

#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>

#include "tapegrad/core/shape.hpp"

namespace tapegrad {

// `value` is read by every tape that binds the parameter (`tape.param(p)`), without a copy.
// `grad` has value's shape, starts at zero and accumulates over backward calls until
// zero_grad(), as in PyTorch. (PyTorch starts from `None`; a zero array behaves the same for
// every update rule we implement, and keeps optimizers free of null checks.)
//
// `version` counts in-place changes of `value`. Optimizers and load_state_dict bump it; a
// backward pass through a tape that bound an older version throws, as PyTorch does when a
// saved tensor was modified in place. Code that writes `value` directly should call bump().
template <class T>
struct Parameter {
  Parameter() : Parameter(xt::xarray<T>::from_shape({0})) {}
  explicit Parameter(xt::xarray<T> v, bool requires_grad_ = true)
      : value(std::move(v)), grad(xt::zeros<T>(value.shape())), requires_grad(requires_grad_) {}

  xt::xarray<T> value;
  xt::xarray<T> grad;
  bool requires_grad = true;
  std::uint64_t version = 0;

  const Shape& shape() const { return value.shape(); }
  std::size_t size() const { return value.size(); }
  void zero_grad() {
    if (grad.shape() != value.shape()) grad.resize(value.shape());
    grad.fill(T(0));
  }
  void bump() { ++version; }
};

}  // namespace tapegrad
