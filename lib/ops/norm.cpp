#include "tapegrad/ops/norm.hpp"

#include <cmath>
#include <string>
#include <vector>

#include "../core/check_eps.hpp"
#include "norm_kernels.hpp"

namespace tapegrad {

// The kernels: layer_norm_kernels.cpp and batch_norm_kernels.cpp; their precision analysis:
// norm_kernels_common.hpp. Per-call work buffers, here and in the kernels, are function-local
// thread_local vectors whose assign()/resize() reuse their capacity: a training step allocates
// nothing after its first (tests/test_allocations.cpp).

namespace {

// Saved by layer_norm and batch_norm (training): the statistics split as norm_kernels.hpp
// describes, in the order of the kernels' parameters.
enum class NormSaved : std::size_t { mean_hi, mean_lo, rstd, count };
// layer_norm's ints: the normalized size, then the (group, e) pairs of its wide groups.
enum class LnInt : std::size_t { dim, count };
// batch_norm's ints (both modes): the (N, C, L) view of x; in training, then the (channel, e)
// pairs of the wide channels.
enum class BnInt : std::size_t { n, ch, len, count };
// batch_norm_eval: the running mean and 1/sqrt(running_var + eps) per channel.
enum class BnEvalSaved : std::size_t { running_mean, rstd, count };

// weight and bias: both undefined (no affine) or both live Vars of x's tape with shape `s`.
// what() describes `s` for the message; it is called only to throw (no string is built on the
// path that succeeds: a training step allocates nothing).
template <class T, class What>
bool check_affine(const char* op, Tape<T>& t, const Var<T>& w, const Var<T>& b, const Shape& s, What&& what) {
  if (w.defined() != b.defined()) {
    throw ValueError(std::string(op) + ": weight and bias must be given both or neither (got " +
                     (w.defined() ? "weight only" : "bias only") + ")");
  }
  if (!w.defined()) return false;
  t.check_input(op, 1, w);
  t.check_input(op, 2, b);
  for (const auto* v : {&w, &b}) {
    if (t.shape(*v) != s) {
      throw ShapeError(std::string(op) + ": " + (v == &w ? "weight" : "bias") + " has shape " +
                       shape_str(t.shape(*v)) + " but " + what() + " " + shape_str(s));
    }
  }
  return true;
}

template <class T>
T* sized(xt::xarray<T>& a, std::size_t n) {
  if (a.dimension() != 1 || a.size() != n) a.resize(Shape{n});
  return a.data();
}

// ---- BatchNorm eval ---------------------------------------------------------------------
// Calls f(k, c) for every element k = (i C + c) L + l of an (N, C, L) buffer, in memory order.
// L = 1 (2-D input) gets its own two loops so that the channel loop is the inner one.
template <class F>
void for_each_ncl(std::size_t n, std::size_t ch, std::size_t len, F&& f) {
  if (len == 1) {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t c = 0; c < ch; ++c) f(i * ch + c, c);
    return;
  }
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < ch; ++c)
      for (std::size_t l = 0; l < len; ++l) f((i * ch + c) * len + l, c);
}

template <class T>
void add_into(xt::xarray<T>& acc, const std::vector<double>& v) {
  T* a = acc.data();
  for (std::size_t i = 0; i < v.size(); ++i) a[i] += static_cast<T>(v[i]);
}

// x as (N, C, L); throws for ranks other than 2 and 3.
void batch_dims(const char* op, const Shape& s, std::size_t& n, std::size_t& ch, std::size_t& len) {
  if (s.size() != 2 && s.size() != 3) {
    throw ShapeError(std::string(op) + ": expected a 2-D (N, C) or 3-D (N, C, L) input, got " +
                     std::to_string(s.size()) + "-D input of shape " + shape_str(s));
  }
  n = s[0];
  ch = s[1];
  len = s.size() == 3 ? s[2] : 1;
}

}  // namespace

// ---- ops -----------------------------------------------------------------------------------

