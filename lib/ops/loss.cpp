#include "tapegrad/ops/loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "../core/parallel.hpp"
#include "../core/strided.hpp"

namespace tapegrad {

namespace {

// Node scalars shared by the losses: the reduction, the count Mean divides by, and (for
// cross_entropy) the label smoothing ε.
enum class LossScalar : std::size_t { reduction, mean_divisor, smoothing, count };
// cross_entropy keeps the softmax of each row for backward. Every loss's ints are its targets.
enum class CeSaved : std::size_t { probs, count };

// The result's shape: the per-element losses for None, a 0-d scalar otherwise.
Shape reduced_shape(Reduction reduction, const Shape& per_element) {
  return reduction == Reduction::None ? per_element : Shape{};
}

// Writes the reduced loss: out = per-element losses (None), their sum (Sum) or sum / count
// (Mean; NaN for a count of 0, as PyTorch's 0 / 0).
template <class T>
void reduce_into(T* out, Reduction reduction, double sum, double count) {
  if (reduction == Reduction::Sum) out[0] = static_cast<T>(sum);
  if (reduction == Reduction::Mean) {
    out[0] = count > 0 ? static_cast<T>(sum / count) : std::numeric_limits<T>::quiet_NaN();
  }
}

// dL/d(loss_i) for element i of the unreduced loss, from the node's upstream gradient.
template <class T>
double upstream_at(const BackwardCtx<T>& c, std::size_t i) {
  const auto reduction = static_cast<Reduction>(static_cast<int>(c.scalar(LossScalar::reduction)));
  if (reduction == Reduction::None) return c.grad().data()[i];
  if (reduction == Reduction::Sum) return c.grad().data()[0];
  return c.grad().data()[0] / c.scalar(LossScalar::mean_divisor);
}

// The validated layout of a class-index loss over input (N, C, d1, ..., dk) (k >= 0), or (C)
// for one example: `n` examples of `c` classes at `inner` = d1 * ... * dk positions each, so
// `rows` = n * inner targets; class j of row r = (b, s) is at offset (b c + j) inner + s.
struct ClassLayout {
  std::size_t n = 0, c = 0, inner = 1, rows = 0, counted = 0;
  bool batched = true;
  Shape per_element;  // the unreduced loss's shape: (N, d1, ..., dk), () unbatched
  std::size_t offset(std::size_t row) const { return (row / inner) * c * inner + row % inner; }
};

// (n, d1, ..., dk) of row r, for messages about a target of a k >= 1 layout.
std::string position_str(const ClassLayout& l, std::size_t row) {
  Shape pos(l.per_element.size());
  for (std::size_t d = pos.size(); d-- > 0;) {
    pos[d] = row % l.per_element[d];
    row /= l.per_element[d];
  }
  return shape_str(pos);
}

ClassLayout class_layout(const std::string& name, const Shape& s) {
  if (s.empty()) {
    throw ShapeError(name +
                     ": expected input of shape (N, C), (N, C, d1, ...) such as (N, C, T), or (C) for one "
                     "example; got " +
                     shape_str(s) + " (0 dims)");
  }
  ClassLayout l;
  l.batched = s.size() >= 2;
  l.n = l.batched ? s[0] : 1;
  l.c = l.batched ? s[1] : s[0];
  if (l.batched) l.per_element.push_back(l.n);
  for (std::size_t d = 2; d < s.size(); ++d) {
    l.inner *= s[d];
    l.per_element.push_back(s[d]);
  }
  l.rows = l.n * l.inner;
  if (l.rows == 0) {
    throw ValueError(name + ": empty batch: input has shape " + shape_str(s) +
                     "; a loss needs at least one example");
  }
  if (l.c == 0) throw ShapeError(name + ": input of shape " + shape_str(s) + " has no classes");
  return l;
}

ClassLayout check_class_targets(const char* op, const Shape& s, const std::int64_t* targets,
                                std::size_t count, std::int64_t ignore_index) {
  const std::string name(op);
  ClassLayout l = class_layout(name, s);
  if (count != l.rows) {
    throw ShapeError(name + ": got " + std::to_string(count) + " targets for input of shape " + shape_str(s) +
                     "; expected " + std::to_string(l.rows) +
                     (s.size() > 2 ? " (one per position of " + shape_str(l.per_element) + ", row-major)"
                                   : " (one per row)"));
  }
  const auto classes = static_cast<std::int64_t>(l.c);
  for (std::size_t i = 0; i < l.rows; ++i) {
    const std::int64_t t = targets[i];
    if (t == ignore_index) continue;
    if (t < 0 || t >= classes) {
      throw ValueError(name + ": target " + std::to_string(t) + " at index " + std::to_string(i) +
                       (s.size() > 2 ? " (position " + position_str(l, i) + ")" : std::string()) +
                       " is out of range for " + std::to_string(l.c) + " classes (expected 0 <= target < " +
                       std::to_string(l.c) + ", or ignore_index " + std::to_string(ignore_index) + ")");
    }
    ++l.counted;
  }
  return l;
}

// The layout again, in backward, from the input's shape (validated when it was recorded).
ClassLayout recorded_layout(const Shape& s) {
  ClassLayout l;
  l.c = s.size() >= 2 ? s[1] : s[0];
  for (std::size_t d = 2; d < s.size(); ++d) l.inner *= s[d];
  return l;
}

// The targets as the node keeps them: the class index, or -1 for an ignored row.
void store_targets(std::vector<std::ptrdiff_t>& ints, const std::int64_t* targets, std::size_t count,
                   std::int64_t ignore_index) {
  for (std::size_t i = 0; i < count; ++i)
    ints.push_back(targets[i] == ignore_index ? -1 : static_cast<std::ptrdiff_t>(targets[i]));
}

}  // namespace

namespace {

// One row's cross_entropy, its classes at x[0], x[stride], ..., x[(c - 1) stride]: m = max x,
// S = Σ_c e^(x_c - m), log p_c = x_c - m - log S;
//   loss = (1 - ε) (log S - (x_t - m)) + ε / C (C log S - Σ_c (x_c - m))
// With `probs`, also writes p_c to probs[c stride].
template <class T>
double ce_row(const T* x, std::size_t c, std::size_t stride, std::size_t target, double eps, T* probs) {
  // The row's e^(x - m), computed once for the sum and the probs (a per-thread buffer: a
  // training step allocates nothing).
  thread_local std::vector<double> e;
  e.resize(c);
  double m = -std::numeric_limits<double>::infinity();
  for (std::size_t j = 0; j < c; ++j) m = x[j * stride] > m ? double(x[j * stride]) : m;
  double sum = 0, shifted = 0;  // Σ e^(x - m), Σ (x - m)
  for (std::size_t j = 0; j < c; ++j) {
    e[j] = std::exp(x[j * stride] - m);
    sum += e[j];
    shifted += x[j * stride] - m;
  }
  const double log_sum = std::log(sum), classes = static_cast<double>(c);
  const double nll = log_sum - (x[target * stride] - m);
  if (probs) {
    for (std::size_t j = 0; j < c; ++j) probs[j * stride] = static_cast<T>(e[j] / sum);
  }
  return (1.0 - eps) * nll + (eps > 0 ? eps / classes * (classes * log_sum - shifted) : 0.0);
}

// Rows of cross_entropy per block when they are split over threads: 1024 logits or more (a few
// microseconds of exps, against well under one for handing a block to a spinning pool thread).
std::size_t ce_min_rows(std::size_t classes) {
  return std::max<std::size_t>(1, 1024 / std::max<std::size_t>(1, classes));
}

// cross_entropy over `count` flat targets (row-major over the per-element shape).
//   dloss/dx_c = p_c - q_c,  q = (1 - ε) onehot(t) + ε / C   (the smoothed target distribution)
// times the upstream gradient of that row (divided by the non-ignored count for Mean).
template <class T>
Var<T> cross_entropy_flat(const Var<T>& logits, const std::int64_t* targets, std::size_t count,
                          const CrossEntropyOptions& o) {
  Tape<T>& t = Tape<T>::of("cross_entropy", {logits});
  const Shape& s = t.shape(logits);
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0)) {
    throw ValueError("cross_entropy: label_smoothing must be in [0, 1]; got " +
                     std::to_string(o.label_smoothing));
  }
  const ClassLayout l = check_class_targets("cross_entropy", s, targets, count, o.ignore_index);
  auto r = t.record("cross_entropy", {logits});
  r.set_scalar(LossScalar::reduction, static_cast<double>(o.reduction));
  r.set_scalar(LossScalar::mean_divisor, static_cast<double>(l.counted));
  r.set_scalar(LossScalar::smoothing, o.label_smoothing);
  store_targets(r.ints(), targets, count, o.ignore_index);
  T* probs = nullptr;
  if (r.requires_grad()) {
    xt::xarray<T>& p = r.save(CeSaved::probs);
    if (p.shape() != s) p.resize(s);
    probs = p.data();
  }
  T* out = r.out(reduced_shape(o.reduction, l.per_element)).data();
  const T* x = t.value(logits).data();
  // The rows' losses, in blocks of rows on the pool with set_num_threads(n > 1) (the exps are
  // most of a small model's loss), then summed in row order: the same bits for any thread count
  // (thread_local, reused: a training step allocates nothing. The blocks write through a
  // pointer: the name would mean each pool thread's own vector.)
  thread_local std::vector<double> row_loss_buffer;
  row_loss_buffer.resize(l.rows);
  double* row_loss = row_loss_buffer.data();
  detail::parallel_for(l.rows, ce_min_rows(l.c), 1, [&](std::size_t begin, std::size_t end) {
    for (std::size_t row = begin; row < end; ++row) {
      const std::size_t at = l.offset(row);
      row_loss[row] = targets[row] == o.ignore_index
                          ? 0.0
                          : ce_row(x + at, l.c, l.inner, static_cast<std::size_t>(targets[row]),
                                   o.label_smoothing, probs ? probs + at : nullptr);
    }
  });
  double total = 0;
  for (std::size_t row = 0; row < l.rows; ++row) {
    total += row_loss[row];
    if (o.reduction == Reduction::None) out[row] = static_cast<T>(row_loss[row]);
  }
  reduce_into(out, o.reduction, total, static_cast<double>(l.counted));
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const ClassLayout lay = recorded_layout(c.input(0).shape());
    const std::vector<std::ptrdiff_t>& tgt = c.ints();
    const double smoothing = c.scalar(LossScalar::smoothing), off = smoothing / static_cast<double>(lay.c);
    const T* p = c.saved(CeSaved::probs).data();
    T* gx = c.input_grad(0).data();
    // Rows write apart (a row's classes are its own elements): blocks of rows on the pool.
    detail::parallel_for(tgt.size(), ce_min_rows(lay.c), 1, [&](std::size_t begin, std::size_t end) {
      for (std::size_t row = begin; row < end; ++row) {
        if (tgt[row] < 0) continue;
        const double g = upstream_at(c, row);
        const std::size_t at = lay.offset(row);
        for (std::size_t j = 0; j < lay.c; ++j) {
          const double q = (static_cast<std::ptrdiff_t>(j) == tgt[row] ? 1.0 - smoothing : 0.0) + off;
          gx[at + j * lay.inner] += static_cast<T>(g * (p[at + j * lay.inner] - q));
        }
      }
    });
  });
}

