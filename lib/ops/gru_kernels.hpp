#pragma once
// Internal to lib/ops: the GRU layer's forward and back-propagation through time over raw
// buffers. gru_layer (gru.cpp) validates, records and calls these and the gradient GEMMs of
// recurrent_kernels.hpp; the math is written above the kernels in gru_kernels.cpp.
// Instantiated for float and double.
//
// Buffers are row-major, time-major, each step at its time index (also in reverse):
//   X (seq_len, N, I), h0 (N, H), W_ih (3H, I), W_hh (3H, H), b_ih (3H), b_hh (3H)
//   Y, G = dL/dY (seq_len, N, H): the states and their upstream gradient
//   S (seq_len, N, 3H): the gates r, z, n (saved)
//   Qn (seq_len, N, H): q_n = h_prev W_hn^T + b_hn, the recurrent part of the candidate (saved)
//   Q (N, 3H): scratch for one step's h_prev W_hh^T + b_hh
//   dP, dQ (seq_len, N, 3H): dL/d(x_t W_ih^T + b_ih) and dL/d(h_prev W_hh^T + b_hh)
#include <cstddef>

#include "recurrent_kernels.hpp"

namespace tapegrad::detail {

// Fills Y, S and Qn. h0, b_ih, b_hh may be null (zeros).
template <class T>
void gru_forward(T* Y, T* S, T* Qn, T* Q, const T* X, const T* h0, const T* W_ih, const T* W_hh,
                 const T* b_ih, const T* b_hh, const SeqDims& d);

// dP and dQ from G and the saved S, Qn, the reverse sweep through the steps. dh (N, H) is left
// holding the part of dL/dh0 that does not go through W_hh (dL/dh0 = dh + dQ_first W_hh).
// h0 may be null.
template <class T>
void gru_backward_steps(T* dP, T* dQ, T* dh, const T* G, const T* Y, const T* S, const T* Qn, const T* h0,
                        const T* W_hh, const SeqDims& d);

}  // namespace tapegrad::detail
