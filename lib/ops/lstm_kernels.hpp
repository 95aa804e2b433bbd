#pragma once
// Internal to lib/ops: the LSTM layer's forward and back-propagation through time over raw
// buffers. lstm_layer (lstm.cpp) validates, records and calls these and the gradient GEMMs of
// recurrent_kernels.hpp; the math is written above the kernels in lstm_kernels.cpp.
// Instantiated for float and double.
//
// Buffers are row-major, time-major, each step at its time index (also in reverse):
//   X (seq_len, N, I), h0 (N, H), c0 (N, H), W_ih (4H, I), W_hh (4H, H), b_ih (4H), b_hh (4H)
//   Y (seq_len + 1, N, H): h_0 .. h_{T-1}, then c_n; G = dL/dY of the same shape
//   S (seq_len, N, 4H): the gates i, f, g, o after their nonlinearity (saved)
//   C, TC (seq_len, N, H): the cell states c_t and tanh(c_t) (saved)
//   dS (seq_len, N, 4H): dL/d(the gates' pre-activations)
#include <cstddef>

#include "recurrent_kernels.hpp"

namespace tapegrad::detail {

// Fills Y, S, C and TC. h0, c0, b_ih, b_hh may be null (zeros).
template <class T>
void lstm_forward(T* Y, T* S, T* C, T* TC, const T* X, const T* h0, const T* c0, const T* W_ih, const T* W_hh,
                  const T* b_ih, const T* b_hh, const SeqDims& d);

// dS from G and the saved S, C, TC: the reverse sweep through the steps. dc (N, H) is left
// holding dL/dc0; dh (N, H) is scratch. c0 may be null.
template <class T>
void lstm_backward_steps(T* dS, T* dc, T* dh, const T* G, const T* S, const T* C, const T* TC, const T* c0,
                         const T* W_hh, const SeqDims& d);

}  // namespace tapegrad::detail