// The shape targets must have for logits of shape s: s without dim 1 ((N) for (N, C), () for (C)).
Shape target_shape_for(const Shape& s) {
  Shape out;
  for (std::size_t d = 0; d < s.size(); ++d)
    if (d != 1 && !(s.size() == 1 && d == 0)) out.push_back(s[d]);
  return out;
}

}  // namespace

template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<std::int64_t>& targets,
                     const CrossEntropyOptions& options) {
  return cross_entropy_flat(logits, targets.data(), targets.size(), options);
}

template <class T, class I, class>
Var<T> cross_entropy(const Var<T>& logits, const xt::xarray<I>& targets, const CrossEntropyOptions& options) {
  const Shape& s = Tape<T>::of("cross_entropy", {logits}).shape(logits);
  const Shape want = target_shape_for(s);
  // Also (documented): any targets of N elements with logits (N, C), read row-major (PyTorch
  // needs target.reshape(-1) there).
  const bool flat_ok = s.size() == 2 && !targets.shape().empty() && targets.size() == s[0];
  if (!s.empty() && targets.shape() != want && !flat_ok) {
    throw ShapeError("cross_entropy: targets of shape " + shape_str(targets.shape()) +
                     " for input of shape " + shape_str(s) + "; expected " + shape_str(want) +
                     " (the input's shape without the class dim 1)");
  }
  return cross_entropy_flat(logits, targets.data(), targets.size(), options);
}

