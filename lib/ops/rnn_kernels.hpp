#pragma once
// Internal to lib/ops: the Elman RNN layer's forward and back-propagation through time over raw
// buffers, as plain functions in the manner of llm.c. rnn_layer (rnn.cpp) validates, records
// and calls these and the gradient GEMMs of recurrent_kernels.hpp; the math is written above
// the kernels in rnn_kernels.cpp. Instantiated for float and double.
//
// Buffers are row-major, time-major (G = H columns in recurrent_kernels.hpp's terms):
//   X (seq_len, N, I), h0 (N, H), W_ih (H, I), W_hh (H, H), b_ih (H), b_hh (H)
//   Y, G = dL/dY, dA = dL/da (seq_len, N, H): the states, their upstream gradient, and the
//   gradient w.r.t. the pre-activations a_t, each at its time index (also in reverse)
#include <cstddef>

#include "tapegrad/ops/rnn.hpp"

#include "recurrent_kernels.hpp"

namespace tapegrad::detail {

// Y = every hidden state. h0, b_ih, b_hh may be null (zeros).
template <class T>
void rnn_forward(T* Y, const T* X, const T* h0, const T* W_ih, const T* W_hh, const T* b_ih, const T* b_hh,
                 const SeqDims& d, RNNActivation act);

// dA from G and Y, the reverse sweep through the steps.
template <class T>
void rnn_backward_steps(T* dA, const T* G, const T* Y, const T* W_hh, const SeqDims& d, RNNActivation act);

}  // namespace tapegrad::detail
