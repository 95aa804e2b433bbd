#pragma once
// The slow references for the fused LSTM and GRU layers (test_lstm.cpp, test_gru.cpp): the same
// recurrences composed from primitive ops, one linear per input and a handful of elementwise
// ops per step, then stack. They take the fused ops' arguments and return their results.
#include <vector>

#include "support.hpp"

namespace rnnref {

namespace tg = tapegrad;

template <class T>
tg::Var<T> state_or_zeros(const tg::Var<T>& s, tg::Tape<T>& t, std::size_t N, std::size_t H) {
  return s.defined() ? s : t.constant(xt::zeros<T>({N, H}));
}

// The gate k of a (N, gates * H) pre-activation.
template <class T>
tg::Var<T> gate(const tg::Var<T>& a, std::size_t k, std::size_t H) {
  return tg::slice(a, 1, std::ptrdiff_t(k * H), std::ptrdiff_t((k + 1) * H));
}

// lstm_layer's result (T + 1, N, H): every h_t, then c_n.
template <class T>
tg::Var<T> composed_lstm_layer(const tg::Var<T>& x, const tg::Var<T>& h0, const tg::Var<T>& c0,
                               const tg::Var<T>& W_ih, const tg::Var<T>& W_hh, const tg::Var<T>& b_ih,
                               const tg::Var<T>& b_hh, bool reverse) {
  tg::Tape<T>& t = x.tape();
  const std::size_t steps = x.shape()[0], N = x.shape()[1], H = W_hh.shape()[1];
  tg::Var<T> h = state_or_zeros(h0, t, N, H), c = state_or_zeros(c0, t, N, H);
  std::vector<tg::Var<T>> rows(steps);
  for (std::size_t s = 0; s < steps; ++s) {
    const std::size_t k = reverse ? steps - 1 - s : s;
    const auto a = tg::linear(tg::select(x, 0, std::ptrdiff_t(k)), W_ih, b_ih) + tg::linear(h, W_hh, b_hh);
    const auto i = tg::sigmoid(gate(a, 0, H)), f = tg::sigmoid(gate(a, 1, H));
    const auto g = tg::tanh(gate(a, 2, H)), o = tg::sigmoid(gate(a, 3, H));
    c = f * c + i * g;
    h = o * tg::tanh(c);
    rows[k] = h;
  }
  rows.push_back(c);
  return tg::stack(rows, 0);
}

// gru_layer's result (T, N, H).
template <class T>
tg::Var<T> composed_gru_layer(const tg::Var<T>& x, const tg::Var<T>& h0, const tg::Var<T>& W_ih,
                              const tg::Var<T>& W_hh, const tg::Var<T>& b_ih, const tg::Var<T>& b_hh,
                              bool reverse) {
  tg::Tape<T>& t = x.tape();
  const std::size_t steps = x.shape()[0], N = x.shape()[1], H = W_hh.shape()[1];
  tg::Var<T> h = state_or_zeros(h0, t, N, H);
  std::vector<tg::Var<T>> rows(steps);
  for (std::size_t s = 0; s < steps; ++s) {
    const std::size_t k = reverse ? steps - 1 - s : s;
    const auto p = tg::linear(tg::select(x, 0, std::ptrdiff_t(k)), W_ih, b_ih);
    const auto q = tg::linear(h, W_hh, b_hh);
    const auto r = tg::sigmoid(gate(p, 0, H) + gate(q, 0, H));
    const auto z = tg::sigmoid(gate(p, 1, H) + gate(q, 1, H));
    const auto n = tg::tanh(gate(p, 2, H) + r * gate(q, 2, H));
    h = (1.0 - z) * n + z * h;
    rows[k] = h;
  }
  return tg::stack(rows, 0);
}

}  // namespace rnnref