// nll_loss: loss_n = -lp[n, t_n];  dloss_n/dlp[n, t_n] = -1 (0 for ignored rows and elsewhere)
template <class T>
Var<T> nll_loss(const Var<T>& log_probs, const std::vector<std::int64_t>& targets, Reduction reduction,
                std::int64_t ignore_index) {
  Tape<T>& t = Tape<T>::of("nll_loss", {log_probs});
  const Shape& s = t.shape(log_probs);
  const ClassLayout l = check_class_targets("nll_loss", s, targets.data(), targets.size(), ignore_index);
  auto r = t.record("nll_loss", {log_probs});
  r.set_scalar(LossScalar::reduction, static_cast<double>(reduction));
  r.set_scalar(LossScalar::mean_divisor, static_cast<double>(l.counted));
  store_targets(r.ints(), targets.data(), targets.size(), ignore_index);
  T* out = r.out(reduced_shape(reduction, l.per_element)).data();
  const T* lp = t.value(log_probs).data();
  double total = 0;
  for (std::size_t row = 0; row < l.rows; ++row) {
    const double loss = targets[row] == ignore_index
                            ? 0.0
                            : -double(lp[l.offset(row) + static_cast<std::size_t>(targets[row]) * l.inner]);
    total += loss;
    if (reduction == Reduction::None) out[row] = static_cast<T>(loss);
  }
  reduce_into(out, reduction, total, static_cast<double>(l.counted));
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const ClassLayout lay = recorded_layout(c.input(0).shape());
    const std::vector<std::ptrdiff_t>& tgt = c.ints();
    T* gx = c.input_grad(0).data();
    for (std::size_t row = 0; row < tgt.size(); ++row) {
      if (tgt[row] >= 0)
        gx[lay.offset(row) + static_cast<std::size_t>(tgt[row]) * lay.inner] -=
            static_cast<T>(upstream_at(c, row));
    }
  });
}

