#include "tapegrad/optim/clip.hpp"

#include <algorithm>
#include <cmath>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {

// sum (|g| / scale)^p over every grad, in double, and max |g| (NaN if any is NaN).
template <class T>
double pow_sum(const std::vector<Parameter<T>*>& params, double p, double scale, double& max_abs) {
  double total = 0;
  max_abs = 0;
  for (const auto* prm : params) {
    for (const T g : prm->grad()) {
      const double a = std::abs(static_cast<double>(g));
      max_abs = std::isnan(a) ? a : std::max(max_abs, a);
      total += std::pow(a / scale, p);
    }
  }
  return total;
}

// The p-norm. |g|^p leaves double's range for large p (1e20^16 = 1e320) or small |g| (1e-20^16
// underflows to 0) where the norm itself is finite and nonzero. Then the sum is taken again of
// (|g| / s)^p with s = 2^(ilogb(max |g|) + 1), exact: every term is at most 1, the largest at
// least 2^-p, and the norm is s (sum)^(1/p). Above 2^-800, the terms lost to underflow (below
// 2^-1022 each) are no more than 1e-60 of the sum.
template <class T>
double p_norm(const std::vector<Parameter<T>*>& params, double p) {
  double max_abs = 0;
  const double total = pow_sum(params, p, 1.0, max_abs);
  const bool in_range = std::isfinite(total) && (total > 0x1p-800 || max_abs == 0);
  if (in_range || !std::isfinite(max_abs)) return std::pow(total, 1.0 / p);
  const double s = std::ldexp(1.0, std::ilogb(max_abs) + 1);
  return s * std::pow(pow_sum(params, p, s, max_abs), 1.0 / p);
}

}  // namespace

template <class T>
double clip_grad_norm(const std::vector<Parameter<T>*>& params, double max_norm, double norm_type,
                      bool error_if_nonfinite) {
  if (!(norm_type > 0)) {
    throw ValueError("clip_grad_norm: norm_type must be positive, got " + std::to_string(norm_type));
  }
  if (params.empty()) return 0.0;
  double total = 0;
  if (std::isinf(norm_type)) {
    pow_sum(params, 1.0, 1.0, total);  // max |g|
  } else {
    total = p_norm(params, norm_type);
  }
  if (error_if_nonfinite && !std::isfinite(total)) {
    throw ValueError("clip_grad_norm: the total norm of order " + std::to_string(norm_type) +
                     " for gradients from " + std::to_string(params.size()) + " parameters is non-finite (" +
                     std::to_string(total) +
                     "), so it cannot be clipped. Pass error_if_nonfinite = false to skip this check");
  }
  const double coef = std::min(1.0, max_norm / (total + 1e-6));
  for (auto* p : params) {
    for (T& g : p->mutable_grad()) g = static_cast<T>(g * coef);
  }
  return total;
}

template double clip_grad_norm<float>(const std::vector<Parameter<float>*>&, double, double, bool);
template double clip_grad_norm<double>(const std::vector<Parameter<double>*>&, double, double, bool);

}  // namespace tapegrad