// layer_norm: the math is written above the kernels in layer_norm_kernels.cpp.
// Saved: mean_hi, rstd, mean_lo per group (shape (G)); ints = {D, then the (group, e) pairs of
// the groups computed in double, saved as norm_kernels.hpp describes}.
template <class T>
Var<T> layer_norm(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, std::size_t normalized_ndim,
                  double eps) {
  const char* op = "layer_norm";
  Tape<T>& t = Tape<T>::of(op, {x});
  const Shape& xs = t.shape(x);
  if (normalized_ndim == 0 || normalized_ndim > xs.size()) {
    throw ValueError(std::string(op) + ": normalized_ndim must be in 1.." + std::to_string(xs.size()) +
                     " for an input of shape " + shape_str(xs) + ", got " + std::to_string(normalized_ndim));
  }
  detail::check_eps(op, eps);
  const Shape norm_shape(xs.end() - static_cast<std::ptrdiff_t>(normalized_ndim), xs.end());
  const bool affine = check_affine(op, t, weight, bias, norm_shape, [&] {
    return "the normalized shape of input " + shape_str(xs) + " (its trailing " +
           std::to_string(normalized_ndim) + " dims) is";
  });
  const std::size_t dim = numel(norm_shape);
  const std::size_t groups = dim ? t.value(x).size() / dim : 0;

  auto r = affine ? t.record(op, {x, weight, bias}) : t.record(op, {x});
  T *mean_hi = nullptr, *mean_lo = nullptr, *rstd = nullptr;
  std::vector<std::ptrdiff_t>* wide = nullptr;
  if (r.requires_grad()) {
    mean_hi = sized(r.save(NormSaved::mean_hi), groups);
    mean_lo = sized(r.save(NormSaved::mean_lo), groups);
    rstd = sized(r.save(NormSaved::rstd), groups);
    r.set_int(LnInt::dim, static_cast<std::ptrdiff_t>(dim));
    wide = &r.template int_list<LnInt>();
  }
  detail::layer_norm_forward(r.out(xs).data(), mean_hi, mean_lo, rstd, wide, t.value(x).data(),
                             affine ? t.value(weight).data() : nullptr,
                             affine ? t.value(bias).data() : nullptr, groups, dim, eps);
  return r.finish([](BackwardCtx<T>& c) {
    const std::size_t D = static_cast<std::size_t>(c.int_at(LnInt::dim));
    const IntSpan wide_pairs = c.template int_list<LnInt>();  // the (group, e) pairs of wide groups
    const std::size_t G = c.saved(NormSaved::rstd).size();
    const bool with_affine = c.num_inputs() == 3;
    // dw and db are computed together (one pass), when either is needed
    thread_local std::vector<double> dw, db;
    const bool params = with_affine && (c.needs_grad(1) || c.needs_grad(2));
    dw.assign(params ? D : 0, 0.0);
    db.assign(params ? D : 0, 0.0);
    const GradWrite<T> dx = c.needs_grad(0) ? c.input_grad_write(0) : GradWrite<T>{nullptr, T(0)};
    detail::layer_norm_backward(dx.data, dx.beta, dw.empty() ? nullptr : dw.data(),
                                db.empty() ? nullptr : db.data(), c.grad().data(), c.input(0).data(),
                                with_affine ? c.input(1).data() : nullptr, c.saved(NormSaved::mean_hi).data(),
                                c.saved(NormSaved::mean_lo).data(), c.saved(NormSaved::rstd).data(),
                                wide_pairs.begin(), wide_pairs.end(), G, D);
    if (!dw.empty() && c.needs_grad(1)) add_into(c.input_grad(1), dw);
    if (!db.empty() && c.needs_grad(2)) add_into(c.input_grad(2), db);
  });
}

// The checks both BatchNorm ops make on x (N, C) or (N, C, L), eps, weight and bias; fills
// n, ch, len and returns whether the op is affine.
template <class T>
bool check_batch_input(const char* op, Tape<T>& t, const Var<T>& x, const Var<T>& weight, const Var<T>& bias,
                       double eps, std::size_t& n, std::size_t& ch, std::size_t& len) {
  t.check_input(op, 0, x);
  const Shape& xs = t.shape(x);
  batch_dims(op, xs, n, ch, len);
  detail::check_eps(op, eps);
  return check_affine(op, t, weight, bias, Shape{ch}, [&] {
    return "the input " + shape_str(xs) + " has " + std::to_string(ch) + " channels, so it must be";
  });
}

