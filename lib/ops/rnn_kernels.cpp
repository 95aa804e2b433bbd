// The Elman RNN kernels: forward and backward (BPTT) over raw buffers, declared in
// rnn_kernels.hpp.
#include "rnn_kernels.hpp"
#include "step_gemm.hpp"

#include <algorithm>

#include "tapegrad/core/blas.hpp"

#include "fast_math.hpp"

namespace tapegrad::detail {

namespace {

// act(a) in place, and the derivative written from the output alone:
//   tanh: h = tanh(a),  dh/da = 1 - h^2
//   relu: h = max(a, 0), dh/da = 1 if h > 0 else 0   (relu'(0) = 0, as PyTorch)
// Double uses std::tanh (the PyTorch fixtures are matched to 1e-10); float the rational form.
template <class T>
void activate(RNNActivation act, T* a, std::size_t n) {
  if (act == RNNActivation::Tanh) {
    tanh_kernel(a, a, n);  // float: the rational form, SSE2/AVX2 clones
  } else {
    for (std::size_t i = 0; i < n; ++i) a[i] = a[i] > T(0) ? a[i] : T(0);
  }
}

template <class T>
void times_derivative(RNNActivation act, const T* h, T* d, std::size_t n) {
  if (act == RNNActivation::Tanh) {
    for (std::size_t i = 0; i < n; ++i) d[i] *= T(1) - h[i] * h[i];
  } else {
    for (std::size_t i = 0; i < n; ++i) d[i] = h[i] > T(0) ? d[i] : T(0);
  }
}

}  // namespace

// ---- forward -------------------------------------------------------------------------------
// With P the input projection of all steps at once (one GEMM over T*N rows):
//   P   = X W_ih^T + b_ih + b_hh                     X viewed as (T*N, I), P as (T, N, H)
//   a_t = P_t + h_prev W_hh^T                        one (N, H) x (H, H) GEMM per step
//   h_t = act(a_t)                                   written over a_t in Y
// for t = 0 .. T-1 (T-1 .. 0 with reverse), h_prev the state of the step before (h0 first).
// Y = (h_0 .. h_{T-1}) is all backward needs: act'(a_t) is a function of h_t.
template <class T>
void rnn_forward(T* Y, const T* X, const T* h0, const T* W_ih, const T* W_hh, const T* b_ih, const T* b_hh,
                 const SeqDims& d, RNNActivation act) {
  const std::size_t NH = d.N * d.H;
  fill_bias_rows(Y, b_ih, b_hh, d.rows(), d.H);  // P = bias rows, then += X W_ih^T
  gemm_nt_add<T>(d.rows(), d.H, d.I, X, W_ih, Y);

  const T* h_prev = h0;  // null: zeros, so the first step adds nothing
  const auto recurrent = StepGemm<T>::forward(W_hh, d.H, d.H, d.N, h0 ? d.seq_len : d.seq_len - 1);
  for (std::size_t s = 0; s < d.seq_len; ++s) {
    T* a = Y + d.time(s) * NH;
    if (h_prev) recurrent.add(h_prev, a);
    activate(act, a, NH);
    h_prev = a;
  }
}

// ---- backward (BPTT) -----------------------------------------------------------------------
// With G_t = dL/dh_t from the output's consumers, over the steps in reverse processing order:
//   dA_t = (G_t + dA_next W_hh) ⊙ act'(h_t)         dA_next: the step processed after t
//                                                    (none for the last one processed)
// The gradients of X, W_ih, W_hh, h0 and the biases follow from dA (recurrent_kernels.cpp).
template <class T>
void rnn_backward_steps(T* dA, const T* G, const T* Y, const T* W_hh, const SeqDims& d, RNNActivation act) {
  const std::size_t NH = d.N * d.H;
  const auto recurrent = StepGemm<T>::backward(W_hh, d.H, d.H, d.N, d.seq_len - 1);
  for (std::size_t s = d.seq_len; s-- > 0;) {
    const std::size_t t = d.time(s);
    T* a = dA + t * NH;
    std::copy(G + t * NH, G + (t + 1) * NH, a);
    if (s + 1 < d.seq_len) recurrent.add(dA + d.time(s + 1) * NH, a);
    times_derivative(act, Y + t * NH, a, NH);
  }
}

#define TAPEGRAD_RNN_KERNELS(T)                                                                             \
  template void rnn_forward(T*, const T*, const T*, const T*, const T*, const T*, const T*, const SeqDims&, \
                            RNNActivation);                                                                 \
  template void rnn_backward_steps(T*, const T*, const T*, const T*, const SeqDims&, RNNActivation);
TAPEGRAD_RNN_KERNELS(float)
TAPEGRAD_RNN_KERNELS(double)
#undef TAPEGRAD_RNN_KERNELS

}  // namespace tapegrad::detail
