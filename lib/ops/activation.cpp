#include "tapegrad/ops/activation.hpp"

#include <cmath>
#include <limits>

#include "fast_math.hpp"
#include "unary_kernel.hpp"

namespace tapegrad {

using detail::unary;
using detail::unary_backward;

namespace {

// What activations keep for backward beyond x and y.
enum class LeakyScalar : std::size_t { slope, count };
enum class EluScalar : std::size_t { alpha, count };
enum class SoftplusScalar : std::size_t { beta, threshold, count };
enum class SoftmaxInt : std::size_t { axis, count };  // softmax and log_softmax

// A tensor seen around `axis` as (outer, n, inner): lane (o, i) is the n elements at
// o*n*inner + i + k*inner, k = 0..n-1. Softmax works on one lane at a time.
struct Lanes {
  std::size_t outer = 1, n = 1, inner = 1;
};

Lanes lanes_of(const Shape& s, std::size_t axis) {
  Lanes l;
  if (s.empty()) return l;  // a 0-d tensor: one lane of one element
  for (std::size_t d = 0; d < axis; ++d) l.outer *= s[d];
  l.n = s[axis];
  for (std::size_t d = axis + 1; d < s.size(); ++d) l.inner *= s[d];
  return l;
}

// Calls f(base) for each lane; the lane's elements are base + k * l.inner.
template <class F>
void for_each_lane(const Lanes& l, F&& f) {
  for (std::size_t o = 0; o < l.outer; ++o) {
    for (std::size_t i = 0; i < l.inner; ++i) f(o * l.n * l.inner + i);
  }
}

// The axis as PyTorch wraps it: a 0-d tensor accepts 0 and -1, as if it had one dim.
std::size_t softmax_axis(const char* op, std::ptrdiff_t axis, const Shape& s) {
  return normalize_axis(op, axis, s.empty() ? 1 : s.size());
}

// Max of a lane (NaN never wins the comparison; it still poisons the sum that follows).
template <class T>
T lane_max(const T* x, std::size_t base, const Lanes& l) {
  T m = -std::numeric_limits<T>::infinity();
  for (std::size_t k = 0; k < l.n; ++k) {
    const T v = x[base + k * l.inner];
    if (v > m) m = v;
  }
  return m;
}

}  // namespace

// relu: y = max(x, 0);  dL/dx = dL/dy * [y > 0]   (0 at x = 0, as PyTorch's threshold_backward)
template <class T>
Var<T> relu(const Var<T>& x) {
  return unary<T>(
      "relu", x, [](T v) { return std::isnan(v) || v > T(0) ? v : T(0); },
      [](BackwardCtx<T>& c) { unary_backward<T>(c, [](T, T y) { return y <= T(0) ? T(0) : T(1); }); });
}

// leaky_relu: y = x if x > 0 else a x;  dL/dx = dL/dy * (x > 0 ? 1 : a)   (a at x = 0)
template <class T>
Var<T> leaky_relu(const Var<T>& x, scalar_t<T> a) {
  return unary<T>(
      "leaky_relu", x, [a](T v) { return v > T(0) ? v : v * a; },
      [](BackwardCtx<T>& c) {
        const T saved_slope = static_cast<T>(c.scalar(LeakyScalar::slope));
        unary_backward<T>(c, [saved_slope](T v, T) { return v > T(0) ? T(1) : saved_slope; });
      },
      [a](Recorder<T>& r) { r.set_scalar(LeakyScalar::slope, a); });
}

// tanh: y = tanh x;  dL/dx = dL/dy * (1 - y²)
// (float: the vectorizable rational tanh of fast_math.hpp, in a kernel compiled for SSE2 and
// AVX2; double: std::tanh)
template <class T>
Var<T> tanh(const Var<T>& x) {
  Tape<T>& t = Tape<T>::of("tanh", {x});
  auto r = t.record("tanh", {x});
  const xt::xarray<T>& xv = t.value(x);
  const T* px = xv.data();
  T* py = r.out(xv.shape()).data();
  detail::parallel_for(xv.size(), detail::kElementwiseBlock, 16,
                       [&](std::size_t b, std::size_t e) { detail::tanh_kernel(px + b, py + b, e - b); });
  return r.finish([](BackwardCtx<T>& c) { unary_backward<T>(c, [](T, T y) { return T(1) - y * y; }); });
}

// sigmoid: y = 1 / (1 + e^-x);  dL/dx = dL/dy * (1 - y) y
// (for x << 0, e^-x overflows to inf and y is exactly 0, as in PyTorch)
template <class T>
Var<T> sigmoid(const Var<T>& x) {
  return unary<T>(
      "sigmoid", x, [](T v) { return T(1) / (T(1) + std::exp(-v)); },
      [](BackwardCtx<T>& c) { unary_backward<T>(c, [](T, T y) { return (T(1) - y) * y; }); });
}

// gelu (erf form): y = x Φ(x), Φ(x) = (1 + erf(x / √2)) / 2;
//   dL/dx = dL/dy * (Φ(x) + x φ(x)),  φ(x) = e^(-x²/2) / √(2π)
// gelu (tanh form): u = √(2/π) (x + κ x³), κ = 0.044715, y = x (1 + tanh u) / 2;
//   dL/dx = dL/dy * ((1 + tanh u) / 2 + x/2 (1 - tanh² u) √(2/π) (1 + 3κ x²))
template <class T>
Var<T> gelu(const Var<T>& x, GeluApprox approximate) {
  constexpr T kSqrt1_2 = T(0.70710678118654752440);      // 1/√2
  constexpr T kInvSqrt2Pi = T(0.39894228040143267794);   // 1/√(2π)
  constexpr T kSqrt2OverPi = T(0.79788456080286535588);  // √(2/π)
  constexpr T kKappa = T(0.044715);
  if (approximate == GeluApprox::Tanh) {
    return unary<T>(
        "gelu_tanh", x,
        [](T v) {
          const T u = kSqrt2OverPi * (v + kKappa * v * v * v);
          return T(0.5) * v * (T(1) + std::tanh(u));
        },
        [](BackwardCtx<T>& c) {
          unary_backward<T>(c, [](T v, T) {
            const T th = std::tanh(kSqrt2OverPi * (v + kKappa * v * v * v));
            const T du = kSqrt2OverPi * (T(1) + T(3) * kKappa * v * v);
            // Where tanh u has saturated the second term is 0; computed, it is
            // 0 * inf = NaN once v² overflows (|v| > 1.8e19 in float).
            const T sech2 = T(1) - th * th;
            return T(0.5) * (T(1) + th) + (sech2 == T(0) ? T(0) : T(0.5) * v * sech2 * du);
          });
        });
  }
  return unary<T>(
      "gelu", x, [](T v) { return v * T(0.5) * (T(1) + std::erf(v * kSqrt1_2)); },
      [](BackwardCtx<T>& c) {
        unary_backward<T>(c, [](T v, T) {
          const T cdf = T(0.5) * (T(1) + std::erf(v * kSqrt1_2));
          const T pdf = std::exp(T(-0.5) * v * v) * kInvSqrt2Pi;
          return cdf + v * pdf;
        });
      });
}

// elu: y = x if x > 0 else α (e^x - 1);  dL/dx = dL/dy * (x > 0 ? 1 : α e^x)   (α at x = 0)
template <class T>
Var<T> elu(const Var<T>& x, scalar_t<T> alpha) {
  return unary<T>(
      "elu", x, [alpha](T v) { return v > T(0) ? v : alpha * std::expm1(v); },
      [](BackwardCtx<T>& c) {
        const T saved_alpha = static_cast<T>(c.scalar(EluScalar::alpha));
        unary_backward<T>(c, [saved_alpha](T v, T) { return v <= T(0) ? saved_alpha * std::exp(v) : T(1); });
      },
      [alpha](Recorder<T>& r) { r.set_scalar(EluScalar::alpha, alpha); });
}

// softplus: y = log(1 + e^(βx)) / β, or y = x where βx > threshold;
//   dL/dx = dL/dy * e^(βx) / (e^(βx) + 1)   (= sigmoid(βx)), or dL/dy where βx > threshold
template <class T>
Var<T> softplus(const Var<T>& x, scalar_t<T> beta, scalar_t<T> threshold) {
  return unary<T>(
      "softplus", x,
      [beta, threshold](T v) { return v * beta > threshold ? v : std::log1p(std::exp(v * beta)) / beta; },
      [](BackwardCtx<T>& c) {
        const T saved_beta = static_cast<T>(c.scalar(SoftplusScalar::beta)),
                saved_threshold = static_cast<T>(c.scalar(SoftplusScalar::threshold));
        unary_backward<T>(c, [saved_beta, saved_threshold](T v, T) {
          const T z = std::exp(v * saved_beta);
          return v * saved_beta > saved_threshold ? T(1) : z / (z + T(1));
        });
      },
      [beta, threshold](Recorder<T>& r) {
        r.set_scalar(SoftplusScalar::beta, beta);
        r.set_scalar(SoftplusScalar::threshold, threshold);
      });
}

// softmax along an axis, lane by lane: m = max x, y = e^(x - m) / Σ e^(x - m)
//   (subtracting m changes nothing mathematically and keeps every e^(.) <= 1);
//   dL/dx = y ⊙ (g - Σ g ⊙ y)   (g = dL/dy, the sum along the lane)
template <class T>
Var<T> softmax(const Var<T>& x, std::ptrdiff_t axis) {
  Tape<T>& t = Tape<T>::of("softmax", {x});
  const Shape& s = t.shape(x);
  const std::size_t ax = softmax_axis("softmax", axis, s);
  auto r = t.record("softmax", {x});
  r.set_int(SoftmaxInt::axis, static_cast<std::ptrdiff_t>(ax));
  const T* px = t.value(x).data();
  T* py = r.out(s).data();
  const Lanes l = lanes_of(s, ax);
  for_each_lane(l, [&](std::size_t b) {
    const T m = lane_max(px, b, l);
    double sum = 0;
    for (std::size_t k = 0; k < l.n; ++k) {
      const T e = std::exp(px[b + k * l.inner] - m);
      py[b + k * l.inner] = e;
      sum += e;
    }
    for (std::size_t k = 0; k < l.n; ++k) py[b + k * l.inner] = static_cast<T>(py[b + k * l.inner] / sum);
  });
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const T* y = c.output().data();
    const T* g = c.grad().data();
    T* gx = c.input_grad(0).data();
    const Lanes lanes = lanes_of(c.output().shape(), static_cast<std::size_t>(c.int_at(SoftmaxInt::axis)));
    for_each_lane(lanes, [&](std::size_t b) {
      double dot = 0;
      for (std::size_t k = 0; k < lanes.n; ++k)
        dot += double(g[b + k * lanes.inner]) * y[b + k * lanes.inner];
      for (std::size_t k = 0; k < lanes.n; ++k) {
        const std::size_t j = b + k * lanes.inner;
        gx[j] += static_cast<T>(y[j] * (g[j] - dot));
      }
    });
  });
}