// In anomaly mode a batch statistic handed out as S (T, or double) that is NaN or Inf is an
// error like a non-finite output: float cannot hold a variance above FLT_MAX (a spread of
// about 1.9e19), and a running variance updated from an Inf one stays Inf. Checked before
// anything is written.
template <class T, class S>
void check_stats(const Tape<T>& t, const Shape& xs, const std::vector<double>& v, const char* name) {
  if (!t.detect_anomaly()) return;
  for (std::size_t c = 0; c < v.size(); ++c) {
    if (std::isfinite(static_cast<S>(v[c]))) continue;
    throw NumericalError("anomaly: forward of 'batch_norm' (tape index " + std::to_string(t.size()) +
                         ", input shape " + shape_str(xs) + ") produced NaN or Inf in its " + name +
                         " for channel " + std::to_string(c) + " (" + std::to_string(v[c]) + " in double)");
  }
}

// The save block of both BatchNorm ops: ints = {N, C, L} and per channel c, in the slots the
// op names, T(mean_c) and rstd_c = T(1 / sqrt(var_c + eps)) (mean and var read as double).
// Returns the two saved buffers.
template <class T>
struct ChannelStats {
  T* mean;
  T* rstd;
};
template <class T, class E, class M, class V>
ChannelStats<T> save_channel_stats(Recorder<T>& r, E mean_slot, E rstd_slot, const M* mean, const V* var,
                                   std::size_t n, std::size_t ch, std::size_t len, double eps) {
  T* m = sized(r.save(mean_slot), ch);
  T* rs = sized(r.save(rstd_slot), ch);
  for (std::size_t c = 0; c < ch; ++c) {
    m[c] = static_cast<T>(mean[c]);
    rs[c] = static_cast<T>(1.0 / std::sqrt(static_cast<double>(var[c]) + eps));
  }
  r.set_int(BnInt::n, static_cast<std::ptrdiff_t>(n));
  r.set_int(BnInt::ch, static_cast<std::ptrdiff_t>(ch));
  r.set_int(BnInt::len, static_cast<std::ptrdiff_t>(len));
  return {m, rs};
}

// Training: the batch mean and rstd as above (mean_hi = T(mean)), mean_lo per channel, and
// after {N, C, L} the (channel, e) pairs of the wide channels, saved as norm_kernels.hpp
// describes.
template <class T>
void save_batch_stats(Recorder<T>& r, const std::vector<double>& mean, const std::vector<double>& var,
                      const std::vector<std::size_t>& wide, std::size_t n, std::size_t ch, std::size_t len,
                      double eps) {
  const ChannelStats<T> s =
      save_channel_stats(r, NormSaved::mean_hi, NormSaved::rstd, mean.data(), var.data(), n, ch, len, eps);
  T* hi = s.mean;
  T* rs = s.rstd;
  T* lo = sized(r.save(NormSaved::mean_lo), ch);
  for (std::size_t c = 0; c < ch; ++c) lo[c] = static_cast<T>(mean[c] - static_cast<double>(hi[c]));
  std::vector<std::ptrdiff_t>& pairs = r.template int_list<BnInt>();
  for (const std::size_t c : wide) {
    const int e = detail::save_wide_stats(hi[c], lo[c], rs[c], mean[c], 1.0 / std::sqrt(var[c] + eps));
    if (e != 0) pairs.insert(pairs.end(), {static_cast<std::ptrdiff_t>(c), e});
  }
}