// mse_loss: loss_i = (x_i - y_i)²;  dloss_i/dx_i = 2 (x_i - y_i),  dloss_i/dy_i = -2 (x_i - y_i)
// Mean divides by the number of elements.
template <class T>
Var<T> mse_loss(const Var<T>& input, const Var<T>& target, Reduction reduction) {
  Tape<T>& t = Tape<T>::of("mse_loss", {input, target});
  const Shape& s = t.shape(input);
  if (t.shape(target) != s) {
    throw ShapeError("mse_loss: input has shape " + shape_str(s) + " but target has shape " +
                     shape_str(t.shape(target)) +
                     "; they must be equal (tapegrad does not broadcast "
                     "a loss's target, PyTorch only warns)");
  }
  auto r = t.record("mse_loss", {input, target});
  r.set_scalar(LossScalar::reduction, static_cast<double>(reduction));
  r.set_scalar(LossScalar::mean_divisor, static_cast<double>(numel(s)));
  T* out = r.out(reduced_shape(reduction, s)).data();
  const T* x = t.value(input).data();
  const T* y = t.value(target).data();
  double total = 0;
  for (std::size_t i = 0, n = numel(s); i < n; ++i) {
    const double d = double(x[i]) - double(y[i]);
    total += d * d;
    if (reduction == Reduction::None) out[i] = static_cast<T>(d * d);
  }
  reduce_into(out, reduction, total, static_cast<double>(numel(s)));
  return r.finish([](BackwardCtx<T>& c) {
    const T* xv = c.input(0).data();
    const T* yv = c.input(1).data();
    T* gx = c.needs_grad(0) ? c.input_grad(0).data() : nullptr;
    T* gy = c.needs_grad(1) ? c.input_grad(1).data() : nullptr;
    for (std::size_t i = 0, n = c.input(0).size(); i < n; ++i) {
      const double g = 2.0 * upstream_at(c, i) * (double(xv[i]) - double(yv[i]));
      if (gx) gx[i] += static_cast<T>(g);
      if (gy) gy[i] -= static_cast<T>(g);
    }
  });
}

