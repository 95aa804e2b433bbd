// The LSTM kernels: forward and back-propagation through time over raw buffers, declared in
// lstm_kernels.hpp. Gate order i, f, g, o (PyTorch's).
#include "lstm_kernels.hpp"
#include "step_gemm.hpp"

#include <algorithm>

#include "tapegrad/core/blas.hpp"

#include "gate_math.hpp"

namespace tapegrad::detail {

// ---- one step, elementwise -----------------------------------------------------------------
// Forward, for every row n and unit j, from the pre-activations a (N, 4H):
//   i = σ(a_i), f = σ(a_f), g = tanh(a_g), o = σ(a_o)      written over a (the saved gates)
//   c = f c_prev + i g,   tc = tanh(c),   h = o tc           (c_prev null: c = i g)
// Backward, with dh = dL/dh_t (from above and from the next step) and dc = dL/dc_t from the
// next step (or from c_n):
//   dc' = dc + dh o (1 - tc^2)                               the whole dL/dc_t
//   d a_i = dc' g i (1 - i),      d a_f = dc' c_prev f (1 - f)
//   d a_g = dc' i (1 - g^2),      d a_o = dh tc o (1 - o)
//   dc  <- dc' f                                             dL/dc_prev, for the step before
// One row's H units. The blocks of a row and the rows of the other buffers never overlap:
// restrict lets the loop vectorize without a run-time overlap check per pair of streams.
template <class T, bool kPrev>
TAPEGRAD_ALWAYS_INLINE void lstm_row_forward(T* __restrict ai, T* __restrict af, T* __restrict ag,
                                             T* __restrict ao, T* __restrict c, T* __restrict tc,
                                             T* __restrict h, const T* __restrict c_prev, std::size_t H) {
  for (std::size_t j = 0; j < H; ++j) {
    const T i = gate_sigmoid(ai[j]), f = gate_sigmoid(af[j]), g = gate_tanh(ag[j]), o = gate_sigmoid(ao[j]);
    const T cv = kPrev ? f * c_prev[j] + i * g : i * g;
    const T t = gate_tanh(cv);
    ai[j] = i, af[j] = f, ag[j] = g, ao[j] = o;
    c[j] = cv, tc[j] = t, h[j] = o * t;
  }
}

template <class T, bool kPrev>
TAPEGRAD_ALWAYS_INLINE void lstm_rows_forward(T* a, T* c, T* tc, T* h, const T* c_prev, std::size_t N,
                                              std::size_t H) {
  for (std::size_t n = 0; n < N; ++n) {
    T* ai = a + n * 4 * H;
    lstm_row_forward<T, kPrev>(ai, ai + H, ai + 2 * H, ai + 3 * H, c + n * H, tc + n * H, h + n * H,
                               kPrev ? c_prev + n * H : nullptr, H);
  }
}

template <class T, bool kPrev>
TAPEGRAD_ALWAYS_INLINE void lstm_row_backward(T* __restrict dsi, T* __restrict dsf, T* __restrict dsg,
                                              T* __restrict dso, T* __restrict dc, const T* __restrict dh,
                                              const T* __restrict si, const T* __restrict sf,
                                              const T* __restrict sg, const T* __restrict so,
                                              const T* __restrict tc, const T* __restrict c_prev,
                                              std::size_t H) {
  for (std::size_t j = 0; j < H; ++j) {
    const T i = si[j], f = sf[j], g = sg[j], o = so[j], t = tc[j], d_h = dh[j];
    const T d_c = dc[j] + d_h * o * (T(1) - t * t);
    dsi[j] = d_c * g * i * (T(1) - i);
    dsf[j] = kPrev ? d_c * c_prev[j] * f * (T(1) - f) : T(0);
    dsg[j] = d_c * i * (T(1) - g * g);
    dso[j] = d_h * t * o * (T(1) - o);
    dc[j] = d_c * f;
  }
}

template <class T, bool kPrev>
TAPEGRAD_ALWAYS_INLINE void lstm_rows_backward(T* ds, T* dc, const T* dh, const T* s, const T* tc,
                                               const T* c_prev, std::size_t N, std::size_t H) {
  for (std::size_t n = 0; n < N; ++n) {
    T* d = ds + n * 4 * H;
    const T* g = s + n * 4 * H;
    lstm_row_backward<T, kPrev>(d, d + H, d + 2 * H, d + 3 * H, dc + n * H, dh + n * H, g, g + H, g + 2 * H,
                                g + 3 * H, tc + n * H, kPrev ? c_prev + n * H : nullptr, H);
  }
}

// The float loops in SIMD clones (lib/core/simd.hpp; the file is compiled without FMA
// contraction, so every clone computes the same bits), the double ones plain.
TAPEGRAD_SIMD_CLONES_512 void lstm_step_forward(float* a, float* c, float* tc, float* h, const float* c_prev,
                                                std::size_t N, std::size_t H) {
  if (c_prev) {
    lstm_rows_forward<float, true>(a, c, tc, h, c_prev, N, H);
  } else {
    lstm_rows_forward<float, false>(a, c, tc, h, c_prev, N, H);
  }
}
void lstm_step_forward(double* a, double* c, double* tc, double* h, const double* c_prev, std::size_t N,
                       std::size_t H) {
  if (c_prev) {
    lstm_rows_forward<double, true>(a, c, tc, h, c_prev, N, H);
  } else {
    lstm_rows_forward<double, false>(a, c, tc, h, c_prev, N, H);
  }
}
TAPEGRAD_SIMD_CLONES_512 void lstm_step_backward(float* ds, float* dc, const float* dh, const float* s,
                                                 const float* tc, const float* c_prev, std::size_t N,
                                                 std::size_t H) {
  if (c_prev) {
    lstm_rows_backward<float, true>(ds, dc, dh, s, tc, c_prev, N, H);
  } else {
    lstm_rows_backward<float, false>(ds, dc, dh, s, tc, c_prev, N, H);
  }
}
void lstm_step_backward(double* ds, double* dc, const double* dh, const double* s, const double* tc,
                        const double* c_prev, std::size_t N, std::size_t H) {
  if (c_prev) {
    lstm_rows_backward<double, true>(ds, dc, dh, s, tc, c_prev, N, H);
  } else {
    lstm_rows_backward<double, false>(ds, dc, dh, s, tc, c_prev, N, H);
  }
}

// ---- forward -------------------------------------------------------------------------------
// With P the input projection of all steps at once (one GEMM over T*N rows, into S):
//   P   = X W_ih^T + b_ih + b_hh                     X viewed as (T*N, I), P as (T, N, 4H)
//   a_t = P_t + h_prev W_hh^T                        one (N, H) x (H, 4H) GEMM per step
// then the step above; the steps run t = 0 .. T-1 (T-1 .. 0 with reverse), h_prev and c_prev
// being the states of the step before (h0, c0 for the first). Y's last row is c_n.
template <class T>
void lstm_forward(T* Y, T* S, T* C, T* TC, const T* X, const T* h0, const T* c0, const T* W_ih, const T* W_hh,
                  const T* b_ih, const T* b_hh, const SeqDims& d) {
  const std::size_t NH = d.N * d.H, G = 4 * d.H;
  fill_bias_rows(S, b_ih, b_hh, d.rows(), G);
  gemm_nt_add<T>(d.rows(), G, d.I, X, W_ih, S);
  const T* h_prev = h0;  // null: zeros, so the first step adds nothing
  const T* c_prev = c0;
  const auto recurrent = StepGemm<T>::forward(W_hh, G, d.H, d.N, h0 ? d.seq_len : d.seq_len - 1);
  for (std::size_t s = 0; s < d.seq_len; ++s) {
    const std::size_t t = d.time(s);
    T* a = S + t * d.N * G;
    if (h_prev) recurrent.add(h_prev, a);
    lstm_step_forward(a, C + t * NH, TC + t * NH, Y + t * NH, c_prev, d.N, d.H);
    h_prev = Y + t * NH;
    c_prev = C + t * NH;
  }
  std::copy(c_prev, c_prev + NH, Y + d.seq_len * NH);
}

// ---- backward (BPTT) -----------------------------------------------------------------------
// Over the steps in reverse processing order, starting from dc = dL/dc_n (Y's last row):
//   dh = G_t + dS_next W_hh                          dS_next: the step processed after t
// then the step above, which leaves dc = dL/dc_prev; after the first step processed, dL/dc0.
// The gradients of X, W_ih, W_hh, h0 and the biases follow from dS (recurrent_kernels.cpp).
template <class T>
void lstm_backward_steps(T* dS, T* dc, T* dh, const T* G, const T* S, const T* C, const T* TC, const T* c0,
                         const T* W_hh, const SeqDims& d) {
  const std::size_t NH = d.N * d.H, G4 = 4 * d.H, NG = d.N * G4;
  std::copy(G + d.seq_len * NH, G + (d.seq_len + 1) * NH, dc);
  const auto recurrent = StepGemm<T>::backward(W_hh, G4, d.H, d.N, d.seq_len - 1);
  for (std::size_t s = d.seq_len; s-- > 0;) {
    const std::size_t t = d.time(s);
    std::copy(G + t * NH, G + (t + 1) * NH, dh);
    if (s + 1 < d.seq_len) recurrent.add(dS + d.time(s + 1) * NG, dh);
    const T* c_prev = s > 0 ? C + d.time(s - 1) * NH : c0;
    lstm_step_backward(dS + t * NG, dc, dh, S + t * NG, TC + t * NH, c_prev, d.N, d.H);
  }
}

#define TAPEGRAD_LSTM_KERNELS(T)                                                                            \
  template void lstm_forward(T*, T*, T*, T*, const T*, const T*, const T*, const T*, const T*, const T*,    \
                             const T*, const SeqDims&);                                                     \
  template void lstm_backward_steps(T*, T*, T*, const T*, const T*, const T*, const T*, const T*, const T*, \
                                    const SeqDims&);
TAPEGRAD_LSTM_KERNELS(float)
TAPEGRAD_LSTM_KERNELS(double)
#undef TAPEGRAD_LSTM_KERNELS

}  // namespace tapegrad::detail
