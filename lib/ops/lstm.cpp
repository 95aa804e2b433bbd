#include "tapegrad/ops/lstm.hpp"

#include <cstddef>
#include <vector>

#include "tapegrad/ops/shape.hpp"

#include "lstm_kernels.hpp"
#include "recurrent_inputs.hpp"

namespace tapegrad {

namespace {

// The node's saved arrays: the gates after their nonlinearity (T, N, 4H), the cell states and
// their tanh (T, N, H).
enum class LstmSaved : std::size_t { gates, cell, tanh_cell, count };
// Its ints: sizes, the direction, and where the optional inputs sit in the input list (-1 when
// absent). Inputs are {x, W_ih, W_hh} followed by those given of h0, c0, b_ih, b_hh, in order.
enum class LstmInt : std::size_t { seq_len, N, I, H, reverse, pos_h0, pos_c0, pos_bih, pos_bhh, count };

constexpr detail::RecurrentOpSpec kLstmSpec{"lstm_layer", 4, true};

// The math: lstm_kernels.cpp (the steps) and recurrent_kernels.cpp (the gradient GEMMs).
template <class T>
void lstm_layer_backward(BackwardCtx<T>& c) {
  const detail::SeqDims d = detail::seq_dims_of<LstmInt>(c);
  const std::ptrdiff_t p_h0 = c.int_at(LstmInt::pos_h0), p_c0 = c.int_at(LstmInt::pos_c0),
                       p_bih = c.int_at(LstmInt::pos_bih), p_bhh = c.int_at(LstmInt::pos_bhh);
  const T* h0 = p_h0 >= 0 ? c.input(p_h0).data() : nullptr;
  const T* c0 = p_c0 >= 0 ? c.input(p_c0).data() : nullptr;
  const std::size_t NH = d.N * d.H;
  thread_local std::vector<T> dS_buf, dc, dh;  // reused: a training step allocates nothing
  dS_buf.resize(d.rows() * 4 * d.H);
  dc.resize(NH);
  dh.resize(NH);
  detail::lstm_backward_steps(dS_buf.data(), dc.data(), dh.data(), c.grad().data(),
                              c.saved(LstmSaved::gates).data(), c.saved(LstmSaved::cell).data(),
                              c.saved(LstmSaved::tanh_cell).data(), c0, c.input(2).data(), d);
  const T* dS = dS_buf.data();
  detail::recurrent_weight_grads(c, d, 4 * d.H, dS, dS, h0);
  if (p_h0 >= 0 && c.needs_grad(p_h0)) {
    detail::seq_backward_h0(c.input_grad(p_h0).data(), dS, c.input(2).data(), d, 4 * d.H);
  }
  if (p_c0 >= 0 && c.needs_grad(p_c0)) {
    T* g = c.input_grad(p_c0).data();
    for (std::size_t k = 0; k < NH; ++k) g[k] += dc[k];
  }
  detail::recurrent_bias_grads(c, p_bih, p_bhh, dS, d, 4 * d.H);
}

}  // namespace

// lstm_layer: validates, records the sizes and the optional inputs' positions, and runs the
// kernels of lstm_kernels.hpp.
template <class T>
Var<T> lstm_layer(const Var<T>& x, const Var<T>& h0, const Var<T>& c0, const Var<T>& W_ih, const Var<T>& W_hh,
                  const Var<T>& b_ih, const Var<T>& b_hh, bool reverse) {
  Tape<T>& t = Tape<T>::of("lstm_layer", {x});
  const detail::RecurrentArgs<T> a{x, h0, c0, W_ih, W_hh, b_ih, b_hh};
  const detail::SeqDims d = detail::check_recurrent_inputs(kLstmSpec, t, a, reverse);

  thread_local std::vector<Var<T>> inputs;  // reused: a training step allocates nothing
  std::ptrdiff_t pos[4];
  detail::recurrent_input_list(inputs, pos, a, {&h0, &c0, &b_ih, &b_hh});
  auto r = t.record("lstm_layer", inputs);
  const std::ptrdiff_t ints[] = {std::ptrdiff_t(d.seq_len),
                                 std::ptrdiff_t(d.N),
                                 std::ptrdiff_t(d.I),
                                 std::ptrdiff_t(d.H),
                                 std::ptrdiff_t(reverse),
                                 pos[0],
                                 pos[1],
                                 pos[2],
                                 pos[3]};
  for (std::size_t k = 0; k < detail::slot_count<LstmInt>(); ++k) r.set_int(LstmInt(k), ints[k]);

  const Shape gates{d.seq_len, d.N, 4 * d.H}, cells{d.seq_len, d.N, d.H};
  detail::lstm_forward(
      r.out(Shape{d.seq_len + 1, d.N, d.H}).data(), detail::sized(r.save(LstmSaved::gates), gates),
      detail::sized(r.save(LstmSaved::cell), cells), detail::sized(r.save(LstmSaved::tanh_cell), cells),
      t.value(x).data(), detail::data_or_null(t, h0), detail::data_or_null(t, c0), t.value(W_ih).data(),
      t.value(W_hh).data(), detail::data_or_null(t, b_ih), detail::data_or_null(t, b_hh), d);
  return r.finish(&lstm_layer_backward<T>);
}

template <class T>
LSTMLayerParts<T> split_lstm_layer(const Var<T>& y, bool reverse) {
  const Shape& s = Tape<T>::of("split_lstm_layer", {y}).shape(y);
  if (s.size() != 3 || s[0] < 2) {
    throw ShapeError("split_lstm_layer: expected lstm_layer's result, (T + 1, N, H) with T >= 1; got " +
                     shape_str(s));
  }
  const auto steps = static_cast<std::ptrdiff_t>(s[0]) - 1;
  return {slice(y, 0, 0, steps), select(y, 0, reverse ? 0 : steps - 1), select(y, 0, steps)};
}

#define TAPEGRAD_INSTANTIATE(T)                                                                         \
  template Var<T> lstm_layer(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, \
                             const Var<T>&, const Var<T>&, bool);                                       \
  template LSTMLayerParts<T> split_lstm_layer(const Var<T>&, bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
