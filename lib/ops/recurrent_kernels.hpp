#pragma once
// Internal to lib/ops: what the fused recurrent layers (rnn_layer, lstm_layer, gru_layer)
// share: their sizes and direction, the forward GEMM, and the gradient GEMMs that read the
// per-step gradients of all steps at once. The per-layer math is in rnn_kernels.cpp,
// lstm_kernels.cpp and gru_kernels.cpp; these are its common ends. Instantiated for float and
// double.
//
// Buffers are row-major, time-major. G is the number of pre-activation columns of a layer (H
// for the Elman RNN, 3H for the GRU, 4H for the LSTM):
//   X (seq_len, N, I), W_ih (G, I), W_hh (G, H), h0 (N, H)
//   Y (seq_len, N, H) the hidden states h_t, at their time index t (also in reverse)
//   dA (seq_len, N, G) the gradient w.r.t. the pre-activations that multiply W_ih (or W_hh)
// A gradient kernel's `beta` is BLAS's: 0 overwrites the buffer (its first write in this
// backward pass, see BackwardCtx::input_grad_write), 1 adds into it.
#include <cstddef>

namespace tapegrad::detail {

// The sizes of one recurrent layer over a sequence and its direction. With `reverse` the
// steps are processed from t = seq_len - 1 down to 0 (the backward direction of a
// bidirectional layer): step s of the recurrence is time index time(s).
struct SeqDims {
  std::size_t seq_len = 0, N = 0, I = 0, H = 0;
  bool reverse = false;
  std::size_t time(std::size_t s) const { return reverse ? seq_len - 1 - s : s; }
  std::size_t rows() const { return seq_len * N; }
};

// Every row of P (rows, G) = b1 + b2 (either may be null: zeros).
template <class T>
void fill_bias_rows(T* P, const T* b1, const T* b2, std::size_t rows, std::size_t G);

// C (M, N) += A (M, K) B^T, B of shape (N, K): BLAS, or the fixed-order kernel in
// batch-invariant mode (the forward GEMMs of every recurrent layer).
template <class T>
void gemm_nt_add(std::size_t M, std::size_t N, std::size_t K, const T* A, const T* B, T* C);

// dX = dA W_ih + beta dX, over all rows at once.
template <class T>
void seq_backward_x(T* dX, T beta, const T* dA, const T* W_ih, std::size_t rows, std::size_t I,
                    std::size_t G);

// dW_ih = dA^T X + beta dW_ih, over all rows at once.
template <class T>
void seq_backward_w_ih(T* dW_ih, T beta, const T* dA, const T* X, std::size_t rows, std::size_t I,
                       std::size_t G);

// dW_hh = Σ_t dA_t^T h_prev(t) + beta dW_hh, where h_prev(t) is the state of the step processed
// before t (Y's row t-1, or t+1 with reverse) and h0 (null: zeros) for the first step: one GEMM
// over the seq_len - 1 paired rows of dA and Y, plus one for h0.
template <class T>
void seq_backward_w_hh(T* dW_hh, T beta, const T* dA, const T* Y, const T* h0, const SeqDims& d,
                       std::size_t G);

// dh0 += dA_first W_hh, dA_first = the rows of the step processed first.
template <class T>
void seq_backward_h0(T* dh0, const T* dA, const T* W_hh, const SeqDims& d, std::size_t G);

// db_ih += Σ_rows dA[row], and db_hh += the same, over `cols` columns of dA (rows, ld); either
// may be null. Partial sums of 32 rows in T, totals in double.
template <class T>
void seq_backward_bias(T* db_ih, T* db_hh, const T* dA, std::size_t rows, std::size_t cols, std::size_t ld);

}  // namespace tapegrad::detail
