#pragma once
// Slow reference versions of fused ops, composed only from primitive ops (whose gradients
// are each checked on their own). A fused kernel with a hand-derived backward is tested
// against these: same values, same gradients.
#include <cstddef>

#include "tapegrad/tapegrad.hpp"

namespace tgtest {

// LayerNorm without affine over the last `normalized_ndim` axes (torch.nn.functional.layer_norm
// with weight = None):  y = (x - mean(x)) / sqrt(var_biased(x) + eps).
template <class T>
tapegrad::Var<T> layer_norm_reference(const tapegrad::Var<T>& x, double eps,
                                      std::size_t normalized_ndim = 1) {
  namespace tg = tapegrad;
  tg::Axes axes;
  for (std::size_t k = 1; k <= normalized_ndim; ++k) axes.push_back(-static_cast<std::ptrdiff_t>(k));
  const tg::Var<T> mu = tg::mean(x, axes, /*keepdims=*/true);
  const tg::Var<T> v = tg::var(x, axes, /*unbiased=*/false, /*keepdims=*/true);
  return (x - mu) / tg::sqrt(v + static_cast<T>(eps));
}

// LayerNorm with affine: layer_norm_reference(x) * weight + bias, weight and bias shaped like
// the normalized trailing axes.
template <class T>
tapegrad::Var<T> layer_norm_reference(const tapegrad::Var<T>& x, const tapegrad::Var<T>& weight,
                                      const tapegrad::Var<T>& bias, double eps) {
  return layer_norm_reference(x, eps, weight.ndim()) * weight + bias;
}

}  // namespace tgtest
