#include "tapegrad/ops/rnn.hpp"

#include <cstddef>
#include <vector>

#include "recurrent_inputs.hpp"
#include "rnn_kernels.hpp"

namespace tapegrad {

namespace {

// The layout of the node's ints: sizes, the activation, the direction, and where the optional
// inputs sit in the input list (-1 when absent). Inputs are {x, W_ih, W_hh} followed by those
// given of h0, b_ih, b_hh, in that order.
enum class RnnInt : std::size_t { seq_len, N, I, H, act, reverse, pos_h0, pos_bih, pos_bhh, count };

constexpr detail::RecurrentOpSpec kRnnSpec{"rnn_layer", 1, false};

// The math of each step: rnn_kernels.cpp; the gradient GEMMs: recurrent_kernels.cpp.
template <class T>
void rnn_layer_backward(BackwardCtx<T>& c) {
  const detail::SeqDims d = detail::seq_dims_of<RnnInt>(c);
  const auto act = static_cast<RNNActivation>(c.int_at(RnnInt::act));
  const std::ptrdiff_t p_h0 = c.int_at(RnnInt::pos_h0), p_bih = c.int_at(RnnInt::pos_bih),
                       p_bhh = c.int_at(RnnInt::pos_bhh);
  const T* Y = c.output().data();
  const T* Whh = c.input(2).data();
  const T* h0 = p_h0 >= 0 ? c.input(p_h0).data() : nullptr;

  thread_local std::vector<T> dA_buf;  // reused: a training step allocates nothing
  dA_buf.resize(d.rows() * d.H);
  const T* dA = dA_buf.data();
  detail::rnn_backward_steps(dA_buf.data(), c.grad().data(), Y, Whh, d, act);

  detail::recurrent_weight_grads(c, d, d.H, dA, dA, h0);
  if (p_h0 >= 0 && c.needs_grad(p_h0)) detail::seq_backward_h0(c.input_grad(p_h0).data(), dA, Whh, d, d.H);
  detail::recurrent_bias_grads(c, p_bih, p_bhh, dA, d, d.H);
}

}  // namespace

// rnn_layer: an Elman RNN layer over the whole sequence, one node. It validates, records the
// sizes and the optional inputs' positions, and runs the kernels of rnn_kernels.hpp.
template <class T>
Var<T> rnn_layer(const Var<T>& x, const Var<T>& h0, const Var<T>& W_ih, const Var<T>& W_hh,
                 const Var<T>& b_ih, const Var<T>& b_hh, RNNActivation activation, bool reverse) {
  Tape<T>& t = Tape<T>::of("rnn_layer", {x});
  const Var<T> none;
  const detail::RecurrentArgs<T> a{x, h0, none, W_ih, W_hh, b_ih, b_hh};
  const detail::SeqDims d = detail::check_recurrent_inputs(kRnnSpec, t, a, reverse);

  thread_local std::vector<Var<T>> inputs;  // reused: a training step allocates nothing
  std::ptrdiff_t pos[3];
  detail::recurrent_input_list(inputs, pos, a, {&h0, &b_ih, &b_hh});
  auto r = t.record("rnn_layer", inputs);
  r.set_int(RnnInt::seq_len, std::ptrdiff_t(d.seq_len));
  r.set_int(RnnInt::N, std::ptrdiff_t(d.N));
  r.set_int(RnnInt::I, std::ptrdiff_t(d.I));
  r.set_int(RnnInt::H, std::ptrdiff_t(d.H));
  r.set_int(RnnInt::act, std::ptrdiff_t(activation));
  r.set_int(RnnInt::reverse, std::ptrdiff_t(reverse));
  r.set_int(RnnInt::pos_h0, pos[0]);
  r.set_int(RnnInt::pos_bih, pos[1]);
  r.set_int(RnnInt::pos_bhh, pos[2]);

  detail::rnn_forward(r.out(Shape{d.seq_len, d.N, d.H}).data(), t.value(x).data(),
                      detail::data_or_null(t, h0), t.value(W_ih).data(), t.value(W_hh).data(),
                      detail::data_or_null(t, b_ih), detail::data_or_null(t, b_hh), d, activation);
  return r.finish(&rnn_layer_backward<T>);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                        \
  template Var<T> rnn_layer(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, \
                            const Var<T>&, RNNActivation, bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
