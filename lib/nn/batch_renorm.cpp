#include "tapegrad/nn/batch_renorm.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <xtensor/xoperation.hpp>

#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/nn/repr.hpp"

#include "../core/check_eps.hpp"
#include "running_stats.hpp"

namespace tapegrad {

namespace {

void check_limits(double r_max, double d_max) {
  if (!(r_max >= 1) || !std::isfinite(r_max) || !(d_max >= 0) || !std::isfinite(d_max)) {
    throw ValueError("BatchRenorm1d: r_max must be finite and >= 1 and d_max finite and >= 0, got r_max=" +
                     std::to_string(r_max) + ", d_max=" + std::to_string(d_max));
  }
}

// Per channel of an (N, C, L) buffer: the mean and biased variance in double, two-pass.
template <class T>
void channel_moments(const T* x, std::size_t n, std::size_t ch, std::size_t len, std::vector<double>& mean,
                     std::vector<double>& var) {
  mean.assign(ch, 0.0);
  var.assign(ch, 0.0);
  const double inv = 1.0 / static_cast<double>(n * len);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < ch; ++c)
      for (std::size_t l = 0; l < len; ++l) mean[c] += static_cast<double>(x[(i * ch + c) * len + l]);
  for (double& m : mean) m *= inv;
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t c = 0; c < ch; ++c)
      for (std::size_t l = 0; l < len; ++l) {
        const double d = static_cast<double>(x[(i * ch + c) * len + l]) - mean[c];
        var[c] += d * d;
      }
  for (double& v : var) v *= inv;
}

}  // namespace

template <class T>
BatchRenorm1d<T>::BatchRenorm1d(std::size_t num_features, BatchRenormOptions options)
    : c_(num_features), options_(options), r_max_(options.r_max()), d_max_(options.d_max()) {
  checked_size("BatchRenorm1d: num_features", num_features);
  if (num_features == 0) throw ValueError("BatchRenorm1d: num_features must be positive");
  detail::check_eps("BatchRenorm1d", options_.eps());
  if (!(options_.momentum() >= 0 && options_.momentum() <= 1)) {
    throw ValueError("BatchRenorm1d: momentum must be in [0, 1], got " + std::to_string(options_.momentum()));
  }
  check_limits(r_max_, d_max_);
  if (options_.affine()) {
    weight = &this->register_parameter("weight", xt::ones<T>({num_features}));
    bias = &this->register_parameter("bias", xt::zeros<T>({num_features}));
  }
  running_mean = &this->register_buffer("running_mean", xt::zeros<T>({num_features}));
  running_var = &this->register_buffer("running_var", xt::ones<T>({num_features}));
  num_batches_tracked = &this->register_buffer("num_batches_tracked", xt::xarray<T>(T(0)));
}

template <class T>
void BatchRenorm1d<T>::set_limits(double r_max, double d_max) {
  check_limits(r_max, d_max);
  r_max_ = r_max;
  d_max_ = d_max;
}

template <class T>
Var<T> BatchRenorm1d<T>::forward(Tape<T>& t, const Var<T>& x) {
  const Shape& xs = t.shape(x);
  if ((xs.size() != 2 && xs.size() != 3) || xs[1] != c_) {
    throw ShapeError("BatchRenorm1d: expected input of shape (N, " + std::to_string(c_) + ") or (N, " +
                     std::to_string(c_) + ", L), got input of shape " + shape_str(xs));
  }
  const Var<T> w = weight ? t.param(*weight) : Var<T>();
  const Var<T> b = bias ? t.param(*bias) : Var<T>();
  if (!this->is_training()) return batch_norm_eval(x, w, b, *running_mean, *running_var, options_.eps());
  const std::size_t n = xs[0], len = xs.size() == 3 ? xs[2] : 1;
  if (n * len < 2) {
    throw StateError("BatchRenorm1d: Expected more than 1 value per channel when training, got input size " +
                     shape_str(xs) + ". Use eval() or a batch of at least 2.");
  }
  // r and d from the batch moments and the running statistics before this step: constants.
  thread_local std::vector<double> mean, var;
  channel_moments(t.value(x).data(), n, c_, len, mean, var);
  xt::xarray<T> r = xt::xarray<T>::from_shape({c_}), d = xt::xarray<T>::from_shape({c_});
  const double eps = options_.eps();
  for (std::size_t c = 0; c < c_; ++c) {
    const double sigma = std::sqrt(static_cast<double>((*running_var)(c)) + eps);
    const double sigma_b = std::sqrt(var[c] + eps);
    r(c) = static_cast<T>(std::clamp(sigma_b / sigma, 1.0 / r_max_, r_max_));
    d(c) = static_cast<T>(
        std::clamp((mean[c] - static_cast<double>((*running_mean)(c))) / sigma, -d_max_, d_max_));
  }
  // y = xhat (w r) + (w d + b): batch_norm's affine with the constants folded in.
  // Without affine and with nothing clipped away from (1, 0), BatchNorm's own path (same bits).
  const bool identity = !w.defined() && xt::all(xt::equal(r, T(1))) && xt::all(xt::equal(d, T(0)));
  Var<T> w2, b2;
  if (!identity) {
    const Var<T> rv = t.constant(r), dv = t.constant(d);
    w2 = w.defined() ? mul(w, rv) : rv;
    b2 = w.defined() ? add(mul(w, dv), b) : dv;
  }
  Var<T> y = batch_norm(x, w2, b2, eps, batch_stats_);  // throws before any update
  detail::update_running_stats<T>("BatchRenorm1d", t, {running_mean, running_var, num_batches_tracked},
                                  options_.momentum(), batch_stats_, n * len);
  return y;
}

template <class T>
std::string BatchRenorm1d<T>::extra_repr() const {
  return std::to_string(c_) + ", eps=" + python_float(options_.eps()) +
         ", momentum=" + python_float(options_.momentum()) +
         ", affine=" + (options_.affine() ? "True" : "False") + ", r_max=" + python_float(r_max_) +
         ", d_max=" + python_float(d_max_);
}

namespace {
double ramp(std::size_t step, std::size_t start, std::size_t reach, double from, double to) {
  if (step <= start) return from;
  if (step >= reach || reach <= start) return to;
  const double f = static_cast<double>(step - start) / static_cast<double>(reach - start);
  return from + (to - from) * f;
}
}  // namespace

double BatchRenormSchedule::r_max(std::size_t step) const {
  return ramp(step, warmup_steps, r_reach, 1.0, r_max_final);
}
double BatchRenormSchedule::d_max(std::size_t step) const {
  return ramp(step, warmup_steps, d_reach, 0.0, d_max_final);
}

template class BatchRenorm1d<float>;
template class BatchRenorm1d<double>;

}  // namespace tapegrad
