#include "sequence_input.hpp"

#include "tapegrad/ops/shape.hpp"

namespace tapegrad {

namespace detail {

template <class T>
SequenceLayout check_sequence_input(const char* who, Tape<T>& t, const Var<T>& x, const Var<T>& h0,
                                    std::size_t input_size, std::size_t hidden_size, std::size_t num_layers,
                                    bool batch_first) {
  const std::string name(who);
  t.check(x, who);
  if (h0.defined()) t.check(h0, who);
  const Shape& sx = t.shape(x);
  if (sx.size() != 2 && sx.size() != 3) {
    throw ShapeError(name + ": expected input to be 2-D (seq_len, input_size) or 3-D " +
                     (batch_first ? "(batch, seq_len, input_size)" : "(seq_len, batch, input_size)") +
                     "; got input of shape " + shape_str(sx));
  }
  if (sx.back() != input_size) {
    throw ShapeError(name + ": input.size(-1) must be equal to input_size. Expected " +
                     std::to_string(input_size) + ", got " + std::to_string(sx.back()) + " (input of shape " +
                     shape_str(sx) + ")");
  }
  SequenceLayout l;
  l.batched = sx.size() == 3;
  l.batch_first = batch_first && l.batched;
  l.T = l.batched ? sx[batch_first ? 1 : 0] : sx[0];
  l.N = l.batched ? sx[batch_first ? 0 : 1] : 1;
  if (l.T == 0) {
    throw ValueError(name + ": expected a sequence length larger than 0; got input of shape " +
                     shape_str(sx));
  }
  if (h0.defined()) {
    const Shape want = l.batched ? Shape{num_layers, l.N, hidden_size} : Shape{num_layers, hidden_size};
    if (t.shape(h0) != want) {
      throw ShapeError(name + ": expected hidden size " + shape_str(want) + " for input of shape " +
                       shape_str(sx) + ", got h0 of shape " + shape_str(t.shape(h0)) +
                       " (h0 is (num_layers, batch, hidden_size)" +
                       (l.batched ? "" : ", or (num_layers, hidden_size) for an unbatched input") + ")");
    }
  }
  return l;
}

template <class T>
Var<T> time_major_input(const Var<T>& x, const SequenceLayout& l) {
  if (!l.batched) return unsqueeze(x, 1);  // (T, I) -> (T, 1, I)
  return l.batch_first ? transpose(x, 0, 1) : x;
}

template <class T>
Var<T> batched_h0(const Var<T>& h0, const SequenceLayout& l) {
  if (!h0.defined() || l.batched) return h0;
  return unsqueeze(h0, 1);  // (L, H) -> (L, 1, H)
}

template <class T>
RNNOutput<T> to_caller_layout(const Var<T>& output, const Var<T>& h_n, const SequenceLayout& l) {
  if (!l.batched) return {squeeze(output, 1), squeeze(h_n, 1)};
  return {l.batch_first ? transpose(output, 0, 1) : output, h_n};
}

RNNActivation rnn_activation(const char* who, const std::string& nonlinearity) {
  if (nonlinearity == "tanh") return RNNActivation::Tanh;
  if (nonlinearity == "relu") return RNNActivation::ReLU;
  throw ValueError(std::string(who) + ": unknown nonlinearity '" + nonlinearity +
                   "'; expected \"tanh\" or \"relu\"");
}

}  // namespace detail

#define TAPEGRAD_INSTANTIATE(T)                                                                          \
  template detail::SequenceLayout detail::check_sequence_input(                                          \
      const char*, Tape<T>&, const Var<T>&, const Var<T>&, std::size_t, std::size_t, std::size_t, bool); \
  template Var<T> detail::time_major_input(const Var<T>&, const detail::SequenceLayout&);                \
  template Var<T> detail::batched_h0(const Var<T>&, const detail::SequenceLayout&);                      \
  template RNNOutput<T> detail::to_caller_layout(const Var<T>&, const Var<T>&, const detail::SequenceLayout&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
