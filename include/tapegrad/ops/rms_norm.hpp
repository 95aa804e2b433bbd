#pragma once
// RMSNorm as one fused tape node, with the semantics of PyTorch 2.4's
// torch.nn.functional.rms_norm (PyTorch 1.13 has none; the fixtures compose it from primitive
// ops there). Sums of squares and the reductions of backward are accumulated in double totals
// (ops/norm.hpp's precision guarantees); a float group whose squares leave float's range is
// computed in double.
#include <cstddef>
#include <optional>

#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// RMSNorm over the trailing `normalized_ndim` dims of x (normalized_shape =
// x.shape[-normalized_ndim:]); every leading index is one independent group:
//   y = x / sqrt(mean(x^2) + eps) * weight
// weight has the normalized shape, or is undefined (elementwise_affine = false); there is no
// bias (as PyTorch). eps = std::nullopt is T's machine epsilon (torch.finfo(x.dtype).eps:
// 1.19e-7 for float, 2.22e-16 for double), as PyTorch 2.4.
// Throws ValueError for normalized_ndim = 0 or > x.ndim and for eps negative, NaN or infinite;
// ShapeError for a weight whose shape is not the normalized one, or an empty normalized shape.
template <class T>
Var<T> rms_norm(const Var<T>& x, const Var<T>& weight, std::size_t normalized_ndim,
                std::optional<double> eps = std::nullopt);

// The eps rms_norm uses for T when given std::nullopt.
template <class T>
double rms_norm_default_eps();

}  // namespace tapegrad