// log_softmax along an axis: y = (x - m) - log Σ e^(x - m), m = max x (x - m is exact in
//   double, so y is accurate even for logits of magnitude 1e4 in float);
//   dL/dx = g - e^y Σ g   (e^y = softmax(x))
template <class T>
Var<T> log_softmax(const Var<T>& x, std::ptrdiff_t axis) {
  Tape<T>& t = Tape<T>::of("log_softmax", {x});
  const Shape& s = t.shape(x);
  const std::size_t ax = softmax_axis("log_softmax", axis, s);
  auto r = t.record("log_softmax", {x});
  r.set_int(SoftmaxInt::axis, static_cast<std::ptrdiff_t>(ax));
  const T* px = t.value(x).data();
  T* py = r.out(s).data();
  const Lanes l = lanes_of(s, ax);
  for_each_lane(l, [&](std::size_t b) {
    const T m = lane_max(px, b, l);
    double sum = 0;
    for (std::size_t k = 0; k < l.n; ++k) sum += std::exp(px[b + k * l.inner] - m);
    const double log_sum = std::log(sum);
    for (std::size_t k = 0; k < l.n; ++k) {
      const std::size_t j = b + k * l.inner;
      py[j] = static_cast<T>((double(px[j]) - double(m)) - log_sum);
    }
  });
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const T* y = c.output().data();
    const T* g = c.grad().data();
    T* gx = c.input_grad(0).data();
    const Lanes lanes = lanes_of(c.output().shape(), static_cast<std::size_t>(c.int_at(SoftmaxInt::axis)));
    for_each_lane(lanes, [&](std::size_t b) {
      double gsum = 0;
      for (std::size_t k = 0; k < lanes.n; ++k) gsum += g[b + k * lanes.inner];
      for (std::size_t k = 0; k < lanes.n; ++k) {
        const std::size_t j = b + k * lanes.inner;
        gx[j] += static_cast<T>(g[j] - std::exp(y[j]) * gsum);
      }
    });
  });
}

#define TAPEGRAD_INSTANTIATE(T)                                      \
  template Var<T> relu(const Var<T>&);                               \
  template Var<T> leaky_relu(const Var<T>&, scalar_t<T>);            \
  template Var<T> tanh(const Var<T>&);                               \
  template Var<T> sigmoid(const Var<T>&);                            \
  template Var<T> gelu(const Var<T>&, GeluApprox);                   \
  template Var<T> elu(const Var<T>&, scalar_t<T>);                   \
  template Var<T> softplus(const Var<T>&, scalar_t<T>, scalar_t<T>); \
  template Var<T> softmax(const Var<T>&, std::ptrdiff_t);            \
  template Var<T> log_softmax(const Var<T>&, std::ptrdiff_t);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