namespace {

// softplus(-x) = log(1 + e^-x) = max(-x, 0) + log1p(e^-|x|), finite for any x.
inline double softplus_neg(double x) { return std::max(-x, 0.0) + std::log1p(std::exp(-std::abs(x))); }

// Calls f(i, iw) for each element i of x with iw the offset of the pos_weight element
// broadcast onto it (always 0 when there is no pos_weight).
template <class F>
void for_each_weighted(const Shape& x, const Shape* w, F&& f) {
  if (!w) {
    for (std::size_t i = 0, n = numel(x); i < n; ++i) f(i, std::ptrdiff_t(0));
    return;
  }
  const auto sw = detail::broadcast_strides(*w, x.size());
  detail::for_each_broadcast2(x, sw, sw, [&](std::size_t i, std::ptrdiff_t iw, std::ptrdiff_t) { f(i, iw); });
}

// binary_cross_entropy_with_logits with w = pos_weight (1 when absent), l_w = 1 + (w - 1) y:
//   loss = (1 - y) x + l_w softplus(-x)
//   dloss/dx = (w y + 1 - y) σ(x) - w y     dloss/dy = -x + (w - 1) softplus(-x)
//   dloss/dw = y softplus(-x)   (summed over the dims w is broadcast along)
template <class T>
Var<T> bce_with_logits(const Var<T>& logits, const Var<T>& targets, Reduction reduction,
                       const Var<T>* pos_weight) {
  const char* op = "binary_cross_entropy_with_logits";
  Tape<T>& t = Tape<T>::of(op, {logits, targets});
  if (pos_weight) t.check_input(op, 2, *pos_weight);
  const Shape& s = t.shape(logits);
  if (t.shape(targets) != s) {
    throw ShapeError(std::string(op) + ": target shape " + shape_str(t.shape(targets)) +
                     " must be the same as input shape " + shape_str(s));
  }
  if (pos_weight) {
    const Shape& ws = t.shape(*pos_weight);
    if (s.size() > detail::kMaxDims) {
      throw ShapeError(std::string(op) + ": with pos_weight, at most " + std::to_string(detail::kMaxDims) +
                       " dims are supported; got input of shape " + shape_str(s));
    }
    bool fits = ws.size() <= s.size();  // each of w's dims, right-aligned, is 1 or x's
    for (std::size_t d = 0; fits && d < ws.size(); ++d) {
      const std::size_t xd = s[s.size() - ws.size() + d];
      fits = ws[d] == 1 || ws[d] == xd;
    }
    if (!fits) {
      throw ShapeError(std::string(op) + ": pos_weight of shape " + shape_str(ws) +
                       " does not broadcast to the input shape " + shape_str(s) +
                       " (use shape (C) for the last dim, C = " + std::to_string(s.empty() ? 1 : s.back()) +
                       ")");
    }
  }
  auto r = pos_weight ? t.record(op, {logits, targets, *pos_weight}) : t.record(op, {logits, targets});
  r.set_scalar(LossScalar::reduction, static_cast<double>(reduction));
  r.set_scalar(LossScalar::mean_divisor, static_cast<double>(numel(s)));
  T* out = r.out(reduced_shape(reduction, s)).data();
  const T* x = t.value(logits).data();
  const T* y = t.value(targets).data();
  const T* w = pos_weight ? t.value(*pos_weight).data() : nullptr;
  double total = 0;
  for_each_weighted(s, pos_weight ? &t.shape(*pos_weight) : nullptr, [&](std::size_t i, std::ptrdiff_t iw) {
    const double wi = w ? double(w[iw]) : 1.0, yi = y[i];
    const double loss = (1.0 - yi) * x[i] + (1.0 + (wi - 1.0) * yi) * softplus_neg(x[i]);
    total += loss;
    if (reduction == Reduction::None) out[i] = static_cast<T>(loss);
  });
  reduce_into(out, reduction, total, static_cast<double>(numel(s)));
  return r.finish([](BackwardCtx<T>& c) {
    const bool has_w = c.num_inputs() == 3;
    const T* xv = c.input(0).data();
    const T* yv = c.input(1).data();
    const T* wv = has_w ? c.input(2).data() : nullptr;
    T* gx = c.needs_grad(0) ? c.input_grad(0).data() : nullptr;
    T* gy = c.needs_grad(1) ? c.input_grad(1).data() : nullptr;
    T* gw = has_w && c.needs_grad(2) ? c.input_grad(2).data() : nullptr;
    const Shape* ws = has_w ? &c.input(2).shape() : nullptr;
    for_each_weighted(c.input(0).shape(), ws, [&](std::size_t i, std::ptrdiff_t iw) {
      const double g = upstream_at(c, i), wi = wv ? double(wv[iw]) : 1.0, xi = xv[i], yi = yv[i];
      if (gx) gx[i] += static_cast<T>(g * ((wi * yi + 1.0 - yi) / (1.0 + std::exp(-xi)) - wi * yi));
      if (gy) gy[i] += static_cast<T>(g * (-xi + (wi - 1.0) * softplus_neg(xi)));
      if (gw) gw[iw] += static_cast<T>(g * yi * softplus_neg(xi));
    });
  });
}

}  // namespace

