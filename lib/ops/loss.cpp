#include "tapegrad/ops/loss.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

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

// The validated layout of a class-index loss: `n` rows of `c` classes (an unbatched (C) input
// is one row), and how many targets are not ignored.
struct ClassLayout {
  std::size_t n = 0, c = 0, counted = 0;
  bool batched = true;
};

ClassLayout check_class_targets(const char* op, const Shape& s, const std::vector<std::int64_t>& targets,
                                std::int64_t ignore_index) {
  const std::string name(op);
  if (s.size() != 1 && s.size() != 2) {
    throw ShapeError(name + ": expected input of shape (N, C), or (C) for one example; got " + shape_str(s) +
                     " (" + std::to_string(s.size()) + " dims)");
  }
  ClassLayout l;
  l.batched = s.size() == 2;
  l.n = l.batched ? s[0] : 1;
  l.c = s.back();
  if (l.n == 0) {
    throw ValueError(name + ": empty batch: input has shape " + shape_str(s) +
                     "; a loss needs at least one example");
  }
  if (l.c == 0) throw ShapeError(name + ": input of shape " + shape_str(s) + " has no classes");
  if (targets.size() != l.n) {
    throw ShapeError(name + ": got " + std::to_string(targets.size()) + " targets for input of shape " +
                     shape_str(s) + "; expected " + std::to_string(l.n) + " (one per row)");
  }
  const auto classes = static_cast<std::int64_t>(l.c);
  for (std::size_t i = 0; i < l.n; ++i) {
    const std::int64_t t = targets[i];
    if (t == ignore_index) continue;
    if (t < 0 || t >= classes) {
      throw ValueError(name + ": target " + std::to_string(t) + " at index " + std::to_string(i) +
                       " is out of range for " + std::to_string(l.c) + " classes (expected 0 <= target < " +
                       std::to_string(l.c) + ", or ignore_index " + std::to_string(ignore_index) + ")");
    }
    ++l.counted;
  }
  return l;
}

// The targets as the node keeps them: the class index, or -1 for an ignored row.
void store_targets(std::vector<std::ptrdiff_t>& ints, const std::vector<std::int64_t>& targets,
                   std::int64_t ignore_index) {
  for (const std::int64_t t : targets)
    ints.push_back(t == ignore_index ? -1 : static_cast<std::ptrdiff_t>(t));
}

}  // namespace

// cross_entropy, fused: per row, m = max x, S = Σ_c e^(x_c - m), log p_c = x_c - m - log S;
//   loss = (1 - ε) (log S - (x_t - m)) + ε / C (C log S - Σ_c (x_c - m))
//   dloss/dx_c = p_c - q_c,  q = (1 - ε) onehot(t) + ε / C   (the smoothed target distribution)
// times the upstream gradient of that row (divided by the non-ignored count for Mean).
template <class T>
Var<T> cross_entropy(const Var<T>& logits, const std::vector<std::int64_t>& targets,
                     const CrossEntropyOptions& o) {
  Tape<T>& t = Tape<T>::of("cross_entropy", {logits});
  const Shape& s = t.shape(logits);
  if (!(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0)) {
    throw ValueError("cross_entropy: label_smoothing must be in [0, 1]; got " +
                     std::to_string(o.label_smoothing));
  }
  const ClassLayout l = check_class_targets("cross_entropy", s, targets, o.ignore_index);
  auto r = t.record("cross_entropy", {logits});
  r.set_scalar(LossScalar::reduction, static_cast<double>(o.reduction));
  r.set_scalar(LossScalar::mean_divisor, static_cast<double>(l.counted));
  r.set_scalar(LossScalar::smoothing, o.label_smoothing);
  store_targets(r.ints(), targets, o.ignore_index);
  const bool save = r.requires_grad();
  T* probs = nullptr;
  if (save) {
    xt::xarray<T>& p = r.save(CeSaved::probs);
    if (p.shape() != s) p.resize(s);
    probs = p.data();
  }
  T* out = r.out(reduced_shape(o.reduction, l.batched ? Shape{l.n} : Shape{})).data();
  const T* x = t.value(logits).data();
  const double eps = o.label_smoothing, classes = static_cast<double>(l.c);
  double total = 0;
  // One row's e^(x - m), computed once for the sum and the probs (a per-thread buffer: a
  // training step allocates nothing).
  thread_local std::vector<double> e;
  e.resize(l.c);
  for (std::size_t n = 0; n < l.n; ++n) {
    const T* row = x + n * l.c;
    double loss = 0;
    if (targets[n] != o.ignore_index) {
      double m = -std::numeric_limits<double>::infinity();
      for (std::size_t j = 0; j < l.c; ++j) m = row[j] > m ? double(row[j]) : m;
      double sum = 0, shifted = 0;  // Σ e^(x - m), Σ (x - m)
      for (std::size_t j = 0; j < l.c; ++j) {
        e[j] = std::exp(row[j] - m);
        sum += e[j];
        shifted += row[j] - m;
      }
      const double log_sum = std::log(sum);
      const double nll = log_sum - (row[static_cast<std::size_t>(targets[n])] - m);
      loss = (1.0 - eps) * nll + (eps > 0 ? eps / classes * (classes * log_sum - shifted) : 0.0);
      if (save) {
        for (std::size_t j = 0; j < l.c; ++j) probs[n * l.c + j] = static_cast<T>(e[j] / sum);
      }
    }
    total += loss;
    if (o.reduction == Reduction::None) out[n] = static_cast<T>(loss);
  }
  reduce_into(out, o.reduction, total, static_cast<double>(l.counted));
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const std::size_t num_classes = c.input(0).shape().back();
    const std::vector<std::ptrdiff_t>& tgt = c.ints();
    const double smoothing = c.scalar(LossScalar::smoothing),
                 off = smoothing / static_cast<double>(num_classes);
    const T* p = c.saved(CeSaved::probs).data();
    T* gx = c.input_grad(0).data();
    for (std::size_t n = 0; n < tgt.size(); ++n) {
      if (tgt[n] < 0) continue;
      const double g = upstream_at(c, n);
      for (std::size_t j = 0; j < num_classes; ++j) {
        const double q = (static_cast<std::ptrdiff_t>(j) == tgt[n] ? 1.0 - smoothing : 0.0) + off;
        gx[n * num_classes + j] += static_cast<T>(g * (p[n * num_classes + j] - q));
      }
    }
  });
}

