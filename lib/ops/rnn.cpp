#include "tapegrad/ops/rnn.hpp"

#include <cstddef>
#include <string>
#include <vector>

#include "rnn_kernels.hpp"

namespace tapegrad {

namespace {

// The layout of the node's ints: sizes, the activation, and where the optional inputs sit in
// the input list (-1 when absent). Inputs are {x, W_ih, W_hh} followed by those given of
// h0, b_ih, b_hh, in that order.
enum class RnnInt : std::size_t { seq_len, N, I, H, act, pos_h0, pos_bih, pos_bhh, count };

struct RnnSizes {
  std::size_t seq_len, N, I, H;
};

// ctx() names x's and W_ih's shapes for the message, built only to throw.
template <class Ctx>
void check_shape(const char* what, const Shape& got, const Shape& want, Ctx&& ctx) {
  if (got != want) {
    throw ShapeError("rnn_layer: " + std::string(what) + " must have shape " + shape_str(want) + "; got " +
                     shape_str(got) + " (" + ctx() + ")");
  }
}

// Every check rnn_layer makes before recording; the sizes come from x and W_ih.
template <class T>
RnnSizes check_rnn_inputs(const Tape<T>& t, const Var<T>& x, const Var<T>& h0, const Var<T>& W_ih,
                          const Var<T>& W_hh, const Var<T>& b_ih, const Var<T>& b_hh) {
  const char* op = "rnn_layer";  // the inputs by their position in the signature
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
  const RnnSizes n{sx[0], sx[1], sx[2], sw[0]};
  const auto ctx = [&] { return "x " + shape_str(sx) + ", W_ih " + shape_str(sw); };
  check_shape("W_ih", sw, Shape{n.H, n.I}, ctx);
  check_shape("W_hh", t.shape(W_hh), Shape{n.H, n.H}, ctx);
  if (h0.defined()) check_shape("h0", t.shape(h0), Shape{n.N, n.H}, ctx);
  if (b_ih.defined()) check_shape("b_ih", t.shape(b_ih), Shape{n.H}, ctx);
  if (b_hh.defined()) check_shape("b_hh", t.shape(b_hh), Shape{n.H}, ctx);
  if (n.seq_len == 0) {
    throw ValueError("rnn_layer: the sequence is empty (seq_len 0); got x " + shape_str(sx));
  }
  return n;
}

template <class T>
const T* data_or_null(const Tape<T>& t, const Var<T>& v) {
  return v.defined() ? t.value(v).data() : nullptr;
}

// The math of each step: rnn_kernels.cpp.
template <class T>
void rnn_layer_backward(BackwardCtx<T>& c) {
  const std::size_t seq_len = c.int_at(RnnInt::seq_len), N = c.int_at(RnnInt::N), I = c.int_at(RnnInt::I),
                    H = c.int_at(RnnInt::H);
  const auto act = static_cast<RNNActivation>(c.int_at(RnnInt::act));
  const std::ptrdiff_t p_h0 = c.int_at(RnnInt::pos_h0), p_bih = c.int_at(RnnInt::pos_bih),
                       p_bhh = c.int_at(RnnInt::pos_bhh);
  const T* Y = c.output().data();
  const T* X = c.input(0).data();
  const T* Wih = c.input(1).data();
  const T* Whh = c.input(2).data();
  const T* h0 = p_h0 >= 0 ? c.input(p_h0).data() : nullptr;

  thread_local std::vector<T> dA_buf;  // reused: a training step allocates nothing
  dA_buf.resize(seq_len * N * H);
  const T* dA = dA_buf.data();
  detail::rnn_backward_steps(dA_buf.data(), c.grad().data(), Y, Whh, seq_len, N, H, act);

  // input_grad_write: on a buffer's first write, beta = 0 overwrites (see GradWrite). Each
  // buffer is written whole before the next is asked for: two inputs may be one node.
  if (c.needs_grad(0)) {
    const GradWrite<T> dX = c.input_grad_write(0);
    detail::rnn_backward_x(dX.data, dX.beta, dA, Wih, seq_len, N, I, H);
  }
  if (c.needs_grad(1)) {
    const GradWrite<T> dWih = c.input_grad_write(1);
    detail::rnn_backward_w_ih(dWih.data, dWih.beta, dA, X, seq_len, N, I, H);
  }
  if (c.needs_grad(2)) {
    const GradWrite<T> dWhh = c.input_grad_write(2);
    detail::rnn_backward_w_hh(dWhh.data, dWhh.beta, dA, Y, h0, seq_len, N, H);
  }
  if (p_h0 >= 0 && c.needs_grad(p_h0)) detail::rnn_backward_h0(c.input_grad(p_h0).data(), dA, Whh, N, H);
  const bool need_bih = p_bih >= 0 && c.needs_grad(p_bih);
  const bool need_bhh = p_bhh >= 0 && c.needs_grad(p_bhh);
  if ((need_bih || need_bhh) && H > 0) {  // H = 0: no column, the bias gradients stay untouched
    detail::rnn_backward_bias(need_bih ? c.input_grad(p_bih).data() : nullptr,
                              need_bhh ? c.input_grad(p_bhh).data() : nullptr, dA, seq_len, N, H);
  }
}

}  // namespace

// rnn_layer: an Elman RNN layer over the whole sequence, one node. It validates, records the
// sizes and the optional inputs' positions, and runs the kernels of rnn_kernels.hpp.
template <class T>
Var<T> rnn_layer(const Var<T>& x, const Var<T>& h0, const Var<T>& W_ih, const Var<T>& W_hh,
                 const Var<T>& b_ih, const Var<T>& b_hh, RNNActivation activation) {
  Tape<T>& t = Tape<T>::of("rnn_layer", {x});
  const RnnSizes n = check_rnn_inputs(t, x, h0, W_ih, W_hh, b_ih, b_hh);

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
  r.set_int(RnnInt::seq_len, std::ptrdiff_t(n.seq_len));
  r.set_int(RnnInt::N, std::ptrdiff_t(n.N));
  r.set_int(RnnInt::I, std::ptrdiff_t(n.I));
  r.set_int(RnnInt::H, std::ptrdiff_t(n.H));
  r.set_int(RnnInt::act, std::ptrdiff_t(activation));
  r.set_int(RnnInt::pos_h0, pos[0]);
  r.set_int(RnnInt::pos_bih, pos[1]);
  r.set_int(RnnInt::pos_bhh, pos[2]);

  detail::rnn_forward(r.out(Shape{n.seq_len, n.N, n.H}).data(), t.value(x).data(), data_or_null(t, h0),
                      t.value(W_ih).data(), t.value(W_hh).data(), data_or_null(t, b_ih),
                      data_or_null(t, b_hh), n.seq_len, n.N, n.I, n.H, activation);
  return r.finish(&rnn_layer_backward<T>);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                        \
  template Var<T> rnn_layer(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, \
                            const Var<T>&, RNNActivation);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
