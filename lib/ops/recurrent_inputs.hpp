#pragma once
// Internal to lib/ops: what the fused recurrent ops (rnn_layer, gru_layer, lstm_layer) share
// around their kernels: the validation made before anything is recorded, the layout of their
// optional inputs in the node's input list, and the ends of their backward functions (the sizes
// read back from the node, the gradients of x, W_ih and W_hh).
#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/core/tape.hpp"

#include "recurrent_kernels.hpp"

namespace tapegrad::detail {

// Which op is checked: its name, its number of gates (1, 3 or 4: W_ih has gates * H rows) and
// whether it takes a cell state c0 (then the positions of the later arguments shift by one).
struct RecurrentOpSpec {
  const char* op;
  std::size_t gates;
  bool has_c0;
};

// The op's arguments as given; h0, c0, b_ih and b_hh may be undefined.
template <class T>
struct RecurrentArgs {
  const Var<T>& x;
  const Var<T>& h0;
  const Var<T>& c0;
  const Var<T>& W_ih;
  const Var<T>& W_hh;
  const Var<T>& b_ih;
  const Var<T>& b_hh;
};

// ctx() names x's and W_ih's shapes for the message, built only to throw.
template <class Ctx>
void check_recurrent_shape(const char* op, const char* what, const Shape& got, const Shape& want, Ctx&& ctx) {
  if (got != want) {
    throw ShapeError(std::string(op) + ": " + what + " must have shape " + shape_str(want) + "; got " +
                     shape_str(got) + " (" + ctx() + ")");
  }
}

// " (4*hidden_size, input_size)" for a message.
inline std::string weight_ih_layout(std::size_t gates) {
  return gates == 1 ? "(hidden_size, input_size)" : "(" + std::to_string(gates) + "*hidden_size, input_size)";
}

// Every check the op makes before recording (StateError for a stale, empty or foreign input
// naming its position; ShapeError naming the shapes; ValueError for seq_len 0); the sizes come
// from x and W_ih.
template <class T>
SeqDims check_recurrent_inputs(const RecurrentOpSpec& s, const Tape<T>& t, const RecurrentArgs<T>& a,
                               bool reverse) {
  const std::size_t k = s.has_c0 ? 1 : 0;  // the signature: x, h0, [c0,] W_ih, W_hh, b_ih, b_hh
  if (a.h0.defined()) t.check_input(s.op, 1, a.h0);
  if (s.has_c0 && a.c0.defined()) t.check_input(s.op, 2, a.c0);
  t.check_input(s.op, 2 + k, a.W_ih);
  t.check_input(s.op, 3 + k, a.W_hh);
  if (a.b_ih.defined()) t.check_input(s.op, 4 + k, a.b_ih);
  if (a.b_hh.defined()) t.check_input(s.op, 5 + k, a.b_hh);

  const std::string op(s.op);
  const Shape& sx = t.shape(a.x);
  const Shape& sw = t.shape(a.W_ih);
  if (sx.size() != 3)
    throw ShapeError(op + ": x must be 3-D (seq_len, batch, input_size); got " + shape_str(sx));
  if (sw.size() != 2 || sw[0] % s.gates != 0) {
    throw ShapeError(op + ": W_ih must be 2-D " + weight_ih_layout(s.gates) + "; got " + shape_str(sw));
  }
  SeqDims d;
  d.seq_len = sx[0], d.N = sx[1], d.I = sx[2], d.H = sw[0] / s.gates, d.reverse = reverse;
  const std::size_t G = sw[0];
  const auto ctx = [&] { return "x " + shape_str(sx) + ", W_ih " + shape_str(sw); };
  check_recurrent_shape(s.op, "W_ih", sw, Shape{G, d.I}, ctx);
  check_recurrent_shape(s.op, "W_hh", t.shape(a.W_hh), Shape{G, d.H}, ctx);
  if (a.h0.defined()) check_recurrent_shape(s.op, "h0", t.shape(a.h0), Shape{d.N, d.H}, ctx);
  if (s.has_c0 && a.c0.defined()) check_recurrent_shape(s.op, "c0", t.shape(a.c0), Shape{d.N, d.H}, ctx);
  if (a.b_ih.defined()) check_recurrent_shape(s.op, "b_ih", t.shape(a.b_ih), Shape{G}, ctx);
  if (a.b_hh.defined()) check_recurrent_shape(s.op, "b_hh", t.shape(a.b_hh), Shape{G}, ctx);
  if (d.seq_len == 0) throw ValueError(op + ": the sequence is empty (seq_len 0); got x " + shape_str(sx));
  return d;
}

// The node's inputs: {x, W_ih, W_hh} followed by the defined ones of `optional`, in order;
// pos[k] is optional[k]'s position in the list, or -1 when it is undefined.
template <class T, std::size_t K>
void recurrent_input_list(std::vector<Var<T>>& inputs, std::ptrdiff_t (&pos)[K], const RecurrentArgs<T>& a,
                          const Var<T>* const (&optional)[K]) {
  inputs.assign({a.x, a.W_ih, a.W_hh});
  for (std::size_t k = 0; k < K; ++k) {
    pos[k] = -1;
    if (optional[k]->defined()) {
      pos[k] = static_cast<std::ptrdiff_t>(inputs.size());
      inputs.push_back(*optional[k]);
    }
  }
}

template <class T>
const T* data_or_null(const Tape<T>& t, const Var<T>& v) {
  return v.defined() ? t.value(v).data() : nullptr;
}

// a's data, resized to `shape` first when it differs (a saved array reused by the next record).
template <class T>
T* sized(xt::xarray<T>& a, const Shape& shape) {
  if (a.shape() != shape) a.resize(shape);
  return a.data();
}

// The sizes and direction a node recorded in its ints; Int is the op's int layout (an enum
// class with the slots seq_len, N, I, H and reverse).
template <class Int, class T>
SeqDims seq_dims_of(const BackwardCtx<T>& c) {
  SeqDims d;
  d.seq_len = c.int_at(Int::seq_len), d.N = c.int_at(Int::N), d.I = c.int_at(Int::I);
  d.H = c.int_at(Int::H), d.reverse = c.int_at(Int::reverse) != 0;
  return d;
}

// The gradients of the node's inputs 0, 1 and 2 (x, W_ih, W_hh), from the gradient w.r.t. the
// pre-activations (seq_len, N, G), G = gates * H: d_pre_x the part that multiplies W_ih (gives
// dx and dW_ih), d_pre_h the part that multiplies W_hh (gives dW_hh, with h_prev read from the
// node's output rows and h0, null: zeros). For the RNN and the LSTM the two are one buffer.
// input_grad_write: on a buffer's first write, beta = 0 overwrites (see GradWrite). Each buffer
// is written whole before the next is asked for: two inputs may be one node.
template <class T>
void recurrent_weight_grads(BackwardCtx<T>& c, const SeqDims& d, std::size_t G, const T* d_pre_x,
                            const T* d_pre_h, const T* h0) {
  if (c.needs_grad(0)) {
    const GradWrite<T> dX = c.input_grad_write(0);
    seq_backward_x(dX.data, dX.beta, d_pre_x, c.input(1).data(), d.rows(), d.I, G);
  }
  if (c.needs_grad(1)) {
    const GradWrite<T> dW = c.input_grad_write(1);
    seq_backward_w_ih(dW.data, dW.beta, d_pre_x, c.input(0).data(), d.rows(), d.I, G);
  }
  if (c.needs_grad(2)) {
    const GradWrite<T> dW = c.input_grad_write(2);
    seq_backward_w_hh(dW.data, dW.beta, d_pre_h, c.output().data(), h0, d, G);
  }
}

// The bias gradients of an RNN or LSTM node (either position -1: absent): both biases get the
// column sums of dA (rows, G).
template <class T>
void recurrent_bias_grads(BackwardCtx<T>& c, std::ptrdiff_t p_bih, std::ptrdiff_t p_bhh, const T* dA,
                          const SeqDims& d, std::size_t G) {
  const bool need_bih = p_bih >= 0 && c.needs_grad(p_bih);
  const bool need_bhh = p_bhh >= 0 && c.needs_grad(p_bhh);
  if (need_bih || need_bhh) {
    seq_backward_bias(need_bih ? c.input_grad(p_bih).data() : nullptr,
                      need_bhh ? c.input_grad(p_bhh).data() : nullptr, dA, d.rows(), G, G);
  }
}

}  // namespace tapegrad::detail
