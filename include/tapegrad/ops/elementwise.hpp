#pragma once
// Elementwise arithmetic and math. Binary ops broadcast as NumPy does; their backward sums
// the gradient back down to each input's shape.
#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// ---- binary, broadcasting ----
template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b);  // a + b
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b);  // a - b
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b);  // a * b
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b);  // a / b

// ---- with a constant ----
template <class T>
Var<T> add_scalar(const Var<T>& x, scalar_t<T> c);  // x + c
template <class T>
Var<T> mul_scalar(const Var<T>& x, scalar_t<T> c);  // x * c
template <class T>
Var<T> rsub_scalar(const Var<T>& x, scalar_t<T> c);  // c - x
template <class T>
Var<T> rdiv_scalar(const Var<T>& x, scalar_t<T> c);  // c / x

// ---- unary ----
template <class T>
Var<T> neg(const Var<T>& x);
template <class T>
Var<T> pow(const Var<T>& x, scalar_t<T> exponent);  // x^p for a constant p
template <class T>
Var<T> exp(const Var<T>& x);
template <class T>
Var<T> log(const Var<T>& x);
template <class T>
Var<T> sqrt(const Var<T>& x);
template <class T>
Var<T> abs(const Var<T>& x);  // d|x|/dx = sign(x), 0 at 0 (PyTorch)
// min(max(x, lo), hi); the gradient passes where lo <= x <= hi (PyTorch's clamp).
template <class T>
Var<T> clamp(const Var<T>& x, scalar_t<T> lo, scalar_t<T> hi);
template <class T>
Var<T> clamp_min(const Var<T>& x, scalar_t<T> lo);
template <class T>
Var<T> clamp_max(const Var<T>& x, scalar_t<T> hi);

// ---- operators ----
template <class T>
Var<T> operator+(const Var<T>& a, const Var<T>& b) {
  return add(a, b);
}
template <class T>
Var<T> operator-(const Var<T>& a, const Var<T>& b) {
  return sub(a, b);
}
template <class T>
Var<T> operator*(const Var<T>& a, const Var<T>& b) {
  return mul(a, b);
}
template <class T>
Var<T> operator/(const Var<T>& a, const Var<T>& b) {
  return div(a, b);
}
template <class T>
Var<T> operator-(const Var<T>& x) {
  return neg(x);
}
template <class T>
Var<T> operator+(const Var<T>& x, scalar_t<T> c) {
  return add_scalar(x, c);
}
template <class T>
Var<T> operator+(scalar_t<T> c, const Var<T>& x) {
  return add_scalar(x, c);
}
template <class T>
Var<T> operator-(const Var<T>& x, scalar_t<T> c) {
  return add_scalar(x, -c);
}
template <class T>
Var<T> operator-(scalar_t<T> c, const Var<T>& x) {
  return rsub_scalar(x, c);
}
template <class T>
Var<T> operator*(const Var<T>& x, scalar_t<T> c) {
  return mul_scalar(x, c);
}
template <class T>
Var<T> operator*(scalar_t<T> c, const Var<T>& x) {
  return mul_scalar(x, c);
}
template <class T>
Var<T> operator/(const Var<T>& x, scalar_t<T> c) {
  return mul_scalar(x, T(1) / c);
}
template <class T>
Var<T> operator/(scalar_t<T> c, const Var<T>& x) {
  return rdiv_scalar(x, c);
}

// ---- compound assignment ----
// x += y records x + y and rebinds the handle x to the result, as micrograd's `a += b` does
// (Python's fallback a = a + b). Deliberate difference from PyTorch: nothing is changed in
// place. The node x named before stays on the tape with its value, and other copies of that
// Var still refer to it; the gradient of the old x flows through the new op as usual.
// As for PyTorch's in-place ops, y must broadcast to x's shape without changing it: a result
// of another shape is a ShapeError naming both shapes, and x is unchanged on any throw.
namespace detail {
template <class T>
void check_compound(const char* op, const Var<T>& x, const Var<T>& y) {
  Tape<T>::of(op, {x, y});
  const Shape out = broadcast_shapes(op, x.shape(), y.shape());
  if (out != x.shape()) {
    throw ShapeError(std::string(op) + ": output with shape " + shape_str(x.shape()) +
                     " doesn't match the broadcast shape " + shape_str(out));
  }
}
}  // namespace detail
template <class T>
Var<T>& operator+=(Var<T>& x, const Var<T>& y) {
  detail::check_compound("+=", x, y);
  return x = add(x, y);
}
template <class T>
Var<T>& operator-=(Var<T>& x, const Var<T>& y) {
  detail::check_compound("-=", x, y);
  return x = sub(x, y);
}
template <class T>
Var<T>& operator*=(Var<T>& x, const Var<T>& y) {
  detail::check_compound("*=", x, y);
  return x = mul(x, y);
}
template <class T>
Var<T>& operator/=(Var<T>& x, const Var<T>& y) {
  detail::check_compound("/=", x, y);
  return x = div(x, y);
}
template <class T>
Var<T>& operator+=(Var<T>& x, scalar_t<T> c) {
  Tape<T>::of("+=", {x});
  return x = x + c;
}
template <class T>
Var<T>& operator-=(Var<T>& x, scalar_t<T> c) {
  Tape<T>::of("-=", {x});
  return x = x - c;
}
template <class T>
Var<T>& operator*=(Var<T>& x, scalar_t<T> c) {
  Tape<T>::of("*=", {x});
  return x = x * c;
}
template <class T>
Var<T>& operator/=(Var<T>& x, scalar_t<T> c) {
  Tape<T>::of("/=", {x});
  return x = x / c;
}

}  // namespace tapegrad