// nll_loss: loss_n = -lp[n, t_n];  dloss_n/dlp[n, t_n] = -1 (0 for ignored rows and elsewhere)
template <class T>
Var<T> nll_loss(const Var<T>& log_probs, const std::vector<std::int64_t>& targets, Reduction reduction,
                std::int64_t ignore_index) {
  Tape<T>& t = Tape<T>::of("nll_loss", {log_probs});
  const Shape& s = t.shape(log_probs);
  const ClassLayout l = check_class_targets("nll_loss", s, targets, ignore_index);
  auto r = t.record("nll_loss", {log_probs});
  r.set_scalar(LossScalar::reduction, static_cast<double>(reduction));
  r.set_scalar(LossScalar::mean_divisor, static_cast<double>(l.counted));
  store_targets(r.ints(), targets, ignore_index);
  T* out = r.out(reduced_shape(reduction, l.batched ? Shape{l.n} : Shape{})).data();
  const T* lp = t.value(log_probs).data();
  double total = 0;
  for (std::size_t n = 0; n < l.n; ++n) {
    const double loss =
        targets[n] == ignore_index ? 0.0 : -double(lp[n * l.c + static_cast<std::size_t>(targets[n])]);
    total += loss;
    if (reduction == Reduction::None) out[n] = static_cast<T>(loss);
  }
  reduce_into(out, reduction, total, static_cast<double>(l.counted));
  return r.finish([](BackwardCtx<T>& c) {
    if (!c.needs_grad(0)) return;
    const std::size_t classes = c.input(0).shape().back();
    const std::vector<std::ptrdiff_t>& tgt = c.ints();
    T* gx = c.input_grad(0).data();
    for (std::size_t n = 0; n < tgt.size(); ++n) {
      if (tgt[n] >= 0)
        gx[n * classes + static_cast<std::size_t>(tgt[n])] -= static_cast<T>(upstream_at(c, n));
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

#define TAPEGRAD_INSTANTIATE(T)                                                                       \
  template Var<T> cross_entropy(const Var<T>&, const std::vector<std::int64_t>&,                      \
                                const CrossEntropyOptions&);                                          \
  template Var<T> nll_loss(const Var<T>&, const std::vector<std::int64_t>&, Reduction, std::int64_t); \
  template Var<T> mse_loss(const Var<T>&, const Var<T>&, Reduction);                                  \
  template Var<T> binary_cross_entropy_with_logits(const Var<T>&, const Var<T>&, Reduction);          \
  template Var<T> binary_cross_entropy_with_logits(const Var<T>&, const Var<T>&, Reduction, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
