// The Elman RNN kernels: forward and backward (BPTT) over raw buffers, declared in
// rnn_kernels.hpp.
#include "rnn_kernels.hpp"

#include <algorithm>

#include "tapegrad/core/batch_invariant.hpp"
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

// C (M, N) += A (M, K) B^T, B of shape (N, K): BLAS, or the fixed-order kernel in
// batch-invariant mode.
template <class T>
void gemm_nt_add(std::size_t M, std::size_t N, std::size_t K, const T* A, const T* B, T* C) {
  if (batch_invariant()) {
    invariant_gemm_nt(M, N, K, A, K, B, K, C, N);
  } else {
    gemm<T>(false, true, M, N, K, T(1), A, K, B, K, T(1), C, N);
  }
}

}  // namespace

// ---- forward -------------------------------------------------------------------------------
// With P the input projection of all steps at once (one GEMM over T*N rows):
//   P   = X W_ih^T + b_ih + b_hh                     X viewed as (T*N, I), P as (T, N, H)
//   a_t = P_t + h_{t-1} W_hh^T                       one (N, H) x (H, H) GEMM per step
//   h_t = act(a_t)                                   written over a_t in Y
// Y = (h_0 .. h_{T-1}) is all backward needs: act'(a_t) is a function of h_t.
template <class T>
void rnn_forward(T* Y, const T* X, const T* h0, const T* W_ih, const T* W_hh, const T* b_ih, const T* b_hh,
                 std::size_t seq_len, std::size_t N, std::size_t I, std::size_t H, RNNActivation act) {
  const std::size_t NH = N * H;
  // P = bias rows, then += X W_ih^T.
  if (N > 0) {
    for (std::size_t j = 0; j < H; ++j) Y[j] = (b_ih ? b_ih[j] : T(0)) + (b_hh ? b_hh[j] : T(0));
    for (std::size_t row = 1; row < seq_len * N; ++row) std::copy(Y, Y + H, Y + row * H);
  }
  gemm_nt_add<T>(seq_len * N, H, I, X, W_ih, Y);

  const T* h_prev = h0;  // null: zeros, so step 0 adds nothing
  for (std::size_t s = 0; s < seq_len; ++s) {
    T* a = Y + s * NH;
    if (h_prev) gemm_nt_add<T>(N, H, H, h_prev, W_hh, a);
    activate(act, a, NH);
    h_prev = a;
  }
}

// ---- backward (BPTT) -----------------------------------------------------------------------
// With G_t = dL/dh_t from the output's consumers:
//   dA_t = (G_t + dA_{t+1} W_hh) ⊙ act'(h_t)        for t = T-1 .. 0  (dA_T = 0)
// then, over all steps at once,
//   dL/dX    = dA W_ih                               one GEMM over T*N rows
//   dL/dW_ih = dA^T X                                one GEMM over T*N rows
//   dL/dW_hh = Σ_t dA_t^T h_{t-1}                    one GEMM over steps 1..T-1 (the previous
//                                                    states are Y shifted by one step),
//                                                    plus dA_0^T h0 when h0 is given
//   dL/dh0   = dA_0 W_hh
//   dL/db_ih = dL/db_hh = Σ_{t,n} dA_t[n]           column sums, accumulated in double
// Every GEMM reads the transposes in place (transpose flags), none is copied.
template <class T>
void rnn_backward_steps(T* dA, const T* G, const T* Y, const T* W_hh, std::size_t seq_len, std::size_t N,
                        std::size_t H, RNNActivation act) {
  const std::size_t NH = N * H;
  for (std::size_t s = seq_len; s-- > 0;) {
    T* d = dA + s * NH;
    std::copy(G + s * NH, G + (s + 1) * NH, d);
    if (s + 1 < seq_len) gemm<T>(false, false, N, H, H, T(1), d + NH, H, W_hh, H, T(1), d, H);
    times_derivative(act, Y + s * NH, d, NH);
  }
}

template <class T>
void rnn_backward_x(T* dX, T beta, const T* dA, const T* W_ih, std::size_t seq_len, std::size_t N,
                    std::size_t I, std::size_t H) {
  gemm<T>(false, false, seq_len * N, I, H, T(1), dA, H, W_ih, I, beta, dX, I);
}

template <class T>
void rnn_backward_w_ih(T* dW_ih, T beta, const T* dA, const T* X, std::size_t seq_len, std::size_t N,
                       std::size_t I, std::size_t H) {
  gemm<T>(true, false, H, I, seq_len * N, T(1), dA, H, X, I, beta, dW_ih, I);
}

template <class T>
void rnn_backward_w_hh(T* dW_hh, T beta, const T* dA, const T* Y, const T* h0, std::size_t seq_len,
                       std::size_t N, std::size_t H) {
  const std::size_t NH = N * H;
  if (seq_len > 1) {
    gemm<T>(true, false, H, H, (seq_len - 1) * N, T(1), dA + NH, H, Y, H, beta, dW_hh, H);
    beta = T(1);
  }
  if (h0) {
    gemm<T>(true, false, H, H, N, T(1), dA, H, h0, H, beta, dW_hh, H);
    beta = T(1);
  }
  if (beta == T(0)) std::fill(dW_hh, dW_hh + H * H, T(0));  // T = 1 without h0: dW_hh = 0
}

template <class T>
void rnn_backward_h0(T* dh0, const T* dA, const T* W_hh, std::size_t N, std::size_t H) {
  gemm<T>(false, false, N, H, H, T(1), dA, H, W_hh, H, T(1), dh0, H);
}

template <class T>
void rnn_backward_bias(T* db_ih, T* db_hh, const T* dA, std::size_t seq_len, std::size_t N, std::size_t H) {
  constexpr std::size_t kBlock = 64;
  for (std::size_t j0 = 0; j0 < H; j0 += kBlock) {
    const std::size_t nb = std::min(kBlock, H - j0);
    double acc[kBlock] = {};
    for (std::size_t row = 0; row < seq_len * N; ++row) {
      const T* d = dA + row * H + j0;
      for (std::size_t j = 0; j < nb; ++j) acc[j] += static_cast<double>(d[j]);
    }
    for (T* db : {db_ih, db_hh}) {
      if (!db) continue;
      T* gb = db + j0;
      for (std::size_t j = 0; j < nb; ++j) gb[j] += static_cast<T>(acc[j]);
    }
  }
}

#define TAPEGRAD_RNN_KERNELS(T)                                                                             \
  template void rnn_forward(T*, const T*, const T*, const T*, const T*, const T*, const T*, std::size_t,    \
                            std::size_t, std::size_t, std::size_t, RNNActivation);                          \
  template void rnn_backward_steps(T*, const T*, const T*, const T*, std::size_t, std::size_t, std::size_t, \
                                   RNNActivation);                                                          \
  template void rnn_backward_x(T*, T, const T*, const T*, std::size_t, std::size_t, std::size_t,            \
                               std::size_t);                                                                \
  template void rnn_backward_w_ih(T*, T, const T*, const T*, std::size_t, std::size_t, std::size_t,         \
                                  std::size_t);                                                             \
  template void rnn_backward_w_hh(T*, T, const T*, const T*, const T*, std::size_t, std::size_t,            \
                                  std::size_t);                                                             \
  template void rnn_backward_h0(T*, const T*, const T*, std::size_t, std::size_t);                          \
  template void rnn_backward_bias(T*, T*, const T*, std::size_t, std::size_t, std::size_t);
TAPEGRAD_RNN_KERNELS(float)
TAPEGRAD_RNN_KERNELS(double)
#undef TAPEGRAD_RNN_KERNELS

}  // namespace tapegrad::detail
