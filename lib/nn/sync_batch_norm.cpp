#include "tapegrad/nn/sync_batch_norm.hpp"

#include <cmath>
#include <string>
#include <tuple>
#include <vector>

#include "../core/check_eps.hpp"
#include "channel_norm_common.hpp"
#include "running_stats.hpp"

namespace tapegrad {

namespace {

// sync_batch_norm's saved state: per channel the global mean (split into T hi + lo, so a float
// node keeps it to double precision) and rstd; the global value count M; the (N, C, L) view of
// the local x and the group (0 world, 1 self).
enum class SbnSaved : std::size_t { mean_hi, mean_lo, rstd, count };
enum class SbnScalar : std::size_t { total, count };
enum class SbnInt : std::size_t { n, ch, len, group, count };

dist::Group group_of(std::ptrdiff_t k) { return k == 0 ? dist::Group::world() : dist::Group::self(); }

// f(value as double, channel, flat index) for every element of an (N, C, L) buffer.
template <class T, class F>
void for_each_ncl(const T* x, std::size_t n, std::size_t ch, std::size_t len, F&& f) {
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < ch; ++c)
      for (std::size_t l = 0; l < len; ++l) {
        const std::size_t k = (i * ch + c) * len + l;
        f(static_cast<double>(x[k]), c, k);
      }
}

// The global batch's per-channel mean and biased variance (two allreduces, the first checking
// that every rank has C channels); returns the global value count M. StateError on every rank
// when M < 2.
template <class T>
double global_stats(const T* x, const Shape& xs, dist::Group g, BatchStatistics& stats) {
  const std::size_t n = xs[0], ch = xs[1], len = xs.size() == 3 ? xs[2] : 1;
  thread_local std::vector<double> buf;
  buf.assign(ch + 1, 0.0);
  for_each_ncl(x, n, ch, len, [&](double v, std::size_t c, std::size_t) { buf[c] += v; });
  buf[ch] = static_cast<double>(n * len);
  dist::allreduce(buf.data(), buf.size(), dist::ReduceOp::sum, g);
  const double total = buf[ch];
  if (total < 2) {  // the same decision on every rank
    throw detail::too_few_values_error("SyncBatchNorm", xs,
                                       " on this rank, and " + std::to_string(static_cast<long long>(total)) +
                                           " over the global batch of the " + std::to_string(g.size()) +
                                           " ranks. Use eval() or a global batch of at least 2.");
  }
  stats.mean.resize(ch);
  for (std::size_t c = 0; c < ch; ++c) stats.mean[c] = buf[c] / total;
  buf.assign(ch, 0.0);
  for_each_ncl(x, n, ch, len, [&](double v, std::size_t c, std::size_t) {
    const double d = v - stats.mean[c];
    buf[c] += d * d;
  });
  dist::allreduce(buf.data(), ch, dist::ReduceOp::sum, g, dist::Verify::none);
  stats.var.resize(ch);
  for (std::size_t c = 0; c < ch; ++c) stats.var[c] = buf[c] / total;
  return total;
}

template <class T>
void save_stats(Recorder<T>& r, const BatchStatistics& s, double eps) {
  const std::size_t ch = s.mean.size();
  for (const SbnSaved slot : {SbnSaved::mean_hi, SbnSaved::mean_lo, SbnSaved::rstd})
    r.save(slot).resize(Shape{ch});
  T* hi = r.save(SbnSaved::mean_hi).data();
  T* lo = r.save(SbnSaved::mean_lo).data();
  T* rs = r.save(SbnSaved::rstd).data();
  for (std::size_t c = 0; c < ch; ++c) {
    hi[c] = static_cast<T>(s.mean[c]);
    lo[c] = static_cast<T>(s.mean[c] - static_cast<double>(hi[c]));
    rs[c] = static_cast<T>(1.0 / std::sqrt(s.var[c] + eps));
  }
}

// Backward: local sums of dy and dy xhat (weight's and bias's gradients), then their global
// sums for dx = w rstd (dy - sum dy / M - xhat sum(dy xhat) / M).
template <class T>
void sync_batch_norm_backward(BackwardCtx<T>& c) {
  const auto N = static_cast<std::size_t>(c.int_at(SbnInt::n)),
             C = static_cast<std::size_t>(c.int_at(SbnInt::ch)),
             L = static_cast<std::size_t>(c.int_at(SbnInt::len));
  const double M = c.scalar(SbnScalar::total);
  const T *hi = c.saved(SbnSaved::mean_hi).data(), *lo = c.saved(SbnSaved::mean_lo).data(),
          *rs = c.saved(SbnSaved::rstd).data(), *dy = c.grad().data();
  const bool with_affine = c.num_inputs() == 3;
  const auto xhat = [&](double v, std::size_t ch) {
    return (v - static_cast<double>(hi[ch]) - static_cast<double>(lo[ch])) * static_cast<double>(rs[ch]);
  };
  thread_local std::vector<double> s;
  s.assign(2 * C, 0.0);
  for_each_ncl(c.input(0).data(), N, C, L, [&](double v, std::size_t ch, std::size_t k) {
    s[ch] += static_cast<double>(dy[k]);
    s[C + ch] += static_cast<double>(dy[k]) * xhat(v, ch);
  });
  for (std::size_t ch = 0; with_affine && ch < C; ++ch) {
    if (c.needs_grad(1)) c.input_grad(1).data()[ch] += static_cast<T>(s[C + ch]);
    if (c.needs_grad(2)) c.input_grad(2).data()[ch] += static_cast<T>(s[ch]);
  }
  if (!c.needs_grad(0)) return;
  dist::allreduce(s.data(), s.size(), dist::ReduceOp::sum, group_of(c.int_at(SbnInt::group)),
                  dist::Verify::none);
  const T* w = with_affine ? c.input(1).data() : nullptr;
  const GradWrite<T> dx = c.input_grad_write(0);
  for_each_ncl(c.input(0).data(), N, C, L, [&](double v, std::size_t ch, std::size_t k) {
    const double scale = (w ? static_cast<double>(w[ch]) : 1.0) * static_cast<double>(rs[ch]);
    const double g = scale * (static_cast<double>(dy[k]) - s[ch] / M - xhat(v, ch) * s[C + ch] / M);
    dx.data[k] = beta_add(dx.beta, dx.data[k], static_cast<T>(g));
  });
}

// The training op: one tape node, its statistics those of the global batch (see the header).
// x is (N, C, L) with L = 1 for 2-D input, checked by the module; weight and bias are both
// given or both undefined. Hands out the statistics and returns M in `total`.
template <class T>
Var<T> sync_batch_norm(const Var<T>& x, const Var<T>& w, const Var<T>& b, double eps, dist::Group g,
                       BatchStatistics& stats, double& total) {
  const char* op = "sync_batch_norm";
  Tape<T>& t = Tape<T>::of(op, {x});
  const Shape& xs = t.shape(x);
  const std::size_t n = xs[0], ch = xs[1], len = xs.size() == 3 ? xs[2] : 1;
  auto r = w.defined() ? t.record(op, {x, w, b}) : t.record(op, {x});
  total = global_stats(t.value(x).data(), xs, g, stats);
  const T* wv = w.defined() ? t.value(w).data() : nullptr;
  const T* bv = w.defined() ? t.value(b).data() : nullptr;
  T* y = r.out(xs).data();
  for_each_ncl(t.value(x).data(), n, ch, len, [&](double v, std::size_t c, std::size_t k) {
    const double xhat = (v - stats.mean[c]) / std::sqrt(stats.var[c] + eps);
    y[k] = static_cast<T>(wv ? xhat * static_cast<double>(wv[c]) + static_cast<double>(bv[c]) : xhat);
  });
  if (r.requires_grad()) {
    save_stats(r, stats, eps);
    r.set_scalar(SbnScalar::total, total);
    r.set_int(SbnInt::n, static_cast<std::ptrdiff_t>(n));
    r.set_int(SbnInt::ch, static_cast<std::ptrdiff_t>(ch));
    r.set_int(SbnInt::len, static_cast<std::ptrdiff_t>(len));
    r.set_int(SbnInt::group, g.is_world() ? 0 : 1);
  }
  return r.finish([](BackwardCtx<T>& c) { sync_batch_norm_backward(c); });
}

}  // namespace

