#pragma once
// The fused LSTM layer: one LSTM layer (one direction) over a whole sequence is ONE tape node,
// as rnn_layer is for the Elman RNN (ops/rnn.hpp). Forward computes the input projection of
// every time step with one GEMM, then one (N, H) x (H, 4H) GEMM per step (W_hh read through a
// transpose flag) and the gate nonlinearities over all units at once; the gates and cell
// states are saved for backward, which is back-propagation through time in one reverse loop
// followed by one GEMM each for dX, dW_ih and dW_hh. The LSTM module (nn/lstm.hpp) stacks
// layers of it; LSTMCell calls it with T = 1.
#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// lstm_layer: PyTorch 1.13's LSTM (torch.nn.LSTM, gate order i, f, g, o). For t = 0 .. T-1
// (or t = T-1 .. 0 with `reverse`, the backward direction of a bidirectional layer, reading x
// in place: no reversed copy):
//   [a_i a_f a_g a_o] = x_t W_ih^T + b_ih + h_prev W_hh^T + b_hh        (N, 4H), in this order
//   i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)
//   c_t = f ⊙ c_prev + i ⊙ g,   h_t = o ⊙ tanh(c_t)
// where h_prev, c_prev are the states of the step processed before t (h0, c0 for the first),
// with
//   x      (T, N, I)   the sequence, time-major
//   h0, c0 (N, H)      the initial states, each an undefined Var for zeros
//   W_ih (4H, I), W_hh (4H, H)
//   b_ih (4H), b_hh (4H)   each may be an undefined Var (no bias; torch's bias = false)
//
// The result is ONE Var of shape (T + 1, N, H):
//   rows 0 .. T-1   h_0 .. h_{T-1}, each at its time index (also with reverse)
//   row T           c_n, the cell state after the last step processed (c_{T-1}, or c_0 with
//                   reverse)
// A tape node has one output, and c_n needs a gradient path of its own (a loss on LSTM's c_n);
// keeping it as an extra row gives it one without a second node or a copy of the cell states.
// split_lstm_layer() below takes the rows apart (output, h_n, c_n), as the modules do.
//
// For float, σ and tanh are vectorized rational approximations (σ(a) = (1 + tanh(a/2)) / 2,
// tanh within 6 ulp of the exact value, lib/ops/fast_math.hpp); double uses std::tanh and
// 1 / (1 + exp(-a)). In batch-invariant mode (core/batch_invariant.hpp) the forward GEMMs use
// the fixed-order kernels, so one sequence's states do not depend on the rest of the batch.
//
// Throws (tape unchanged) StateError for a stale, empty or foreign input, naming its position;
// ShapeError naming the shapes when x is not 3-D, W_ih is not 2-D with a multiple of 4 rows or
// not (4H, I) for x's I, W_hh is not (4H, H), h0 or c0 is not (N, H) or a bias is not (4H);
// ValueError for T = 0.
template <class T>
Var<T> lstm_layer(const Var<T>& x, const Var<T>& h0, const Var<T>& c0, const Var<T>& W_ih, const Var<T>& W_hh,
                  const Var<T>& b_ih, const Var<T>& b_hh, bool reverse = false);

// The parts of lstm_layer's result y (T + 1, N, H), each its own Var (a copy, with a gradient
// path into y):
//   output  y[0:T]                    (T, N, H)
//   h_n     y[T-1], or y[0] with reverse   (N, H)
//   c_n     y[T]                      (N, H)
// Throws ShapeError unless y is 3-D with at least 2 rows.
template <class T>
struct LSTMLayerParts {
  Var<T> output;
  Var<T> h_n;
  Var<T> c_n;
};
template <class T>
LSTMLayerParts<T> split_lstm_layer(const Var<T>& y, bool reverse = false);

}  // namespace tapegrad
