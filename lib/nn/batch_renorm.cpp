#include "tapegrad/nn/batch_renorm.hpp"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include <xtensor/xoperation.hpp>

#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/nn/repr.hpp"

#include "../core/check_eps.hpp"
#include "channel_norm_common.hpp"

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
  detail::check_num_features("BatchRenorm1d", num_features);
  detail::check_eps("BatchRenorm1d", options_.eps());
  detail::check_momentum("BatchRenorm1d", options_.momentum());
  check_limits(r_max_, d_max_);
  if (options_.affine()) this->register_affine(Shape{num_features}, weight, bias);
  this->register_running_stats(num_features, running_mean, running_var, num_batches_tracked);
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
  detail::check_channel_input("BatchRenorm1d", xs, c_);
  const detail::AffineVars<T> a = detail::bind_affine(t, weight, bias);
  const detail::RunningStats<T> running{running_mean, running_var, num_batches_tracked};
  if (!this->is_training()) return detail::normalize_with_running_stats(x, a, running, options_.eps());
  detail::check_values_per_channel("BatchRenorm1d", xs);
  const std::size_t n = xs[0], len = xs.size() == 3 ? xs[2] : 1;
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
  const bool identity = !a.weight.defined() && xt::all(xt::equal(r, T(1))) && xt::all(xt::equal(d, T(0)));
  Var<T> w2, b2;
  if (!identity) {
    const Var<T> rv = t.constant(r), dv = t.constant(d);
    w2 = a.weight.defined() ? mul(a.weight, rv) : rv;
    b2 = a.weight.defined() ? add(mul(a.weight, dv), a.bias) : dv;
  }
  Var<T> y = batch_norm(x, w2, b2, eps, batch_stats_);  // throws before any update
  detail::update_running_stats<T>("BatchRenorm1d", t, running, options_.momentum(), batch_stats_, n * len);
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
