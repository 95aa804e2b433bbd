// The kernels every fused recurrent layer shares (recurrent_kernels.hpp). With dA the
// gradient w.r.t. the pre-activations of all steps, (seq_len * N, G):
//   dL/dX    = dA W_ih                               one GEMM over seq_len * N rows
//   dL/dW_ih = dA^T X                                one GEMM over seq_len * N rows
//   dL/dW_hh = Σ_t dA_t^T h_prev(t)                  one GEMM over the seq_len - 1 steps whose
//                                                    previous state is a row of Y (Y shifted
//                                                    by one step), plus dA_first^T h0
//   dL/dh0   = dA_first W_hh
//   dL/db    = Σ_rows dA[row]                        column sums: float partial sums of 32
//                                                    rows into double totals
// Every GEMM reads the transposes in place (transpose flags), none is copied.
#include "recurrent_kernels.hpp"

#include "../core/packed_gemm.hpp"

#include <algorithm>

#include "tapegrad/core/batch_invariant.hpp"
#include "tapegrad/core/blas.hpp"

namespace tapegrad::detail {

template <class T>
void fill_bias_rows(T* P, const T* b1, const T* b2, std::size_t rows, std::size_t G) {
  if (rows == 0) return;
  for (std::size_t j = 0; j < G; ++j) P[j] = (b1 ? b1[j] : T(0)) + (b2 ? b2[j] : T(0));
  for (std::size_t row = 1; row < rows; ++row) std::copy(P, P + G, P + row * G);
}

template <class T>
void gemm_nt_add(std::size_t M, std::size_t N, std::size_t K, const T* A, const T* B, T* C) {
  if (batch_invariant()) {
    own_gemm(false, true, M, N, K, T(1), A, K, B, K, T(1), C, N);
  } else {
    gemm<T>(false, true, M, N, K, T(1), A, K, B, K, T(1), C, N);
  }
}

template <class T>
void seq_backward_x(T* dX, T beta, const T* dA, const T* W_ih, std::size_t rows, std::size_t I,
                    std::size_t G) {
  gemm<T>(false, false, rows, I, G, T(1), dA, G, W_ih, I, beta, dX, I);
}

template <class T>
void seq_backward_w_ih(T* dW_ih, T beta, const T* dA, const T* X, std::size_t rows, std::size_t I,
                       std::size_t G) {
  gemm<T>(true, false, G, I, rows, T(1), dA, G, X, I, beta, dW_ih, I);
}

template <class T>
void seq_backward_w_hh(T* dW_hh, T beta, const T* dA, const T* Y, const T* h0, const SeqDims& d,
                       std::size_t G) {
  const std::size_t H = d.H;
  if (d.seq_len > 1) {
    // Forward: dA rows of steps 1.. pair with Y rows 0..; reverse: dA rows 0.. with Y rows 1..
    const T* dA_paired = d.reverse ? dA : dA + d.N * G;
    const T* prev = d.reverse ? Y + d.N * H : Y;
    gemm<T>(true, false, G, H, (d.seq_len - 1) * d.N, T(1), dA_paired, G, prev, H, beta, dW_hh, H);
    beta = T(1);
  }
  if (h0) {
    gemm<T>(true, false, G, H, d.N, T(1), dA + d.time(0) * d.N * G, G, h0, H, beta, dW_hh, H);
    beta = T(1);
  }
  if (beta == T(0)) std::fill(dW_hh, dW_hh + G * H, T(0));  // seq_len = 1 without h0: dW_hh = 0
}

template <class T>
void seq_backward_h0(T* dh0, const T* dA, const T* W_hh, const SeqDims& d, std::size_t G) {
  gemm<T>(false, false, d.N, d.H, G, T(1), dA + d.time(0) * d.N * G, G, W_hh, d.H, T(1), dh0, d.H);
}

template <class T>
void seq_backward_bias(T* db_ih, T* db_hh, const T* dA, std::size_t rows, std::size_t cols, std::size_t ld) {
  // Blocks of kCols columns; in each, partial sums of kRows rows in T (vectorized across the
  // columns), added into double totals.
  constexpr std::size_t kCols = 128, kRows = 32;
  for (std::size_t j0 = 0; j0 < cols; j0 += kCols) {
    const std::size_t nb = std::min(kCols, cols - j0);
    double total[kCols] = {};
    for (std::size_t r0 = 0; r0 < rows; r0 += kRows) {
      T part[kCols] = {};
      for (std::size_t row = r0, end = std::min(rows, r0 + kRows); row < end; ++row) {
        const T* a = dA + row * ld + j0;
        for (std::size_t j = 0; j < nb; ++j) part[j] += a[j];
      }
      for (std::size_t j = 0; j < nb; ++j) total[j] += static_cast<double>(part[j]);
    }
    for (T* db : {db_ih, db_hh}) {
      if (!db) continue;
      T* gb = db + j0;
      for (std::size_t j = 0; j < nb; ++j) gb[j] += static_cast<T>(total[j]);
    }
  }
}

#define TAPEGRAD_SEQ_KERNELS(T)                                                                      \
  template void fill_bias_rows(T*, const T*, const T*, std::size_t, std::size_t);                    \
  template void gemm_nt_add(std::size_t, std::size_t, std::size_t, const T*, const T*, T*);          \
  template void seq_backward_x(T*, T, const T*, const T*, std::size_t, std::size_t, std::size_t);    \
  template void seq_backward_w_ih(T*, T, const T*, const T*, std::size_t, std::size_t, std::size_t); \
  template void seq_backward_w_hh(T*, T, const T*, const T*, const T*, const SeqDims&, std::size_t); \
  template void seq_backward_h0(T*, const T*, const T*, const SeqDims&, std::size_t);                \
  template void seq_backward_bias(T*, T*, const T*, std::size_t, std::size_t, std::size_t);
TAPEGRAD_SEQ_KERNELS(float)
TAPEGRAD_SEQ_KERNELS(double)
#undef TAPEGRAD_SEQ_KERNELS

}  // namespace tapegrad::detail