template <class T>
SyncBatchNorm<T>::SyncBatchNorm(std::size_t num_features, BatchNormOptions options, dist::Group group)
    : c_(num_features), options_(options), group_(group) {
  detail::check_num_features("SyncBatchNorm", num_features);
  detail::check_eps("SyncBatchNorm", options_.eps());
  detail::check_momentum("SyncBatchNorm", options_.momentum());
  if (options_.affine()) this->register_affine(Shape{num_features}, weight, bias);
  if (options_.track_running_stats()) {
    this->register_running_stats(num_features, running_mean, running_var, num_batches_tracked);
  }
}

template <class T>
std::shared_ptr<SyncBatchNorm<T>> SyncBatchNorm<T>::from_batch_norm(const BatchNorm1d<T>& bn,
                                                                    dist::Group group) {
  auto s = std::make_shared<SyncBatchNorm<T>>(bn.num_features(), bn.options(), group);
  if (s->weight) {
    s->weight->value = bn.weight->value;
    s->weight->requires_grad = bn.weight->requires_grad;
    s->bias->value = bn.bias->value;
    s->bias->requires_grad = bn.bias->requires_grad;
  }
  if (s->running_mean) {
    *s->running_mean = *bn.running_mean;
    *s->running_var = *bn.running_var;
    *s->num_batches_tracked = *bn.num_batches_tracked;
  }
  s->train(bn.is_training());
  return s;
}

