#pragma once
// Internal to lib/ops: the fused LayerNorm and BatchNorm (training) kernels over raw buffers,
// as plain functions in the manner of llm.c. The ops in norm.cpp validate, record and call
// these; the math is written above each kernel in layer_norm_kernels.cpp and
// batch_norm_kernels.cpp, the precision analysis and shared helpers in norm_kernels_common.hpp.
//
// Buffers are row-major. LayerNorm sees x as (G, D): G groups of D normalized values.
// BatchNorm sees x as (N, C, L) with L = 1 for 2-D input: channel c's values are x[n, c, l].
// The mean of a group or channel is saved as two T values, mean_hi = T(mean) and
// mean_lo = T(mean - mean_hi), whose double sum restores it to ~1e-11 (see norm_kernels_common.hpp).
#include <cmath>
#include <cstddef>
#include <vector>

namespace tapegrad::detail {

// Wide groups. A float group (channel) whose statistics leave float's range is computed in
// double instead (norm_kernels_common.hpp, "range"). When its rstd is far from 1 (outside
// [1, 2)), float cannot hold it, or the group's xhat, safely: such a group is saved as
//   rstd = rstd_saved 2^e,   mean = mean_hi + mean_lo / rstd
// (mean_lo in units of the standard deviation: as an absolute residual it would underflow
// for subnormal means) and listed in `wide` as the pair (group, e), in increasing order of
// group; the backward kernels compute the listed groups in double too. Every other group has
// e = 0, mean = mean_hi + mean_lo, and is not listed.
inline int rstd_exponent(double rstd) { return std::isfinite(rstd) && rstd > 0 ? std::ilogb(rstd) : 0; }
// Saves a group's mean and rstd as above; returns e.
template <class T>
int save_wide_stats(T& mean_hi, T& mean_lo, T& rstd_saved, double mean, double rstd) {
  const int e = rstd_exponent(rstd);
  mean_hi = static_cast<T>(mean);
  const double lo = mean - static_cast<double>(mean_hi);
  mean_lo = static_cast<T>(e == 0 ? lo : lo * rstd);
  rstd_saved = static_cast<T>(std::ldexp(rstd, -e));
  return e;
}

// y = (x - mean) rstd w + b per group. w, b may be null (no affine); mean_hi, mean_lo, rstd
// and wide may be null (nothing to save without grad); wide gets the (group, e) pairs appended.
void layer_norm_forward(float* y, float* mean_hi, float* mean_lo, float* rstd,
                        std::vector<std::ptrdiff_t>* wide, const float* x, const float* w, const float* b,
                        std::size_t groups, std::size_t dim, double eps);
void layer_norm_forward(double* y, double* mean_hi, double* mean_lo, double* rstd,
                        std::vector<std::ptrdiff_t>* wide, const double* x, const double* w, const double* b,
                        std::size_t groups, std::size_t dim, double eps);

// dx (if non-null) is written with BLAS's beta: added into (beta = 1), or overwritten (beta =
// 0: its first touch, see GradWrite); dw, db (if non-null, size dim) receive double sums, added.
// [wide, wide_end): the forward's (group, e) pairs.
void layer_norm_backward(float* dx, float beta, double* dw, double* db, const float* dy, const float* x,
                         const float* w, const float* mean_hi, const float* mean_lo, const float* rstd,
                         const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end, std::size_t groups,
                         std::size_t dim);
void layer_norm_backward(double* dx, double beta, double* dw, double* db, const double* dy, const double* x,
                         const double* w, const double* mean_hi, const double* mean_lo, const double* rstd,
                         const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end, std::size_t groups,
                         std::size_t dim);

// Training forward. mean and var (size C) receive the batch statistics (biased var); wide
// (cleared first) the channels computed in double, in increasing order (the op saves their
// rstd with rstd_exponent).
void batch_norm_forward(float* y, std::vector<double>& mean, std::vector<double>& var,
                        std::vector<std::size_t>& wide, const float* x, const float* w, const float* b,
                        std::size_t n, std::size_t ch, std::size_t len, double eps);
void batch_norm_forward(double* y, std::vector<double>& mean, std::vector<double>& var,
                        std::vector<std::size_t>& wide, const double* x, const double* w, const double* b,
                        std::size_t n, std::size_t ch, std::size_t len, double eps);

// Training backward. s1, s2 (size C, zeroed by the caller) receive sum dy and sum dy xhat per
// channel (= dL/db and dL/dw); dx (if non-null) is written with beta as for LayerNorm.
// [wide, wide_end): (channel, e) pairs as for LayerNorm.
void batch_norm_backward(float* dx, float beta, double* s1, double* s2, const float* dy, const float* x,
                         const float* w, const float* mean_hi, const float* mean_lo, const float* rstd,
                         const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end, std::size_t n,
                         std::size_t ch, std::size_t len);
void batch_norm_backward(double* dx, double beta, double* s1, double* s2, const double* dy, const double* x,
                         const double* w, const double* mean_hi, const double* mean_lo, const double* rstd,
                         const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end, std::size_t n,
                         std::size_t ch, std::size_t len);

}  // namespace tapegrad::detail
