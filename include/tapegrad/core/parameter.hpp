#pragma once
// A trainable tensor that outlives tapes: a module's weight, an optimizer's target.
#include <cstdint>
#include <string>

#include <xtensor/xarray.hpp>
#include <xtensor/xbuilder.hpp>

#include "tapegrad/core/shape.hpp"

namespace tapegrad {

// `value` is read by every tape that binds the parameter (`tape.param(p)`), without a copy.
//
// `grad()` has value's shape, starts at zero and accumulates over backward calls until
// zero_grad(), as in PyTorch. (PyTorch starts from `None`; a zero array behaves the same for
// every update rule we implement, and keeps optimizers free of null checks.)
// zero_grad() is O(1): it marks the gradient as zero, and the zeros are written only when
// something reads or adds into it. The first backward after zero_grad() assigns the gradient
// instead (a Linear's weight gradient is then one GEMM with beta = 0: no memset, no read of the
// old values), which is PyTorch's `zero_grad(set_to_none=True)` speed with `set_to_none=False`
// semantics: every reader sees zeros.
//
// `version` counts in-place changes of `value`. Optimizers and load_state_dict bump it; a
// backward pass through a tape that bound an older version throws, as PyTorch does when a
// saved tensor was modified in place. Code that writes `value` directly should call bump().
template <class T>
struct Parameter {
  Parameter() : Parameter(xt::xarray<T>::from_shape({0})) {}
  explicit Parameter(xt::xarray<T> v, bool requires_grad_ = true)
      : value(std::move(v)), requires_grad(requires_grad_), grad_(xt::zeros<T>(value.shape())) {}

  xt::xarray<T> value;
  bool requires_grad = true;
  std::uint64_t version = 0;

  const Shape& shape() const { return value.shape(); }
  std::size_t size() const { return value.size(); }
  void bump() { ++version; }

  // dL/dvalue, accumulated since the last zero_grad(). (Writes pending zeros first, so
  // concurrent reads of one Parameter from several threads need a lock, as writes do.)
  const xt::xarray<T>& grad() const {
    materialize();
    return grad_;
  }
  // The same, for code that changes the gradient (the tape's backward, gradient clipping, a
  // test that sets a gradient by hand); torch::Tensor::mutable_grad().
  xt::xarray<T>& mutable_grad() {
    materialize();
    return grad_;
  }
  void zero_grad() {
    if (grad_.shape() != value.shape()) grad_.resize(value.shape());
    grad_zero_ = true;
  }
  // grad()'s shape, without writing pending zeros.
  const Shape& grad_shape() const { return grad_zero_ ? value.shape() : grad_.shape(); }
  // True between zero_grad() and the first write: the gradient is zero but not yet stored.
  bool grad_is_lazy_zero() const { return grad_zero_; }
  // For a writer that assigns EVERY element (BackwardCtx::input_grad_write): the storage, with
  // whatever it held, and the lazy zero considered written. Sized like value.
  xt::xarray<T>& grad_for_overwrite() {
    if (grad_.shape() != value.shape()) grad_.resize(value.shape());
    grad_zero_ = false;
    return grad_;
  }

 private:
  void materialize() const {
    if (!grad_zero_) return;
    if (grad_.shape() != value.shape()) grad_.resize(value.shape());
    grad_.fill(T(0));
    grad_zero_ = false;
  }
  mutable xt::xarray<T> grad_;
  mutable bool grad_zero_ = false;
};

}  // namespace tapegrad
