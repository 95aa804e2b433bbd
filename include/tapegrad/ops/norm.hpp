#pragma once
// Fused normalization ops: LayerNorm and BatchNorm (training and eval), each one tape node
// with a hand-derived backward (llm.c style). The LayerNorm and BatchNorm1d modules call these.
//
// Precision: statistics (means, variances, and the reductions of backward) are accumulated in
// double totals for float inputs too, over values shifted by a pivot (see
// lib/ops/norm_kernels_common.hpp). Float results agree with a double computation to float
// precision for any finite input whose double result is finite: a group or channel whose
// squares would leave float's range (a spread beyond about 1.9e19, or subnormal spreads with
// eps near 0) is computed in double.
#include <cstddef>
#include <vector>

#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// LayerNorm over the trailing `normalized_ndim` dims of x (PyTorch's normalized_shape =
// x.shape[-normalized_ndim:]); every leading index is one independent group.
//   y = (x - mean) / sqrt(var + eps) * weight + bias     (biased variance, as PyTorch)
// weight and bias have the normalized shape, or are both undefined (default-constructed)
// Vars for elementwise_affine = false. Throws ValueError for normalized_ndim = 0 or > x.ndim,
// or for only one of weight/bias given; ShapeError when their shape is not the normalized one.
template <class T>
Var<T> layer_norm(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, std::size_t normalized_ndim,
                  double eps = 1e-5);

// BatchNorm's two modes are two functions rather than one with a mode flag, because they take
// different inputs: training computes the statistics (and hands them out), eval is given them.
//
// BatchNorm in training mode for x of shape (N, C) or (N, C, L): channel axis 1, statistics
// per channel over the N * L values of the batch (and length) axes.
//   y = (x - batch_mean_c) / sqrt(batch_var_c + eps) * weight_c + bias_c
// with the BIASED batch variance (divide by N * L), as PyTorch normalizes.
//
// When non-null, `batch_mean` and `batch_var` receive the per-channel batch mean and biased
// variance (shape (C)) so the module can update its running statistics. PyTorch's
// running_var uses the UNBIASED variance: the module must convert,
//   running_var = (1 - momentum) running_var + momentum * batch_var * n / (n - 1),  n = N * L.
//
// weight and bias have shape (C), or are both undefined Vars (affine = false).
// Throws ShapeError for x not 2-D/3-D or weight/bias not (C); StateError when N * L < 2
// ("Expected more than 1 value per channel when training, got input size (1, 8)"; PyTorch
// raises this for exactly 1; we also refuse 0). eps must be finite and >= 0 (ValueError; PyTorch
// does not check). batch_mean/batch_var are left untouched when the call throws. In anomaly
// mode a batch_mean or batch_var that would be NaN or Inf in T is a NumericalError.
template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, double eps = 1e-5,
                  xt::xarray<T>* batch_mean = nullptr, xt::xarray<T>* batch_var = nullptr);

// The batch statistics in double (per channel: mean and biased variance), for running
// statistics of a float model: a float batch_var is Inf beyond FLT_MAX (a spread of about
// 1.9e19) where the running variance updated from it may still be finite.
struct BatchStatistics {
  std::vector<double> mean, var;
};
template <class T>
Var<T> batch_norm(const Var<T>& x, const Var<T>& weight, const Var<T>& bias, double eps,
                  BatchStatistics& stats);

// BatchNorm in eval mode: the running statistics (shape (C)) are constants, not Vars.
//   y = (x - running_mean_c) / sqrt(running_var_c + eps) * weight_c + bias_c
// Gradients for x, weight and bias; none for the statistics (PyTorch: buffers).
template <class T>
Var<T> batch_norm_eval(const Var<T>& x, const Var<T>& weight, const Var<T>& bias,
                       const xt::xarray<T>& running_mean, const xt::xarray<T>& running_var,
                       double eps = 1e-5);

}  // namespace tapegrad
