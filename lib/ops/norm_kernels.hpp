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
#include <cstddef>
#include <vector>

namespace tapegrad::detail {

// y = (x - mean) rstd w + b per group. w, b may be null (no affine); mean_hi, mean_lo, rstd
// may be null (nothing to save without grad).
void layer_norm_forward(float* y, float* mean_hi, float* mean_lo, float* rstd, const float* x,
                        const float* w, const float* b, std::size_t groups, std::size_t dim,
                        double eps);
void layer_norm_forward(double* y, double* mean_hi, double* mean_lo, double* rstd, const double* x,
                        const double* w, const double* b, std::size_t groups, std::size_t dim,
                        double eps);

// dx (if non-null) is added into, or assigned when assign_dx (its first touch, see
// BackwardCtx::input_grad_write); dw, db (if non-null, size dim) receive double sums, added.
void layer_norm_backward(float* dx, bool assign_dx, double* dw, double* db, const float* dy, const float* x,
                         const float* w, const float* mean_hi, const float* mean_lo,
                         const float* rstd, std::size_t groups, std::size_t dim);
void layer_norm_backward(double* dx, bool assign_dx, double* dw, double* db, const double* dy, const double* x,
                         const double* w, const double* mean_hi, const double* mean_lo,
                         const double* rstd, std::size_t groups, std::size_t dim);

// Training forward. mean and var (size C) receive the batch statistics (biased var).
void batch_norm_forward(float* y, std::vector<double>& mean, std::vector<double>& var,
                        const float* x, const float* w, const float* b, std::size_t n,
                        std::size_t ch, std::size_t len, double eps);
void batch_norm_forward(double* y, std::vector<double>& mean, std::vector<double>& var,
                        const double* x, const double* w, const double* b, std::size_t n,
                        std::size_t ch, std::size_t len, double eps);

// Training backward. s1, s2 (size C, zeroed by the caller) receive sum dy and sum dy xhat per
// channel (= dL/db and dL/dw); dx (if non-null) is added into, or assigned when assign_dx.
void batch_norm_backward(float* dx, bool assign_dx, double* s1, double* s2, const float* dy, const float* x,
                         const float* w, const float* mean_hi, const float* mean_lo,
                         const float* rstd, std::size_t n, std::size_t ch, std::size_t len);
void batch_norm_backward(double* dx, bool assign_dx, double* s1, double* s2, const double* dy, const double* x,
                         const double* w, const double* mean_hi, const double* mean_lo,
                         const double* rstd, std::size_t n, std::size_t ch, std::size_t len);

}  // namespace tapegrad::detail