// batch_norm (training): the math is written above the kernels in batch_norm_kernels.cpp.
// out(mean, var) hands the batch statistics out; it runs before the node is recorded.
template <class T, class Out>
Var<T> batch_norm_impl(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, double eps, Out&& out) {
  const char* op = "batch_norm";
  Tape<T>& t = Tape<T>::of(op, {x});
  std::size_t n = 0, ch = 0, len = 0;
  const bool affine = check_batch_input(op, t, x, weight, bias, eps, n, ch, len);  // checks x first
  const Shape& xs = t.shape(x);
  if (n * len < 2) {  // PyTorch's wording (F.batch_norm's _verify_batch_size)
    throw StateError(std::string(op) +
                     ": Expected more than 1 value per channel when training, got input size " +
                     shape_str(xs) +
                     ". Use eval mode, or a batch with more than one value per "
                     "channel");
  }

  auto r = affine ? t.record(op, {x, weight, bias}) : t.record(op, {x});
  thread_local std::vector<double> mean, var;
  thread_local std::vector<std::size_t> wide;
  detail::batch_norm_forward(r.out(xs).data(), mean, var, wide, t.value(x).data(),
                             affine ? t.value(weight).data() : nullptr,
                             affine ? t.value(bias).data() : nullptr, n, ch, len, eps);
  out(mean, var);
  if (r.requires_grad()) save_batch_stats(r, mean, var, wide, n, ch, len, eps);
  return r.finish([](BackwardCtx<T>& c) {
    const auto N = static_cast<std::size_t>(c.int_at(BnInt::n)),
               C = static_cast<std::size_t>(c.int_at(BnInt::ch)),
               L = static_cast<std::size_t>(c.int_at(BnInt::len));
    const IntSpan wide_pairs = c.template int_list<BnInt>();  // the (channel, e) pairs of wide channels
    const bool with_affine = c.num_inputs() == 3;
    thread_local std::vector<double> s1, s2;
    s1.assign(C, 0.0);
    s2.assign(C, 0.0);
    const GradWrite<T> dx = c.needs_grad(0) ? c.input_grad_write(0) : GradWrite<T>{nullptr, T(0)};
    detail::batch_norm_backward(dx.data, dx.beta, s1.data(), s2.data(), c.grad().data(), c.input(0).data(),
                                with_affine ? c.input(1).data() : nullptr, c.saved(NormSaved::mean_hi).data(),
                                c.saved(NormSaved::mean_lo).data(), c.saved(NormSaved::rstd).data(),
                                wide_pairs.begin(), wide_pairs.end(), N, C, L);
    if (with_affine && c.needs_grad(1)) add_into(c.input_grad(1), s2);
    if (with_affine && c.needs_grad(2)) add_into(c.input_grad(2), s1);
  });
}

template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, double eps,
                  xt::xarray<T>* batch_mean, xt::xarray<T>* batch_var) {
  return batch_norm_impl(x, weight, bias, eps,
                         [&](const std::vector<double>& mean, const std::vector<double>& var) {
                           const Shape& xs = x.tape().shape(x);
                           if (batch_mean) check_stats<T, T>(x.tape(), xs, mean, "batch mean");
                           if (batch_var) check_stats<T, T>(x.tape(), xs, var, "batch variance");
                           if (batch_mean) {
                             T* p = sized(*batch_mean, mean.size());
                             for (std::size_t c = 0; c < mean.size(); ++c) p[c] = static_cast<T>(mean[c]);
                           }
                           if (batch_var) {
                             T* p = sized(*batch_var, var.size());
                             for (std::size_t c = 0; c < var.size(); ++c) p[c] = static_cast<T>(var[c]);
                           }
                         });
}

template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, double eps,
                  BatchStatistics& stats) {
  return batch_norm_impl(x, weight, bias, eps,
                         [&](const std::vector<double>& mean, const std::vector<double>& var) {
                           stats.mean.assign(mean.begin(), mean.end());
                           stats.var.assign(var.begin(), var.end());
                         });
}

