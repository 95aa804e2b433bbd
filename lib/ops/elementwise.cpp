#include "tapegrad/ops/elementwise.hpp"

#include <cmath>
#include <limits>

#include "../core/strided.hpp"

#include "unary_kernel.hpp"

namespace tapegrad {

using detail::unary;
using detail::unary_backward;

namespace {

// The scalar parameters unary ops keep for backward.
enum class ScaleScalar : std::size_t { k, count };  // mul_scalar's factor, rdiv_scalar's numerator
enum class PowScalar : std::size_t { p, count };
enum class ClampScalar : std::size_t { lo, hi, count };

// Calls f(i, ia, ib) for each element i of the broadcast output, with ia / ib the offsets of
// the a and b elements that meet there. Backward loops use the same walk and write
// `ga[ia] += ...`: repeated offsets sum the gradient over the broadcast dims.
template <class F>
void broadcast_loop(const Shape& out, const Shape& a, const Shape& b, F&& f) {
  if (a == out && b == out) {
    for (std::size_t i = 0, n = numel(out); i < n; ++i) {
      const auto o = static_cast<std::ptrdiff_t>(i);
      f(i, o, o);
    }
    return;
  }
  const std::size_t nd = out.size();
  detail::for_each_broadcast2(out, detail::broadcast_strides(a, nd), detail::broadcast_strides(b, nd), f);
}

// Records a binary broadcasting op: out[i] = fwd(a[ia], b[ib]).
template <class T, class Fwd>
Var<T> binary(const char* name, const Var<T>& a, const Var<T>& b, Fwd fwd,
              typename Node<T>::BackwardFn backward) {
  Tape<T>& t = Tape<T>::of(name, {a, b});
  const Shape out_shape = broadcast_shapes(name, t.shape(a), t.shape(b));
  auto r = t.record(name, {a, b});
  const T* pa = t.value(a).data();
  const T* pb = t.value(b).data();
  T* po = r.out(out_shape).data();
  broadcast_loop(out_shape, t.shape(a), t.shape(b),
                 [&](std::size_t i, std::ptrdiff_t ia, std::ptrdiff_t ib) { po[i] = fwd(pa[ia], pb[ib]); });
  return r.finish(backward);
}

// Backward of a binary op: ga[ia] += g * da(a, b, y), gb[ib] += g * db(a, b, y).
template <class T, class DA, class DB>
void binary_backward(BackwardCtx<T>& c, DA da, DB db) {
  const xt::xarray<T>& av = c.input(0);
  const xt::xarray<T>& bv = c.input(1);
  const T* pa = av.data();
  const T* pb = bv.data();
  const T* y = c.output().data();
  const T* g = c.grad().data();
  const Shape& out = c.output().shape();
  if (c.needs_grad(0)) {
    T* ga = c.input_grad(0).data();
    broadcast_loop(out, av.shape(), bv.shape(), [&](std::size_t i, std::ptrdiff_t ia, std::ptrdiff_t ib) {
      ga[ia] += g[i] * da(pa[ia], pb[ib], y[i]);
    });
  }
  if (c.needs_grad(1)) {
    T* gb = c.input_grad(1).data();
    broadcast_loop(out, av.shape(), bv.shape(), [&](std::size_t i, std::ptrdiff_t ia, std::ptrdiff_t ib) {
      gb[ib] += g[i] * db(pa[ia], pb[ib], y[i]);
    });
  }
}

}  // namespace

// add: y = a + b;  dL/da = dL/dy,  dL/db = dL/dy  (each summed over its broadcast dims)
template <class T>
Var<T> add(const Var<T>& a, const Var<T>& b) {
  return binary<T>(
      "add", a, b, [](T x, T z) { return x + z; },
      [](BackwardCtx<T>& c) {
        binary_backward<T>(
            c, [](T, T, T) { return T(1); }, [](T, T, T) { return T(1); });
      });
}

// sub: y = a - b;  dL/da = dL/dy,  dL/db = -dL/dy
template <class T>
Var<T> sub(const Var<T>& a, const Var<T>& b) {
  return binary<T>(
      "sub", a, b, [](T x, T z) { return x - z; },
      [](BackwardCtx<T>& c) {
        binary_backward<T>(
            c, [](T, T, T) { return T(1); }, [](T, T, T) { return T(-1); });
      });
}

// mul: y = a * b;  dL/da = dL/dy * b,  dL/db = dL/dy * a
template <class T>
Var<T> mul(const Var<T>& a, const Var<T>& b) {
  return binary<T>(
      "mul", a, b, [](T x, T z) { return x * z; },
      [](BackwardCtx<T>& c) {
        binary_backward<T>(
            c, [](T, T z, T) { return z; }, [](T x, T, T) { return x; });
      });
}

// div: y = a / b;  dL/da = dL/dy / b,  dL/db = -dL/dy * a / b^2
template <class T>
Var<T> div(const Var<T>& a, const Var<T>& b) {
  return binary<T>(
      "div", a, b, [](T x, T z) { return x / z; },
      [](BackwardCtx<T>& c) {
        binary_backward<T>(
            c, [](T, T z, T) { return T(1) / z; }, [](T x, T z, T) { return -x / (z * z); });
      });
}

// add_scalar: y = x + c;  dL/dx = dL/dy
template <class T>
Var<T> add_scalar(const Var<T>& x, scalar_t<T> k) {
  return unary<T>(
      "add_scalar", x, [k](T v) { return v + k; },
      [](BackwardCtx<T>& c) { unary_backward<T>(c, [](T, T) { return T(1); }); });
}

// mul_scalar: y = c x;  dL/dx = c dL/dy
template <class T>
Var<T> mul_scalar(const Var<T>& x, scalar_t<T> k) {
  return unary<T>(
      "mul_scalar", x, [k](T v) { return v * k; },
      [](BackwardCtx<T>& c) {
        const T saved_k = static_cast<T>(c.scalar(ScaleScalar::k));
        unary_backward<T>(c, [saved_k](T, T) { return saved_k; });
      },
      [k](Recorder<T>& r) { r.set_scalar(ScaleScalar::k, k); });
}

// rsub_scalar: y = c - x;  dL/dx = -dL/dy
template <class T>
Var<T> rsub_scalar(const Var<T>& x, scalar_t<T> k) {
  return unary<T>(
      "rsub_scalar", x, [k](T v) { return k - v; },
      [](BackwardCtx<T>& c) { unary_backward<T>(c, [](T, T) { return T(-1); }); });
}

// rdiv_scalar: y = c / x;  dL/dx = -dL/dy * c / x^2 = -dL/dy * y / x
template <class T>
Var<T> rdiv_scalar(const Var<T>& x, scalar_t<T> k) {
  return unary<T>(
      "rdiv_scalar", x, [k](T v) { return k / v; },
      [](BackwardCtx<T>& c) {
        const T saved_k = static_cast<T>(c.scalar(ScaleScalar::k));
        unary_backward<T>(c, [saved_k](T v, T) { return -saved_k / (v * v); });
      },
      [k](Recorder<T>& r) { r.set_scalar(ScaleScalar::k, k); });
}

// neg: y = -x;  dL/dx = -dL/dy
template <class T>
Var<T> neg(const Var<T>& x) {
  return unary<T>(
      "neg", x, [](T v) { return -v; },
      [](BackwardCtx<T>& c) { unary_backward<T>(c, [](T, T) { return T(-1); }); });
}

// pow: y = x^p;  dL/dx = dL/dy * p x^(p-1)   (0 when p = 0, as in PyTorch)
template <class T>
Var<T> pow(const Var<T>& x, scalar_t<T> p) {
  return unary<T>(
      "pow", x, [p](T v) { return std::pow(v, p); },
      [](BackwardCtx<T>& c) {
        const T saved_p = static_cast<T>(c.scalar(PowScalar::p));
        unary_backward<T>(
            c, [saved_p](T v, T) { return saved_p == T(0) ? T(0) : saved_p * std::pow(v, saved_p - T(1)); });
      },
      [p](Recorder<T>& r) { r.set_scalar(PowScalar::p, p); });
}

// exp: y = e^x;  dL/dx = dL/dy * y
template <class T>
Var<T> exp(const Var<T>& x) {
  return unary<T>(
      "exp", x, [](T v) { return std::exp(v); },
      [](BackwardCtx<T>& c) { unary_backward<T>(c, [](T, T y) { return y; }); });
}

// log: y = ln x;  dL/dx = dL/dy / x
template <class T>
Var<T> log(const Var<T>& x) {
  return unary<T>(
      "log", x, [](T v) { return std::log(v); },
      [](BackwardCtx<T>& c) { unary_backward<T>(c, [](T v, T) { return T(1) / v; }); });
}

// sqrt: y = √x;  dL/dx = dL/dy / (2 y)
template <class T>
Var<T> sqrt(const Var<T>& x) {
  return unary<T>(
      "sqrt", x, [](T v) { return std::sqrt(v); },
      [](BackwardCtx<T>& c) { unary_backward<T>(c, [](T, T y) { return T(0.5) / y; }); });
}

// abs: y = |x|;  dL/dx = dL/dy * sign(x), with sign(0) = 0
template <class T>
Var<T> abs(const Var<T>& x) {
  return unary<T>(
      "abs", x, [](T v) { return std::abs(v); },
      [](BackwardCtx<T>& c) { unary_backward<T>(c, [](T v, T) { return T((v > 0) - (v < 0)); }); });
}

// clamp: y = min(max(x, lo), hi);  dL/dx = dL/dy where lo <= x <= hi, else 0
template <class T>
Var<T> clamp(const Var<T>& x, scalar_t<T> lo, scalar_t<T> hi) {
  if (lo > hi) {
    throw ValueError("clamp: min " + std::to_string(lo) + " is greater than max " + std::to_string(hi));
  }
  return unary<T>(
      "clamp", x, [lo, hi](T v) { return v < lo ? lo : (v > hi ? hi : v); },
      [](BackwardCtx<T>& c) {
        const T saved_lo = static_cast<T>(c.scalar(ClampScalar::lo)),
                saved_hi = static_cast<T>(c.scalar(ClampScalar::hi));
        unary_backward<T>(c, [saved_lo, saved_hi](T v, T) { return T(v >= saved_lo && v <= saved_hi); });
      },
      [lo, hi](Recorder<T>& r) {
        r.set_scalar(ClampScalar::lo, lo);
        r.set_scalar(ClampScalar::hi, hi);
      });
}

template <class T>
Var<T> clamp_min(const Var<T>& x, scalar_t<T> lo) {
  return clamp(x, lo, std::numeric_limits<T>::infinity());
}

template <class T>
Var<T> clamp_max(const Var<T>& x, scalar_t<T> hi) {
  return clamp(x, -std::numeric_limits<T>::infinity(), hi);
}

#define TAPEGRAD_INSTANTIATE(T)                                   \
  template Var<T> add(const Var<T>&, const Var<T>&);              \
  template Var<T> sub(const Var<T>&, const Var<T>&);              \
  template Var<T> mul(const Var<T>&, const Var<T>&);              \
  template Var<T> div(const Var<T>&, const Var<T>&);              \
  template Var<T> add_scalar(const Var<T>&, scalar_t<T>);         \
  template Var<T> mul_scalar(const Var<T>&, scalar_t<T>);         \
  template Var<T> rsub_scalar(const Var<T>&, scalar_t<T>);        \
  template Var<T> rdiv_scalar(const Var<T>&, scalar_t<T>);        \
  template Var<T> neg(const Var<T>&);                             \
  template Var<T> pow(const Var<T>&, scalar_t<T>);                \
  template Var<T> exp(const Var<T>&);                             \
  template Var<T> log(const Var<T>&);                             \
  template Var<T> sqrt(const Var<T>&);                            \
  template Var<T> abs(const Var<T>&);                             \
  template Var<T> clamp(const Var<T>&, scalar_t<T>, scalar_t<T>); \
  template Var<T> clamp_min(const Var<T>&, scalar_t<T>);          \
  template Var<T> clamp_max(const Var<T>&, scalar_t<T>);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