template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets, Reduction reduction) {
  return bce_with_logits(logits, targets, reduction, static_cast<const Var<T>*>(nullptr));
}

template <class T>
Var<T> binary_cross_entropy_with_logits(const Var<T>& logits, const Var<T>& targets, Reduction reduction,
                                        const Var<T>& pos_weight) {
  return bce_with_logits(logits, targets, reduction, &pos_weight);
}

namespace {

// masked_mean keeps, per element, mask / (its group's count) (0 where masked out or the group
// is empty): the gradient's weights. Its ints are the layout (outer, len, inner) of the groups.
enum class MaskedSaved : std::size_t { weights, count };
enum class MaskedInt : std::size_t { outer, len, inner, count };

// out[o, i] = Σ_k mask x[o, k, i] / Σ_k mask  (NaN when Σ_k mask = 0)
// d out[o, i] / d x[o, k, i] = mask[o, k, i] / Σ_k mask
// with x viewed as (outer, len, inner): len the reduced axis (all of x when `all`).
template <class T>
Var<T> masked_mean_impl(const Var<T>& x, const xt::xarray<bool>& mask, bool all, std::ptrdiff_t axis) {
  Tape<T>& t = Tape<T>::of("masked_mean", {x});
  const Shape& s = t.shape(x);
  if (mask.shape() != s) {
    throw ShapeError("masked_mean: mask of shape " + shape_str(mask.shape()) + " for input of shape " +
                     shape_str(s) + "; they must be equal");
  }
  std::size_t outer = 1, len = numel(s), inner = 1;
  Shape out_shape;
  if (!all) {
    const std::size_t a = normalize_axis("masked_mean", axis, s.size());
    outer = checked_numel("masked_mean", s, 0, a);
    len = s[a];
    inner = checked_numel("masked_mean", s, a + 1, s.size());
    out_shape = s;
    out_shape.erase(out_shape.begin() + static_cast<std::ptrdiff_t>(a));
  }
  auto r = t.record("masked_mean", {x});
  r.set_int(MaskedInt::outer, static_cast<std::ptrdiff_t>(outer));
  r.set_int(MaskedInt::len, static_cast<std::ptrdiff_t>(len));
  r.set_int(MaskedInt::inner, static_cast<std::ptrdiff_t>(inner));
  T* w = nullptr;
  if (r.requires_grad()) {
    xt::xarray<T>& saved = r.save(MaskedSaved::weights);
    if (saved.shape() != s) saved.resize(s);
    w = saved.data();
  }
  T* out = r.out(out_shape).data();
  const T* v = t.value(x).data();
  const bool* m = mask.data();
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t i = 0; i < inner; ++i) {
      const std::size_t base = o * len * inner + i;
      double sum = 0, count = 0;
      for (std::size_t k = 0; k < len; ++k) {
        if (!m[base + k * inner]) continue;
        sum += v[base + k * inner];
        count += 1;
      }
      out[o * inner + i] = count > 0 ? static_cast<T>(sum / count) : std::numeric_limits<T>::quiet_NaN();
      if (!w) continue;
      for (std::size_t k = 0; k < len; ++k)
        w[base + k * inner] = m[base + k * inner] ? static_cast<T>(1.0 / count) : T(0);
    }
  }
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const auto n_outer = static_cast<std::size_t>(c.int_at(MaskedInt::outer));
    const auto n_len = static_cast<std::size_t>(c.int_at(MaskedInt::len));
    const auto n_inner = static_cast<std::size_t>(c.int_at(MaskedInt::inner));
    const T* weight = c.saved(MaskedSaved::weights).data();
    const T* g = c.grad().data();
    T* gx = c.input_grad(0).data();
    for (std::size_t o = 0; o < n_outer; ++o) {
      for (std::size_t k = 0; k < n_len; ++k) {
        const std::size_t at = (o * n_len + k) * n_inner;
        // Skipping the masked-out elements (not adding 0 * g) keeps them 0 also under an
        // infinite upstream, as PyTorch's x[mask] scatters into the kept elements only.
        for (std::size_t i = 0; i < n_inner; ++i)
          if (weight[at + i] != T(0)) gx[at + i] += g[o * n_inner + i] * weight[at + i];
      }
    }
  });
}

}  // namespace

