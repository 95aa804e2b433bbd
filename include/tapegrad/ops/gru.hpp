#pragma once
// The fused GRU layer: one GRU layer (one direction) over a whole sequence is ONE tape node, as
// rnn_layer (ops/rnn.hpp) and lstm_layer (ops/lstm.hpp) are. Forward: the input projection of
// every step in one GEMM, one (N, H) x (H, 3H) GEMM per step for the recurrent part (W_hh read
// through a transpose flag), the gates over all units at once; the gates and the recurrent part
// of the candidate are saved for backward (BPTT in one reverse loop, then one GEMM each for
// dX, dW_ih and dW_hh). The GRU module (nn/gru.hpp) stacks layers of it; GRUCell calls it with
// T = 1.
#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// gru_layer: PyTorch 1.13's GRU (torch.nn.GRU, gate order r, z, n; b_hn inside the reset
// product). For t = 0 .. T-1 (or t = T-1 .. 0 with `reverse`, the backward direction of a
// bidirectional layer, reading x in place):
//   [p_r p_z p_n] = x_t W_ih^T + b_ih                  (N, 3H)
//   [q_r q_z q_n] = h_prev W_hh^T + b_hh               (N, 3H)
//   r = σ(p_r + q_r),  z = σ(p_z + q_z),  n = tanh(p_n + r ⊙ q_n)
//   h_t = (1 - z) ⊙ n + z ⊙ h_prev
// where h_prev is the state of the step processed before t (h0 for the first), with
//   x    (T, N, I)   the sequence, time-major
//   h0   (N, H)      the initial state, or an undefined Var for zeros
//   W_ih (3H, I), W_hh (3H, H)
//   b_ih (3H), b_hh (3H)   each may be an undefined Var (no bias; torch's bias = false)
// Returns every hidden state, (T, N, H), at its time index; the last state is its slice T-1
// (slice 0 with reverse).
//
// For float, σ and tanh are vectorized rational approximations (σ(a) = (1 + tanh(a/2)) / 2,
// tanh within 6 ulp of the exact value, lib/ops/fast_math.hpp); double uses std::tanh and
// 1 / (1 + exp(-a)). In batch-invariant mode the forward GEMMs use the fixed-order kernels
// (core/batch_invariant.hpp).
//
// Throws (tape unchanged) StateError for a stale, empty or foreign input, naming its position;
// ShapeError naming the shapes when x is not 3-D, W_ih is not 2-D with a multiple of 3 rows or
// not (3H, I) for x's I, W_hh is not (3H, H), h0 is not (N, H) or a bias is not (3H);
// ValueError for T = 0.
template <class T>
Var<T> gru_layer(const Var<T>& x, const Var<T>& h0, const Var<T>& W_ih, const Var<T>& W_hh,
                 const Var<T>& b_ih, const Var<T>& b_hh, bool reverse = false);

}  // namespace tapegrad
