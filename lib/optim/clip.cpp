#include "tapegrad/optim/clip.hpp"

#include <algorithm>
#include <cmath>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

template <class T>
double clip_grad_norm(const std::vector<Parameter<T>*>& params, double max_norm, double norm_type,
                      bool error_if_nonfinite) {
  if (!(norm_type > 0)) {
    throw ValueError("clip_grad_norm: norm_type must be positive, got " + std::to_string(norm_type));
  }
  if (params.empty()) return 0.0;
  const bool inf_norm = std::isinf(norm_type);
  double total = 0;
  for (const auto* p : params) {
    for (const T g : p->grad()) {
      const double a = std::abs(static_cast<double>(g));
      if (inf_norm) total = std::isnan(a) ? a : std::max(total, a);
      else total += std::pow(a, norm_type);
    }
  }
  if (!inf_norm) total = std::pow(total, 1.0 / norm_type);
  if (error_if_nonfinite && !std::isfinite(total)) {
    throw ValueError("clip_grad_norm: the total norm of order " + std::to_string(norm_type) +
                     " for gradients from " + std::to_string(params.size()) +
                     " parameters is non-finite (" + std::to_string(total) +
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
