#pragma once
// Internal to lib/ops: the small helpers that the GroupNorm and RMSNorm ops share (the same
// checks as norm.cpp's LayerNorm and BatchNorm make, with their messages).
#include <string>
#include <vector>

#include "tapegrad/core/tape.hpp"

namespace tapegrad::detail {

// weight and bias: both undefined (no affine) or both live Vars of x's tape with shape `s`.
// what() describes `s` for the message (called only to throw). A null `b` checks weight alone.
template <class T, class What>
bool check_norm_affine(const char* op, Tape<T>& t, const Var<T>& w, const Var<T>* b, const Shape& s,
                       What&& what) {
  if (b && w.defined() != b->defined()) {
    throw ValueError(std::string(op) + ": weight and bias must be given both or neither (got " +
                     (w.defined() ? "weight only" : "bias only") + ")");
  }
  if (!w.defined()) return false;
  t.check_input(op, 1, w);
  if (b) t.check_input(op, 2, *b);
  for (const Var<T>* v : {&w, b}) {
    if (v && t.shape(*v) != s) {
      throw ShapeError(std::string(op) + ": " + (v == &w ? "weight" : "bias") + " has shape " +
                       shape_str(t.shape(*v)) + " but " + what() + " " + shape_str(s));
    }
  }
  return true;
}

// a as a 1-D array of n values (resized only when it is not), returning its data.
template <class T>
T* sized_1d(xt::xarray<T>& a, std::size_t n) {
  if (a.dimension() != 1 || a.size() != n) a.resize(Shape{n});
  return a.data();
}

// acc += v, elementwise (v in double).
template <class T>
void add_double_into(xt::xarray<T>& acc, const std::vector<double>& v) {
  T* a = acc.data();
  for (std::size_t i = 0; i < v.size(); ++i) a[i] += static_cast<T>(v[i]);
}

}  // namespace tapegrad::detail
