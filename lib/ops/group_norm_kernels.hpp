#pragma once
// Internal to lib/ops: the fused GroupNorm and RMSNorm kernels over raw buffers (in the manner
// of norm_kernels.hpp, whose helpers and precision analysis they share; the math is written
// above each kernel in group_norm_kernels.cpp and rms_norm_kernels.cpp).
//
// GroupNorm sees x as (N, C, L) with L = 1 for 2-D input, split into N G groups of
// D = (C / G) L contiguous values: group (n, g) holds channels g C/G .. (g + 1) C/G - 1 of
// example n. Its mean is saved as mean_hi + mean_lo, its rstd as for LayerNorm, and the float
// groups that leave float's range are computed in double and listed in `wide` as
// norm_kernels.hpp describes.
#include <cstddef>
#include <vector>

namespace tapegrad::detail {

// The shape of a GroupNorm call.
struct GroupDims {
  std::size_t n, ch, len, groups;  // x is (n, ch, len); groups divides ch
};

// y = (x - mean) rstd w_c + b_c per group (w, b per channel, may be null). mean_hi, mean_lo,
// rstd, wide may be null (nothing saved). stat_mean and stat_var (size N G, may be null)
// receive each group's mean and biased variance in double.
void group_norm_forward(float* y, float* mean_hi, float* mean_lo, float* rstd,
                        std::vector<std::ptrdiff_t>* wide, double* stat_mean, double* stat_var,
                        const float* x, const float* w, const float* b, const GroupDims& d, double eps);
void group_norm_forward(double* y, double* mean_hi, double* mean_lo, double* rstd,
                        std::vector<std::ptrdiff_t>* wide, double* stat_mean, double* stat_var,
                        const double* x, const double* w, const double* b, const GroupDims& d, double eps);

// dx (if non-null) written with beta as for LayerNorm; dw and db (if non-null, size C) receive
// double sums, added. [wide, wide_end): the forward's (group, e) pairs.
void group_norm_backward(float* dx, float beta, double* dw, double* db, const float* dy, const float* x,
                         const float* w, const float* mean_hi, const float* mean_lo, const float* rstd,
                         const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end, const GroupDims& d);
void group_norm_backward(double* dx, double beta, double* dw, double* db, const double* dy, const double* x,
                         const double* w, const double* mean_hi, const double* mean_lo, const double* rstd,
                         const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end, const GroupDims& d);

}  // namespace tapegrad::detail

namespace tapegrad::detail {

// RMSNorm over (G, D): y = x rstd w, rstd = 1 / sqrt(mean(x^2) + eps) per group (w per element,
// may be null). rstd and wide may be null (nothing saved); a float group whose sum of squares
// leaves float's range is computed in double, its rstd saved as rstd_saved 2^e with the pair
// (group, e) appended to `wide` when e != 0.
void rms_norm_forward(float* y, float* rstd, std::vector<std::ptrdiff_t>* wide, const float* x,
                      const float* w, std::size_t groups, std::size_t dim, double eps);
void rms_norm_forward(double* y, double* rstd, std::vector<std::ptrdiff_t>* wide, const double* x,
                      const double* w, std::size_t groups, std::size_t dim, double eps);
// dx (if non-null) with beta; dw (if non-null, size dim) receives double sums, added.
void rms_norm_backward(float* dx, float beta, double* dw, const float* dy, const float* x, const float* w,
                       const float* rstd, const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end,
                       std::size_t groups, std::size_t dim);
void rms_norm_backward(double* dx, double beta, double* dw, const double* dy, const double* x,
                       const double* w, const double* rstd, const std::ptrdiff_t* wide,
                       const std::ptrdiff_t* wide_end, std::size_t groups, std::size_t dim);

}  // namespace tapegrad::detail
