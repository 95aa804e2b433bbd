// The GRU kernels: forward and back-propagation through time over raw buffers, declared in
// gru_kernels.hpp. Gate order r, z, n (PyTorch's), b_hn inside the reset product.
#include "gru_kernels.hpp"
#include "step_gemm.hpp"

#include <algorithm>

#include "tapegrad/core/blas.hpp"

#include "gate_math.hpp"

namespace tapegrad::detail {

// ---- one step, elementwise -----------------------------------------------------------------
// Forward, for every row and unit, from p = x_t W_ih^T + b_ih and q = h_prev W_hh^T + b_hh:
//   r = σ(p_r + q_r),  z = σ(p_z + q_z),  n = tanh(p_n + r q_n)
//   h = (h_prev - n) z + n                     = (1 - z) n + z h_prev, as ATen computes it
// r, z, n are written over p (the saved gates); q_n is saved. h_prev null: zeros.
// Backward, with dh = dL/dh_t (from above, plus what the next step sent through z):
//   d p_n = d q_n / r = dh (1 - z) (1 - n^2)
//   d p_z = d q_z = dh (h_prev - n) z (1 - z)
//   d p_r = d q_r = d p_n q_n r (1 - r)
//   d q_n = d p_n r
//   dh  <- dh z                                dL/dh_prev except the part through W_hh
// One row's H units. The blocks of a row and the rows of the other buffers never overlap:
// restrict lets the loop vectorize without a run-time overlap check per pair of streams.
template <class T, bool kPrev>
TAPEGRAD_ALWAYS_INLINE void gru_row_forward(T* __restrict pr, T* __restrict pz, T* __restrict pn,
                                            T* __restrict qn_saved, T* __restrict h, const T* __restrict qr,
                                            const T* __restrict qz, const T* __restrict qn,
                                            const T* __restrict h_prev, std::size_t H) {
  for (std::size_t j = 0; j < H; ++j) {
    const T r = gate_sigmoid(pr[j] + qr[j]), z = gate_sigmoid(pz[j] + qz[j]);
    const T c = gate_tanh(pn[j] + r * qn[j]);
    pr[j] = r, pz[j] = z, pn[j] = c, qn_saved[j] = qn[j];
    h[j] = kPrev ? (h_prev[j] - c) * z + c : c - c * z;
  }
}

template <class T, bool kPrev>
TAPEGRAD_ALWAYS_INLINE void gru_rows_forward(T* p, T* qn_saved, T* h, const T* q, const T* h_prev,
                                             std::size_t N, std::size_t H) {
  for (std::size_t n = 0; n < N; ++n) {
    T* pr = p + n * 3 * H;
    const T* qr = q + n * 3 * H;
    gru_row_forward<T, kPrev>(pr, pr + H, pr + 2 * H, qn_saved + n * H, h + n * H, qr, qr + H, qr + 2 * H,
                              kPrev ? h_prev + n * H : nullptr, H);
  }
}

template <class T, bool kPrev>
TAPEGRAD_ALWAYS_INLINE void gru_row_backward(T* __restrict dpr, T* __restrict dpz, T* __restrict dpn,
                                             T* __restrict dqr, T* __restrict dqz, T* __restrict dqn,
                                             T* __restrict dh, const T* __restrict g, const T* __restrict sr,
                                             const T* __restrict sz, const T* __restrict sn,
                                             const T* __restrict qn, const T* __restrict h_prev,
                                             std::size_t H) {
  for (std::size_t j = 0; j < H; ++j) {
    const T r = sr[j], z = sz[j], c = sn[j], d_h = dh[j] + g[j];
    const T d_n = d_h * (T(1) - z) * (T(1) - c * c);
    const T d_z = d_h * ((kPrev ? h_prev[j] : T(0)) - c) * z * (T(1) - z);
    const T d_r = d_n * qn[j] * r * (T(1) - r);
    dpr[j] = d_r, dpz[j] = d_z, dpn[j] = d_n;
    dqr[j] = d_r, dqz[j] = d_z, dqn[j] = d_n * r;
    dh[j] = d_h * z;
  }
}

template <class T, bool kPrev>
TAPEGRAD_ALWAYS_INLINE void gru_rows_backward(T* dp, T* dq, T* dh, const T* g, const T* s, const T* qn,
                                              const T* h_prev, std::size_t N, std::size_t H) {
  for (std::size_t n = 0; n < N; ++n) {
    T *a = dp + n * 3 * H, *b = dq + n * 3 * H;
    const T* sr = s + n * 3 * H;
    gru_row_backward<T, kPrev>(a, a + H, a + 2 * H, b, b + H, b + 2 * H, dh + n * H, g + n * H, sr, sr + H,
                               sr + 2 * H, qn + n * H, kPrev ? h_prev + n * H : nullptr, H);
  }
}

// The float loops in SIMD clones (lib/core/simd.hpp; the file is compiled without FMA
// contraction, so every clone computes the same bits), the double ones plain.
TAPEGRAD_SIMD_CLONES_512 void gru_step_forward(float* p, float* qn_saved, float* h, const float* q,
                                               const float* h_prev, std::size_t N, std::size_t H) {
  if (h_prev) {
    gru_rows_forward<float, true>(p, qn_saved, h, q, h_prev, N, H);
  } else {
    gru_rows_forward<float, false>(p, qn_saved, h, q, h_prev, N, H);
  }
}
void gru_step_forward(double* p, double* qn_saved, double* h, const double* q, const double* h_prev,
                      std::size_t N, std::size_t H) {
  if (h_prev) {
    gru_rows_forward<double, true>(p, qn_saved, h, q, h_prev, N, H);
  } else {
    gru_rows_forward<double, false>(p, qn_saved, h, q, h_prev, N, H);
  }
}
TAPEGRAD_SIMD_CLONES_512 void gru_step_backward(float* dp, float* dq, float* dh, const float* g,
                                                const float* s, const float* qn, const float* h_prev,
                                                std::size_t N, std::size_t H) {
  if (h_prev) {
    gru_rows_backward<float, true>(dp, dq, dh, g, s, qn, h_prev, N, H);
  } else {
    gru_rows_backward<float, false>(dp, dq, dh, g, s, qn, h_prev, N, H);
  }
}
void gru_step_backward(double* dp, double* dq, double* dh, const double* g, const double* s, const double* qn,
                       const double* h_prev, std::size_t N, std::size_t H) {
  if (h_prev) {
    gru_rows_backward<double, true>(dp, dq, dh, g, s, qn, h_prev, N, H);
  } else {
    gru_rows_backward<double, false>(dp, dq, dh, g, s, qn, h_prev, N, H);
  }
}

// ---- forward -------------------------------------------------------------------------------
//   P = X W_ih^T + b_ih                               one GEMM over T*N rows, into S
//   Q = h_prev W_hh^T + b_hh                          one (N, H) x (H, 3H) GEMM per step
// then the step above; the steps run t = 0 .. T-1 (T-1 .. 0 with reverse), h_prev being the
// state of the step before (h0 for the first).
template <class T>
void gru_forward(T* Y, T* S, T* Qn, T* Q, const T* X, const T* h0, const T* W_ih, const T* W_hh,
                 const T* b_ih, const T* b_hh, const SeqDims& d) {
  const std::size_t NH = d.N * d.H, G = 3 * d.H;
  fill_bias_rows(S, b_ih, static_cast<const T*>(nullptr), d.rows(), G);
  gemm_nt_add<T>(d.rows(), G, d.I, X, W_ih, S);
  const T* h_prev = h0;  // null: zeros, so the first step's Q is the bias alone
  const auto recurrent = StepGemm<T>::forward(W_hh, G, d.H, d.N, h0 ? d.seq_len : d.seq_len - 1);
  for (std::size_t s = 0; s < d.seq_len; ++s) {
    const std::size_t t = d.time(s);
    fill_bias_rows(Q, b_hh, static_cast<const T*>(nullptr), d.N, G);
    if (h_prev) recurrent.add(h_prev, Q);
    gru_step_forward(S + t * d.N * G, Qn + t * NH, Y + t * NH, Q, h_prev, d.N, d.H);
    h_prev = Y + t * NH;
  }
}

// ---- backward (BPTT) -----------------------------------------------------------------------
// Over the steps in reverse processing order, dh starting at 0:
//   dh += dQ_next W_hh                                dQ_next: the step processed after t
// then the step above (which adds G_t to dh first). The gradients of X, W_ih (from dP), W_hh
// (from dQ), h0 and the biases follow (recurrent_kernels.cpp).
template <class T>
void gru_backward_steps(T* dP, T* dQ, T* dh, const T* G, const T* Y, const T* S, const T* Qn, const T* h0,
                        const T* W_hh, const SeqDims& d) {
  const std::size_t NH = d.N * d.H, G3 = 3 * d.H, NG = d.N * G3;
  std::fill(dh, dh + NH, T(0));
  const auto recurrent = StepGemm<T>::backward(W_hh, G3, d.H, d.N, d.seq_len - 1);
  for (std::size_t s = d.seq_len; s-- > 0;) {
    const std::size_t t = d.time(s);
    if (s + 1 < d.seq_len) recurrent.add(dQ + d.time(s + 1) * NG, dh);
    const T* h_prev = s > 0 ? Y + d.time(s - 1) * NH : h0;
    gru_step_backward(dP + t * NG, dQ + t * NG, dh, G + t * NH, S + t * NG, Qn + t * NH, h_prev, d.N, d.H);
  }
}

#define TAPEGRAD_GRU_KERNELS(T)                                                                            \
  template void gru_forward(T*, T*, T*, T*, const T*, const T*, const T*, const T*, const T*, const T*,    \
                            const SeqDims&);                                                               \
  template void gru_backward_steps(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, const T*, \
                                   const SeqDims&);
TAPEGRAD_GRU_KERNELS(float)
TAPEGRAD_GRU_KERNELS(double)
#undef TAPEGRAD_GRU_KERNELS

}  // namespace tapegrad::detail