// batch_norm_eval: the statistics are constants, so y is affine in x per channel:
//   xhat = (x - rm_c) rstd_c,  rstd_c = 1 / sqrt(rv_c + eps),  y = xhat w_c + b_c
//   dL/dx = dy w_c rstd_c,  dL/dw_c = sum_{n,l} dy xhat,  dL/db_c = sum_{n,l} dy
// Saved: running_mean (copied: the caller may update its buffer before backward) and rstd.
template <class T>
Var<T> batch_norm_eval(const Var<T>& x, const Var<T>& weight, const Var<T>& bias,
                       const xt::xarray<T>& running_mean, const xt::xarray<T>& running_var, double eps) {
  const char* op = "batch_norm_eval";
  Tape<T>& t = Tape<T>::of(op, {x});
  std::size_t n = 0, ch = 0, len = 0;
  const bool affine = check_batch_input(op, t, x, weight, bias, eps, n, ch, len);  // checks x first
  const Shape& xs = t.shape(x);
  for (const auto* s : {&running_mean, &running_var}) {
    if (s->shape() != Shape{ch}) {
      throw ShapeError(std::string(op) + ": " + (s == &running_mean ? "running_mean" : "running_var") +
                       " has shape " + shape_str(s->shape()) + " but the input " + shape_str(xs) + " has " +
                       std::to_string(ch) + " channels, so it must be (" + std::to_string(ch) + ")");
    }
  }

  auto r = affine ? t.record(op, {x, weight, bias}) : t.record(op, {x});
  const T* xp = t.value(x).data();
  const T* w = affine ? t.value(weight).data() : nullptr;
  const T* b = affine ? t.value(bias).data() : nullptr;
  const T* rm = running_mean.data();
  thread_local std::vector<double> scale;  // rstd_c w_c
  scale.resize(ch);
  for (std::size_t c = 0; c < ch; ++c) {
    scale[c] =
        (w ? static_cast<double>(w[c]) : 1.0) / std::sqrt(static_cast<double>(running_var.data()[c]) + eps);
  }
  T* y = r.out(xs).data();
  for_each_ncl(n, ch, len, [&](std::size_t k, std::size_t c) {
    const double v = (static_cast<double>(xp[k]) - rm[c]) * scale[c];
    y[k] = static_cast<T>(b ? v + b[c] : v);
  });
  if (r.requires_grad()) {
    save_channel_stats(r, BnEvalSaved::running_mean, BnEvalSaved::rstd, rm, running_var.data(), n, ch, len,
                       eps);
  }
  return r.finish([](BackwardCtx<T>& c) {
    const auto N = static_cast<std::size_t>(c.int_at(BnInt::n)),
               C = static_cast<std::size_t>(c.int_at(BnInt::ch)),
               L = static_cast<std::size_t>(c.int_at(BnInt::len));
    const bool with_affine = c.num_inputs() == 3;
    const T* xv = c.input(0).data();
    const T* wv = with_affine ? c.input(1).data() : nullptr;
    const T* dy = c.grad().data();
    const T* mean = c.saved(BnEvalSaved::running_mean).data();
    const T* rs = c.saved(BnEvalSaved::rstd).data();
    T* dx = c.needs_grad(0) ? c.input_grad(0).data() : nullptr;
    thread_local std::vector<double> s1, s2, coef;
    s1.assign(C, 0.0);
    s2.assign(C, 0.0);
    coef.resize(C);
    for (std::size_t j = 0; j < C; ++j) coef[j] = (wv ? static_cast<double>(wv[j]) : 1.0) * rs[j];
    for_each_ncl(N, C, L, [&](std::size_t k, std::size_t j) {
      s1[j] += dy[k];
      s2[j] += dy[k] * ((static_cast<double>(xv[k]) - mean[j]) * rs[j]);
      if (dx) dx[k] += static_cast<T>(dy[k] * coef[j]);
    });
    if (with_affine && c.needs_grad(1)) add_into(c.input_grad(1), s2);
    if (with_affine && c.needs_grad(2)) add_into(c.input_grad(2), s1);
  });
}

#define TAPEGRAD_INSTANTIATE(T)                                                                      \
  template Var<T> layer_norm(const Var<T>&, const Var<T>&, const Var<T>&, std::size_t, double);      \
  template Var<T> batch_norm(const Var<T>&, const Var<T>&, const Var<T>&, double, xt::xarray<T>*,    \
                             xt::xarray<T>*);                                                        \
  template Var<T> batch_norm(const Var<T>&, const Var<T>&, const Var<T>&, double, BatchStatistics&); \
  template Var<T> batch_norm_eval(const Var<T>&, const Var<T>&, const Var<T>&, const xt::xarray<T>&, \
                                  const xt::xarray<T>&, double);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
