#pragma once
// Internal to lib/ops: the Elman RNN layer's forward and backward (BPTT) over raw buffers, as
// plain functions in the manner of llm.c. rnn_layer (rnn.cpp) validates, records and calls
// these; the math is written above the kernels in rnn_kernels.cpp. Instantiated for float and
// double.
//
// Buffers are row-major, time-major:
//   X (seq_len, N, I), h0 (N, H), W_ih (H, I), W_hh (H, H), b_ih (H), b_hh (H)
//   Y, G = dL/dY, dA = dL/da (seq_len, N, H): the states, their upstream gradient, and the
//   gradient w.r.t. the pre-activations a_t
// A gradient kernel's `beta` is BLAS's: 0 overwrites the buffer (its first write in this
// backward pass, see BackwardCtx::input_grad_write), 1 adds into it.
#include <cstddef>

#include "tapegrad/ops/rnn.hpp"

namespace tapegrad::detail {

// Y = every hidden state. h0, b_ih, b_hh may be null (zeros).
template <class T>
void rnn_forward(T* Y, const T* X, const T* h0, const T* W_ih, const T* W_hh, const T* b_ih, const T* b_hh,
                 std::size_t seq_len, std::size_t N, std::size_t I, std::size_t H, RNNActivation act);

// dA from G and Y, the reverse sweep through time.
template <class T>
void rnn_backward_steps(T* dA, const T* G, const T* Y, const T* W_hh, std::size_t seq_len, std::size_t N,
                        std::size_t H, RNNActivation act);

// dX = dA W_ih + beta dX.
template <class T>
void rnn_backward_x(T* dX, T beta, const T* dA, const T* W_ih, std::size_t seq_len, std::size_t N,
                    std::size_t I, std::size_t H);

// dW_ih = dA^T X + beta dW_ih.
template <class T>
void rnn_backward_w_ih(T* dW_ih, T beta, const T* dA, const T* X, std::size_t seq_len, std::size_t N,
                       std::size_t I, std::size_t H);

// dW_hh = Σ_t dA_t^T h_{t-1} + beta dW_hh, h_{-1} = h0 (null: zeros).
template <class T>
void rnn_backward_w_hh(T* dW_hh, T beta, const T* dA, const T* Y, const T* h0, std::size_t seq_len,
                       std::size_t N, std::size_t H);

// dh0 += dA_0 W_hh.
template <class T>
void rnn_backward_h0(T* dh0, const T* dA, const T* W_hh, std::size_t N, std::size_t H);

// db_ih += Σ_{t,n} dA_t[n], and db_hh += the same; either may be null.
template <class T>
void rnn_backward_bias(T* db_ih, T* db_hh, const T* dA, std::size_t seq_len, std::size_t N, std::size_t H);

}  // namespace tapegrad::detail
