#pragma once
// The fused recurrent op: one Elman RNN layer over a whole sequence is ONE tape node, so the
// tape holds one node per layer instead of several per time step. Forward computes the input projection of every time step with one
// GEMM and then one GEMM per step for the recurrence; backward is back-propagation through
// time in one reverse loop. The RNN module (nn/rnn.hpp) stacks layers of it.
#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// The nonlinearity of an Elman RNN (torch.nn.RNN's `nonlinearity`).
enum class RNNActivation { Tanh, ReLU };

// rnn_layer: for t = 0 .. T-1,
//   h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh),   h_{-1} = h0,
// or, with `reverse` (the backward direction of a bidirectional layer), for t = T-1 .. 0,
//   h_t = act(x_t W_ih^T + b_ih + h_{t+1} W_hh^T + b_hh),   h_T = h0,
// reading x in place (no reversed copy), with
//   x    (T, N, I)   the sequence, time-major
//   h0   (N, H)      the initial state, or an undefined Var for zeros
//   W_ih (H, I), W_hh (H, H)
//   b_ih (H), b_hh (H)   each may be an undefined Var (no bias; torch's bias = false)
// Returns every hidden state, (T, N, H), at its time index; the last state is its slice T-1
// (slice 0 with reverse).
// For float, tanh is a vectorized rational approximation within 6 ulp of the exact value
// (glibc's tanhf, which PyTorch's scalar path matches, is within 1 ulp; see lib/ops/rnn_kernels.cpp);
// double uses std::tanh.
// In batch-invariant mode (core/batch_invariant.hpp) the forward GEMMs use the fixed-order
// kernels, so one sequence's states do not depend on the rest of the batch.
//
// Throws (tape unchanged) ShapeError naming the shapes when x is not 3-D, W_ih is not (H, I)
// for x's I, W_hh is not (H, H), h0 is not (N, H) or a bias is not (H); ValueError for T = 0.
template <class T>
Var<T> rnn_layer(const Var<T>& x, const Var<T>& h0, const Var<T>& W_ih, const Var<T>& W_hh,
                 const Var<T>& b_ih, const Var<T>& b_hh, RNNActivation activation = RNNActivation::Tanh,
                 bool reverse = false);

}  // namespace tapegrad
