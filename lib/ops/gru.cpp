#include "tapegrad/ops/gru.hpp"

#include <cstddef>
#include <vector>

#include "gru_kernels.hpp"
#include "recurrent_inputs.hpp"

namespace tapegrad {

namespace {

// The node's saved arrays: the gates r, z, n (T, N, 3H) and q_n = h_prev W_hn^T + b_hn
// (T, N, H).
enum class GruSaved : std::size_t { gates, q_n, count };
// Its ints: sizes, the direction, and where the optional inputs sit in the input list (-1 when
// absent). Inputs are {x, W_ih, W_hh} followed by those given of h0, b_ih, b_hh, in order.
enum class GruInt : std::size_t { seq_len, N, I, H, reverse, pos_h0, pos_bih, pos_bhh, count };

constexpr detail::RecurrentOpSpec kGruSpec{"gru_layer", 3, false};

// The math: gru_kernels.cpp (the steps) and recurrent_kernels.cpp (the gradient GEMMs).
template <class T>
void gru_layer_backward(BackwardCtx<T>& c) {
  const detail::SeqDims d = detail::seq_dims_of<GruInt>(c);
  const std::ptrdiff_t p_h0 = c.int_at(GruInt::pos_h0), p_bih = c.int_at(GruInt::pos_bih),
                       p_bhh = c.int_at(GruInt::pos_bhh);
  const T* h0 = p_h0 >= 0 ? c.input(p_h0).data() : nullptr;
  const std::size_t NH = d.N * d.H, G = 3 * d.H;
  thread_local std::vector<T> dP_buf, dQ_buf, dh;  // reused: a training step allocates nothing
  dP_buf.resize(d.rows() * G);
  dQ_buf.resize(d.rows() * G);
  dh.resize(NH);
  detail::gru_backward_steps(dP_buf.data(), dQ_buf.data(), dh.data(), c.grad().data(), c.output().data(),
                             c.saved(GruSaved::gates).data(), c.saved(GruSaved::q_n).data(), h0,
                             c.input(2).data(), d);
  const T *dP = dP_buf.data(), *dQ = dQ_buf.data();
  detail::recurrent_weight_grads(c, d, G, dP, dQ, h0);
  if (p_h0 >= 0 && c.needs_grad(p_h0)) {
    T* g = c.input_grad(p_h0).data();
    for (std::size_t k = 0; k < NH; ++k) g[k] += dh[k];
    detail::seq_backward_h0(g, dQ, c.input(2).data(), d, G);
  }
  // The r and z columns of dP and dQ are equal: summed once for both biases.
  T* db_ih = p_bih >= 0 && c.needs_grad(p_bih) ? c.input_grad(p_bih).data() : nullptr;
  T* db_hh = p_bhh >= 0 && c.needs_grad(p_bhh) ? c.input_grad(p_bhh).data() : nullptr;
  T* none = nullptr;
  if (db_ih || db_hh) detail::seq_backward_bias(db_ih, db_hh, dP, d.rows(), 2 * d.H, G);
  if (db_ih) detail::seq_backward_bias(db_ih + 2 * d.H, none, dP + 2 * d.H, d.rows(), d.H, G);
  if (db_hh) detail::seq_backward_bias(none, db_hh + 2 * d.H, dQ + 2 * d.H, d.rows(), d.H, G);
}

}  // namespace

// gru_layer: validates, records the sizes and the optional inputs' positions, and runs the
// kernels of gru_kernels.hpp.
template <class T>
Var<T> gru_layer(const Var<T>& x, const Var<T>& h0, const Var<T>& W_ih, const Var<T>& W_hh,
                 const Var<T>& b_ih, const Var<T>& b_hh, bool reverse) {
  Tape<T>& t = Tape<T>::of("gru_layer", {x});
  const Var<T> none;
  const detail::RecurrentArgs<T> a{x, h0, none, W_ih, W_hh, b_ih, b_hh};
  const detail::SeqDims d = detail::check_recurrent_inputs(kGruSpec, t, a, reverse);

  thread_local std::vector<Var<T>> inputs;  // reused: a training step allocates nothing
  thread_local std::vector<T> q;            // one step's h_prev W_hh^T + b_hh
  std::ptrdiff_t pos[3];
  detail::recurrent_input_list(inputs, pos, a, {&h0, &b_ih, &b_hh});
  auto r = t.record("gru_layer", inputs);
  const std::ptrdiff_t ints[] = {std::ptrdiff_t(d.seq_len),
                                 std::ptrdiff_t(d.N),
                                 std::ptrdiff_t(d.I),
                                 std::ptrdiff_t(d.H),
                                 std::ptrdiff_t(reverse),
                                 pos[0],
                                 pos[1],
                                 pos[2]};
  for (std::size_t k = 0; k < detail::slot_count<GruInt>(); ++k) r.set_int(GruInt(k), ints[k]);

  q.resize(d.N * 3 * d.H);
  detail::gru_forward(r.out(Shape{d.seq_len, d.N, d.H}).data(),
                      detail::sized(r.save(GruSaved::gates), Shape{d.seq_len, d.N, 3 * d.H}),
                      detail::sized(r.save(GruSaved::q_n), Shape{d.seq_len, d.N, d.H}), q.data(),
                      t.value(x).data(), detail::data_or_null(t, h0), t.value(W_ih).data(),
                      t.value(W_hh).data(), detail::data_or_null(t, b_ih), detail::data_or_null(t, b_hh), d);
  return r.finish(&gru_layer_backward<T>);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                        \
  template Var<T> gru_layer(const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, const Var<T>&, \
                            const Var<T>&, bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