template <class T>
Var<T> masked_mean(const Var<T>& x, const xt::xarray<bool>& mask) {
  return masked_mean_impl(x, mask, true, 0);
}

template <class T>
Var<T> masked_mean(const Var<T>& x, const xt::xarray<bool>& mask, std::ptrdiff_t axis) {
  return masked_mean_impl(x, mask, false, axis);
}

xt::xarray<bool> length_mask(const std::vector<std::size_t>& lengths, std::size_t max_len) {
  checked_size("length_mask: max_len", max_len);
  checked_mul("length_mask: lengths.size() * max_len (the mask's number of elements)", lengths.size(),
              max_len);
  for (std::size_t n = 0; n < lengths.size(); ++n) {
    if (lengths[n] > max_len) {
      throw ValueError("length_mask: lengths[" + std::to_string(n) + "] = " + std::to_string(lengths[n]) +
                       " is longer than max_len " + std::to_string(max_len));
    }
  }
  xt::xarray<bool> mask = xt::xarray<bool>::from_shape({lengths.size(), max_len});
  for (std::size_t n = 0; n < lengths.size(); ++n) {
    for (std::size_t k = 0; k < max_len; ++k) mask(n, k) = k < lengths[n];
  }
  return mask;
}

#define TAPEGRAD_INSTANTIATE(T)                                                                        \
  template Var<T> cross_entropy(const Var<T>&, const std::vector<std::int64_t>&,                       \
                                const CrossEntropyOptions&);                                           \
  template Var<T> cross_entropy<T, std::int64_t, void>(const Var<T>&, const xt::xarray<std::int64_t>&, \
                                                       const CrossEntropyOptions&);                    \
  template Var<T> nll_loss(const Var<T>&, const std::vector<std::int64_t>&, Reduction, std::int64_t);  \
  template Var<T> mse_loss(const Var<T>&, const Var<T>&, Reduction);                                   \
  template Var<T> masked_mean(const Var<T>&, const xt::xarray<bool>&);                                 \
  template Var<T> masked_mean(const Var<T>&, const xt::xarray<bool>&, std::ptrdiff_t);                 \
  template Var<T> binary_cross_entropy_with_logits(const Var<T>&, const Var<T>&, Reduction);           \
  template Var<T> binary_cross_entropy_with_logits(const Var<T>&, const Var<T>&, Reduction, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
