#include "tapegrad/ops/reduce.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "../core/strided.hpp"

namespace tapegrad {

namespace {

// var keeps its correction (1 unbiased, 0 biased); every reduction's ints are its axes.
enum class VarScalar : std::size_t { correction, count };

// A reduction of an input of shape `in` over `axes`. `kept` is `in` with the reduced axes set
// to 1: its row-major layout is also the output's (dropping size-1 dims does not move any
// element), so one flat index addresses an output element with or without keepdims.
struct Plan {
  std::vector<std::size_t> axes;  // normalized, sorted
  Shape kept;
  Shape out;
  std::size_t n = 1;  // elements per group (reduced into one output element)
};

Plan make_plan(const char* op, const Shape& in, const Axes& axes, bool keepdims) {
  if (in.size() > detail::kMaxDims) {
    throw ShapeError(std::string(op) + ": at most " + std::to_string(detail::kMaxDims) +
                     " dims are supported; got shape " + shape_str(in));
  }
  Plan p;
  if (in.empty()) {  // PyTorch lets a 0-d tensor be reduced over axis 0 / -1: a no-op
    normalize_axes(op, axes, 1);
    return p;
  }
  p.axes = normalize_axes(op, axes, in.size());
  p.kept = in;
  for (auto a : p.axes) {
    p.n *= in[a];
    p.kept[a] = 1;
  }
  for (std::size_t d = 0; d < in.size(); ++d) {
    if (!std::binary_search(p.axes.begin(), p.axes.end(), d))
      p.out.push_back(in[d]);
    else if (keepdims)
      p.out.push_back(1);
  }
  return p;
}

// The backward's view of a plan: the input's shape and the axes the op stored in ints().
Shape kept_shape(const Shape& in, const std::vector<std::ptrdiff_t>& axes) {
  Shape k = in;
  for (auto a : axes) k[static_cast<std::size_t>(a)] = 1;
  return k;
}

std::size_t group_size(const Shape& in, const std::vector<std::ptrdiff_t>& axes) {
  std::size_t n = 1;
  for (auto a : axes) n *= in[static_cast<std::size_t>(a)];
  return n;
}

template <class T>
void store_axes(Recorder<T>& r, const Plan& p) {
  for (auto a : p.axes) r.ints().push_back(static_cast<std::ptrdiff_t>(a));
}

// Calls f(i, k) for every element i of an array of shape `in`, in row-major order, with k the
// flat index of the group it belongs to (its position in `kept`). Reducing and broadcasting
// back are the same walk: out[k] op= x[i] forward, gx[i] += g[k] * ... backward. The
// innermost dim is a plain loop, so reducing the last or the first axis runs at memory speed.
template <class F>
void for_each_in_group(const Shape& in, const Shape& kept, F&& f) {
  const auto sk = detail::broadcast_strides(kept, in.size());
  detail::for_each_broadcast2(in, sk, sk, [&](std::size_t i, std::ptrdiff_t k, std::ptrdiff_t) {
    f(i, static_cast<std::size_t>(k));
  });
}

// Per-group sums of x, accumulated in double.
template <class T>
std::vector<double> group_sums(const xt::xarray<T>& x, const Shape& kept) {
  std::vector<double> acc(numel(kept), 0.0);
  const T* px = x.data();
  for_each_in_group(x.shape(), kept, [&](std::size_t i, std::size_t k) { acc[k] += px[i]; });
  return acc;
}

// gx[i] += g[k] * scale: the gradient of a (scaled) sum, broadcast back over the group.
template <class T>
void broadcast_back(BackwardCtx<T>& c, double scale) {
  if (!c.needs_grad(0)) return;
  const Shape& in = c.input(0).shape();
  const T* g = c.grad().data();
  T* gx = c.input_grad(0).data();
  const T s = static_cast<T>(scale);
  for_each_in_group(in, kept_shape(in, c.ints()), [&](std::size_t i, std::size_t k) { gx[i] += g[k] * s; });
}

// Does x equal the reduced extreme y? NaN matches NaN: a NaN maximum gets the gradient.
template <class T>
bool is_extreme(T x, T y) {
  return x == y || (std::isnan(x) && std::isnan(y));
}

// amax / amin forward (kMax selects which); NaN propagates as in torch.amax.
template <class T, bool kMax>
Var<T> extreme(const char* op, const Var<T>& x, const Axes& axes, bool keepdims,
               typename Node<T>::BackwardFn backward) {
  Tape<T>& t = Tape<T>::of(op, {x});
  const xt::xarray<T>& xv = t.value(x);
  const Plan p = make_plan(op, xv.shape(), axes, keepdims);
  if (p.n == 0) {
    std::size_t empty_axis = 0;
    for (auto a : p.axes) {
      if (xv.shape()[a] == 0) {
        empty_axis = a;
        break;
      }
    }
    throw ValueError(std::string(op) + ": cannot reduce over axis " + std::to_string(empty_axis) +
                     " of size 0 (input shape " + shape_str(xv.shape()) +
                     "); the maximum or minimum of no elements is undefined");
  }
  auto r = t.record(op, {x});
  xt::xarray<T>& out = r.out(p.out);
  T* po = out.data();
  std::fill(po, po + out.size(),
            kMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity());
  const T* px = xv.data();
  for_each_in_group(xv.shape(), p.kept, [&](std::size_t i, std::size_t k) {
    const T v = px[i];
    if ((kMax ? v > po[k] : v < po[k]) || std::isnan(v)) po[k] = v;
  });
  store_axes(r, p);
  return r.finish(backward);
}

// Backward of amax / amin: each of the k_j elements of group j equal to its extreme y_j gets
// dL/dy_j / k_j; the others get nothing.
template <class T>
void extreme_backward(BackwardCtx<T>& c) {
  if (!c.needs_grad(0)) return;
  const Shape& in = c.input(0).shape();
  const Shape kept = kept_shape(in, c.ints());
  const T* px = c.input(0).data();
  const T* py = c.output().data();
  const T* g = c.grad().data();
  std::vector<std::size_t> ties(c.output().size(), 0);
  for_each_in_group(in, kept, [&](std::size_t i, std::size_t k) { ties[k] += is_extreme(px[i], py[k]); });
  T* gx = c.input_grad(0).data();
  for_each_in_group(in, kept, [&](std::size_t i, std::size_t k) {
    if (is_extreme(px[i], py[k])) gx[i] += g[k] / static_cast<T>(ties[k]);
  });
}

}  // namespace

// sum: y_k = sum_{i in group k} x_i;  dL/dx_i = dL/dy_k
template <class T>
Var<T> sum(const Var<T>& x, const Axes& axes, bool keepdims) {
  Tape<T>& t = Tape<T>::of("sum", {x});
  const xt::xarray<T>& xv = t.value(x);
  const Plan p = make_plan("sum", xv.shape(), axes, keepdims);
  auto r = t.record("sum", {x});
  const std::vector<double> acc = group_sums(xv, p.kept);
  T* po = r.out(p.out).data();
  for (std::size_t k = 0; k < acc.size(); ++k) po[k] = static_cast<T>(acc[k]);
  store_axes(r, p);
  return r.finish([](BackwardCtx<T>& c) { broadcast_back(c, 1.0); });
}

template <class T>
Var<T> sum(const Var<T>& x) {
  return sum(x, Axes{}, false);
}

// mean: y_k = (1/n) sum_{i in group k} x_i;  dL/dx_i = dL/dy_k / n
template <class T>
Var<T> mean(const Var<T>& x, const Axes& axes, bool keepdims) {
  Tape<T>& t = Tape<T>::of("mean", {x});
  const xt::xarray<T>& xv = t.value(x);
  const Plan p = make_plan("mean", xv.shape(), axes, keepdims);
  auto r = t.record("mean", {x});
  const std::vector<double> acc = group_sums(xv, p.kept);
  T* po = r.out(p.out).data();
  const double n = static_cast<double>(p.n);
  for (std::size_t k = 0; k < acc.size(); ++k) {
    po[k] = p.n == 0 ? std::numeric_limits<T>::quiet_NaN() : static_cast<T>(acc[k] / n);
  }
  store_axes(r, p);
  return r.finish([](BackwardCtx<T>& c) {
    const std::size_t count = group_size(c.input(0).shape(), c.ints());
    if (count > 0) broadcast_back(c, 1.0 / static_cast<double>(count));
  });
}

template <class T>
Var<T> mean(const Var<T>& x) {
  return mean(x, Axes{}, false);
}

// max: y_k = max_{i in group k} x_i;  dL/dx_i = dL/dy_k / (number of ties) where x_i = y_k
template <class T>
Var<T> max(const Var<T>& x, const Axes& axes, bool keepdims) {
  return extreme<T, true>("max", x, axes, keepdims, [](BackwardCtx<T>& c) { extreme_backward(c); });
}

template <class T>
Var<T> max(const Var<T>& x) {
  return max(x, Axes{}, false);
}

// min: y_k = min_{i in group k} x_i;  dL/dx_i = dL/dy_k / (number of ties) where x_i = y_k
template <class T>
Var<T> min(const Var<T>& x, const Axes& axes, bool keepdims) {
  return extreme<T, false>("min", x, axes, keepdims, [](BackwardCtx<T>& c) { extreme_backward(c); });
}

template <class T>
Var<T> min(const Var<T>& x) {
  return min(x, Axes{}, false);
}

// var: m_k = (1/n) sum_{i in k} x_i,  y_k = sum_{i in k} (x_i - m_k)^2 / (n - d),  d = 1 if
// unbiased else 0.
// dL/dx_i = dL/dy_k * 2 (x_i - m_k) / (n - d)   (the path through m_k vanishes:
// sum_i (x_i - m_k) = 0).
// Two passes per group, in double: the mean, then the squared deviations from it. The
// backward recomputes the mean in double rather than saving it as T: a float mean of data
// near 1e4 is off by ~1e-3, as large as the deviations of data with a std of 1e-2.
template <class T>
Var<T> var(const Var<T>& x, const Axes& axes, bool unbiased, bool keepdims) {
  Tape<T>& t = Tape<T>::of("var", {x});
  const xt::xarray<T>& xv = t.value(x);
  const Plan p = make_plan("var", xv.shape(), axes, keepdims);
  auto r = t.record("var", {x});
  std::vector<double> m = group_sums(xv, p.kept);
  if (p.n > 0) {
    for (auto& v : m) v /= static_cast<double>(p.n);
  }
  std::vector<double> ss(m.size(), 0.0);
  const T* px = xv.data();
  for_each_in_group(xv.shape(), p.kept, [&](std::size_t i, std::size_t k) {
    const double d = static_cast<double>(px[i]) - m[k];
    ss[k] += d * d;
  });
  const double dof = static_cast<double>(p.n) - (unbiased ? 1.0 : 0.0);
  T* po = r.out(p.out).data();
  for (std::size_t k = 0; k < ss.size(); ++k) {
    // dof <= 0 only for n = 0, or n = 1 unbiased (then ss = 0): 0/0, NaN as in PyTorch.
    po[k] = dof > 0 ? static_cast<T>(ss[k] / dof) : std::numeric_limits<T>::quiet_NaN();
  }
  store_axes(r, p);
  r.set_scalar(VarScalar::correction, unbiased ? 1.0 : 0.0);
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const xt::xarray<T>& xval = c.input(0);
    const Shape kept = kept_shape(xval.shape(), c.ints());
    const std::size_t n = group_size(xval.shape(), c.ints());
    if (n == 0) return;
    std::vector<double> means = group_sums(xval, kept);
    for (auto& v : means) v /= static_cast<double>(n);
    const double denom = static_cast<double>(n) - c.scalar(VarScalar::correction);
    // PyTorch: 2 / (n - d) = inf for n = 1 unbiased, times x - m = 0: NaN.
    const double f = denom > 0 ? 2.0 / denom : std::numeric_limits<double>::quiet_NaN();
    const T* xp = xval.data();
    const T* g = c.grad().data();
    T* gx = c.input_grad(0).data();
    for_each_in_group(xval.shape(), kept, [&](std::size_t i, std::size_t k) {
      gx[i] += static_cast<T>(static_cast<double>(g[k]) * f * (static_cast<double>(xp[i]) - means[k]));
    });
  });
}

template <class T>
Var<T> var(const Var<T>& x) {
  return var(x, Axes{}, true, false);
}

#define TAPEGRAD_INSTANTIATE(T)                           \
  template Var<T> sum(const Var<T>&);                     \
  template Var<T> sum(const Var<T>&, const Axes&, bool);  \
  template Var<T> mean(const Var<T>&);                    \
  template Var<T> mean(const Var<T>&, const Axes&, bool); \
  template Var<T> max(const Var<T>&);                     \
  template Var<T> max(const Var<T>&, const Axes&, bool);  \
  template Var<T> min(const Var<T>&);                     \
  template Var<T> min(const Var<T>&, const Axes&, bool);  \
  template Var<T> var(const Var<T>&);                     \
  template Var<T> var(const Var<T>&, const Axes&, bool, bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
