#include "tapegrad/ops/rnn.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "tapegrad/core/batch_invariant.hpp"
#include "tapegrad/core/blas.hpp"

#include "fast_math.hpp"

namespace tapegrad {

namespace {

// The layout of the node's ints: sizes, the activation, and where the optional inputs sit in
// the input list (-1 when absent). Inputs are {x, W_ih, W_hh} followed by those given of
// h0, b_ih, b_hh, in that order.
enum class RnnInt : std::size_t { seq_len, N, I, H, act, pos_h0, pos_bih, pos_bhh, count };

// ctx() names x's and W_ih's shapes for the message, built only to throw.
template <class Ctx>
void check_shape(const char* what, const Shape& got, const Shape& want, Ctx&& ctx) {
  if (got != want) {
    throw ShapeError("rnn_layer: " + std::string(what) + " must have shape " + shape_str(want) +
                     "; got " + shape_str(got) + " (" + ctx() + ")");
  }
}

// act(a) in place, and the derivative written from the output alone:
//   tanh: h = tanh(a),  dh/da = 1 - h^2
//   relu: h = max(a, 0), dh/da = 1 if h > 0 else 0   (relu'(0) = 0, as PyTorch)
// Double uses std::tanh (the PyTorch fixtures are matched to 1e-10); float the rational form.
template <class T>
void activate(RNNActivation act, T* a, std::size_t n) {
  if (act == RNNActivation::Tanh) {
    detail::tanh_kernel(a, a, n);  // float: the rational form, SSE2/AVX2 clones
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
    detail::invariant_gemm_nt(M, N, K, A, K, B, K, C, N);
  } else {
    gemm<T>(false, true, M, N, K, T(1), A, K, B, K, T(1), C, N);
  }
}

}  // namespace

// rnn_layer: an Elman RNN layer over the whole sequence, one node.
//
// Forward, with P the input projection of all steps at once (one GEMM over T*N rows):
//   P   = X W_ih^T + b_ih + b_hh                     X viewed as (T*N, I), P as (T, N, H)
//   a_t = P_t + h_{t-1} W_hh^T                       one (N, H) x (H, H) GEMM per step
//   h_t = act(a_t)                                   written over a_t in the output buffer
// The output Y = (h_0 .. h_{T-1}) is all backward needs: act'(a_t) is a function of h_t.
//
// Backward (BPTT), with G_t = dL/dh_t from the output's consumers:
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
Var<T> rnn_layer(const Var<T>& x, const Var<T>& h0, const Var<T>& W_ih, const Var<T>& W_hh,
                 const Var<T>& b_ih, const Var<T>& b_hh, RNNActivation activation) {
  const char* op = "rnn_layer";
  Tape<T>& t = Tape<T>::of(op, {x});  // the others by their position in the signature
  if (h0.defined()) t.check_input(op, 1, h0);
  t.check_input(op, 2, W_ih);
  t.check_input(op, 3, W_hh);
  if (b_ih.defined()) t.check_input(op, 4, b_ih);
  if (b_hh.defined()) t.check_input(op, 5, b_hh);

  const Shape& sx = t.shape(x);
  const Shape& sw = t.shape(W_ih);
  if (sx.size() != 3) {
    throw ShapeError("rnn_layer: x must be 3-D (seq_len, batch, input_size); got " + shape_str(sx));
  }
  if (sw.size() != 2) {
    throw ShapeError("rnn_layer: W_ih must be 2-D (hidden_size, input_size); got " + shape_str(sw));
  }
  const std::size_t seq_len = sx[0], N = sx[1], I = sx[2], H = sw[0];
  const auto ctx = [&] { return "x " + shape_str(sx) + ", W_ih " + shape_str(sw); };
  check_shape("W_ih", sw, Shape{H, I}, ctx);
  check_shape("W_hh", t.shape(W_hh), Shape{H, H}, ctx);
  if (h0.defined()) check_shape("h0", t.shape(h0), Shape{N, H}, ctx);
  if (b_ih.defined()) check_shape("b_ih", t.shape(b_ih), Shape{H}, ctx);
  if (b_hh.defined()) check_shape("b_hh", t.shape(b_hh), Shape{H}, ctx);
  if (seq_len == 0) throw ValueError("rnn_layer: the sequence is empty (seq_len 0); got x " + shape_str(sx));

  thread_local std::vector<Var<T>> inputs;  // reused: a training step allocates nothing
  inputs.assign({x, W_ih, W_hh});
  std::ptrdiff_t pos[3] = {-1, -1, -1};
  const Var<T>* optional[3] = {&h0, &b_ih, &b_hh};
  for (int k = 0; k < 3; ++k) {
    if (optional[k]->defined()) {
      pos[k] = static_cast<std::ptrdiff_t>(inputs.size());
      inputs.push_back(*optional[k]);
    }
  }
  auto r = t.record("rnn_layer", inputs);
  r.set_int(RnnInt::seq_len, std::ptrdiff_t(seq_len));
  r.set_int(RnnInt::N, std::ptrdiff_t(N));
  r.set_int(RnnInt::I, std::ptrdiff_t(I));
  r.set_int(RnnInt::H, std::ptrdiff_t(H));
  r.set_int(RnnInt::act, std::ptrdiff_t(activation));
  r.set_int(RnnInt::pos_h0, pos[0]);
  r.set_int(RnnInt::pos_bih, pos[1]);
  r.set_int(RnnInt::pos_bhh, pos[2]);

  const std::size_t NH = N * H;
  T* Y = r.out(Shape{seq_len, N, H}).data();
  // P = bias rows, then += X W_ih^T.
  const T* bi = b_ih.defined() ? t.value(b_ih).data() : nullptr;
  const T* bh = b_hh.defined() ? t.value(b_hh).data() : nullptr;
  if (N > 0) {
    for (std::size_t j = 0; j < H; ++j) Y[j] = (bi ? bi[j] : T(0)) + (bh ? bh[j] : T(0));
    for (std::size_t row = 1; row < seq_len * N; ++row) std::copy(Y, Y + H, Y + row * H);
  }
  gemm_nt_add<T>(seq_len * N, H, I, t.value(x).data(), t.value(W_ih).data(), Y);

  const T* Whh = t.value(W_hh).data();
  const T* h_prev = h0.defined() ? t.value(h0).data() : nullptr;  // nullptr: zeros
  for (std::size_t s = 0; s < seq_len; ++s) {
    T* a = Y + s * NH;
    if (h_prev) gemm_nt_add<T>(N, H, H, h_prev, Whh, a);
    activate(activation, a, NH);
    h_prev = a;
  }

  return r.finish([](BackwardCtx<T>& c) {
    const std::size_t seq_len = c.int_at(RnnInt::seq_len), N = c.int_at(RnnInt::N), I = c.int_at(RnnInt::I),
                      H = c.int_at(RnnInt::H), NH = N * H;
    const auto act = static_cast<RNNActivation>(c.int_at(RnnInt::act));
    const std::ptrdiff_t p_h0 = c.int_at(RnnInt::pos_h0), p_bih = c.int_at(RnnInt::pos_bih),
                         p_bhh = c.int_at(RnnInt::pos_bhh);
    const T* Y = c.output().data();
    const T* G = c.grad().data();
    const T* Wih = c.input(1).data();
    const T* Whh = c.input(2).data();

    // BPTT: dA_t = (G_t + dA_{t+1} W_hh) ⊙ act'(h_t).
    thread_local std::vector<T> dA_buf;  // reused: a training step allocates nothing
    dA_buf.resize(seq_len * NH);
    T* dA = dA_buf.data();
    for (std::size_t s = seq_len; s-- > 0;) {
      T* d = dA + s * NH;
      std::copy(G + s * NH, G + (s + 1) * NH, d);
      if (s + 1 < seq_len) gemm<T>(false, false, N, H, H, T(1), d + NH, H, Whh, H, T(1), d, H);
      times_derivative(act, Y + s * NH, d, NH);
    }

    // (input_grad_write: on a buffer's first write, beta = 0 assigns; see BackwardCtx)
    bool assign = false;
    if (c.needs_grad(0)) {  // dX += dA W_ih
      T* dX = c.input_grad_write(0, assign).data();
      gemm<T>(false, false, seq_len * N, I, H, T(1), dA, H, Wih, I, assign ? T(0) : T(1), dX, I);
    }
    if (c.needs_grad(1)) {  // dW_ih += dA^T X
      T* dWih = c.input_grad_write(1, assign).data();
      gemm<T>(true, false, H, I, seq_len * N, T(1), dA, H, c.input(0).data(), I, assign ? T(0) : T(1),
              dWih, I);
    }
    if (c.needs_grad(2)) {  // dW_hh += Σ_{t>=1} dA_t^T h_{t-1} (+ dA_0^T h0)
      T* dWhh = c.input_grad_write(2, assign).data();
      if (seq_len > 1) {
        gemm<T>(true, false, H, H, (seq_len - 1) * N, T(1), dA + NH, H, Y, H, assign ? T(0) : T(1), dWhh, H);
        assign = false;
      }
      if (p_h0 >= 0) {
        gemm<T>(true, false, H, H, N, T(1), dA, H, c.input(p_h0).data(), H, assign ? T(0) : T(1), dWhh, H);
        assign = false;
      }
      if (assign) std::fill(dWhh, dWhh + H * H, T(0));  // T = 1 without h0: dW_hh = 0
    }
    if (p_h0 >= 0 && c.needs_grad(p_h0)) {  // dh0 += dA_0 W_hh
      gemm<T>(false, false, N, H, H, T(1), dA, H, Whh, H, T(1), c.input_grad(p_h0).data(), H);
    }
    const bool need_bih = p_bih >= 0 && c.needs_grad(p_bih);
    const bool need_bhh = p_bhh >= 0 && c.needs_grad(p_bhh);
    if (need_bih || need_bhh) {  // db += column sums of dA, in double
      constexpr std::size_t kBlock = 64;
      for (std::size_t j0 = 0; j0 < H; j0 += kBlock) {
        const std::size_t nb = std::min(kBlock, H - j0);
        double acc[kBlock] = {};
        for (std::size_t row = 0; row < seq_len * N; ++row) {
          const T* d = dA + row * H + j0;
          for (std::size_t j = 0; j < nb; ++j) acc[j] += static_cast<double>(d[j]);
        }
        for (const auto p : {need_bih ? p_bih : -1, need_bhh ? p_bhh : -1}) {
          if (p < 0) continue;
          T* gb = c.input_grad(p).data() + j0;
          for (std::size_t j = 0; j < nb; ++j) gb[j] += static_cast<T>(acc[j]);
        }
      }
    }
  });
}

#define TAPEGRAD_INSTANTIATE(T)                                                              \
  template Var<T> rnn_layer(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&,     \
                            const Var<T>&, const Var<T>&, RNNActivation);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