template <class T>
Var<T> SyncBatchNorm<T>::forward(Tape<T>& t, const Var<T>& x) {
  detail::check_channel_input("SyncBatchNorm", t.shape(x), c_);
  const detail::AffineVars<T> a = detail::bind_affine(t, weight, bias);
  const detail::RunningStats<T> stats{running_mean, running_var, num_batches_tracked};
  if (!this->is_training()) {  // no communication in eval mode, as PyTorch
    if (running_mean) return detail::normalize_with_running_stats(x, a, stats, options_.eps());
    return batch_norm(x, a.weight, a.bias, options_.eps());
  }
  double total = 0;
  Var<T> y = sync_batch_norm(x, a.weight, a.bias, options_.eps(), group_, batch_stats_, total);
  if (running_mean) {
    detail::update_running_stats("SyncBatchNorm", t, stats, options_.momentum(), batch_stats_,
                                 static_cast<std::size_t>(total));
  }
  return y;
}

template <class T>
std::string SyncBatchNorm<T>::extra_repr() const {
  return std::to_string(c_) + ", eps=" + std::to_string(options_.eps()) +
         ", momentum=" + (options_.momentum() ? std::to_string(*options_.momentum()) : std::string("None")) +
         ", affine=" + (options_.affine() ? "True" : "False") +
         ", track_running_stats=" + (options_.track_running_stats() ? "True" : "False");
}

namespace {
template <class T>
using Swap = std::tuple<Module<T>*, std::string, const BatchNorm1d<T>*>;

// Every BatchNorm1d below m, with its parent and name; ValueError (before anything changes) for
// one whose parent cannot swap it.
template <class T>
void find_batch_norms(Module<T>& m, const std::string& prefix, std::vector<Swap<T>>& out) {
  for (const auto& entry : m.named_children()) {
    const auto* bn = dynamic_cast<const BatchNorm1d<T>*>(entry.second);
    if (!bn) {
      find_batch_norms(*entry.second, prefix + entry.first + ".", out);
      continue;
    }
    if (!m.children_replaceable()) {
      throw ValueError("convert_sync_batchnorm: the BatchNorm1d '" + prefix + entry.first +
                       "' belongs to a " + m.type_name() +
                       ", which keeps a reference to it: it cannot be swapped for a SyncBatchNorm");
    }
    out.emplace_back(&m, entry.first, bn);
  }
}
}  // namespace

template <class T>
std::shared_ptr<Module<T>> convert_sync_batchnorm(std::shared_ptr<Module<T>> module, dist::Group group) {
  if (!module) throw ValueError("convert_sync_batchnorm: the module is null");
  if (const auto* bn = dynamic_cast<const BatchNorm1d<T>*>(module.get())) {
    return SyncBatchNorm<T>::from_batch_norm(*bn, group);
  }
  std::vector<Swap<T>> swaps;
  find_batch_norms(*module, "", swaps);
  for (const Swap<T>& s : swaps) {
    std::get<0>(s)->replace_child(std::get<1>(s), SyncBatchNorm<T>::from_batch_norm(*std::get<2>(s), group));
  }
  return module;
}

template class SyncBatchNorm<float>;
template class SyncBatchNorm<double>;
template std::shared_ptr<Module<float>> convert_sync_batchnorm(std::shared_ptr<Module<float>>, dist::Group);
template std::shared_ptr<Module<double>> convert_sync_batchnorm(std::shared_ptr<Module<double>>, dist::Group);

}  // namespace tapegrad
