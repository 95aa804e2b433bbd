#include "tapegrad/nn/rnn.hpp"

#include <cmath>

#include "tapegrad/ops/shape.hpp"

namespace tapegrad {

// ---- input handling shared by the recurrent modules ----------------------------------------

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

}  // namespace detail

// ---- RNN -----------------------------------------------------------------------------------

template <class T>
RNN<T>::RNN(std::size_t input_size, std::size_t hidden_size, RNNOptions options, Generator& gen)
    : input_size_(input_size), hidden_size_(hidden_size), options_(std::move(options)) {
  if (hidden_size == 0) throw ValueError("RNN: hidden_size must be greater than zero; got 0");
  if (options_.num_layers() == 0) throw ValueError("RNN: num_layers must be at least 1; got 0");
  // Sizes passed as negative ints, or weights whose number of elements overflows, are errors
  // before anything is allocated.
  checked_size("RNN: input_size", input_size);
  checked_size("RNN: hidden_size", hidden_size);
  checked_size("RNN: num_layers", options_.num_layers());
  const std::size_t first = checked_mul("RNN: hidden_size * input_size", hidden_size, input_size);
  const std::size_t square = checked_mul("RNN: hidden_size * hidden_size", hidden_size, hidden_size);
  checked_add("RNN: the weights' number of elements", first,
              checked_mul("RNN: num_layers * hidden_size * hidden_size", options_.num_layers(), square));
  if (options_.nonlinearity() == "tanh") {
    activation_ = RNNActivation::Tanh;
  } else if (options_.nonlinearity() == "relu") {
    activation_ = RNNActivation::ReLU;
  } else {
    throw ValueError("RNN: unknown nonlinearity '" + options_.nonlinearity() +
                     "'; expected \"tanh\" or \"relu\"");
  }
  // PyTorch's reset_parameters: every parameter from U(-k, k), k = 1/sqrt(hidden_size), drawn
  // in registration order.
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  const std::size_t H = hidden_size;
  for (std::size_t l = 0; l < options_.num_layers(); ++l) {
    const std::string s = "_l" + std::to_string(l);
    const std::size_t in = l == 0 ? input_size : H;
    Layer layer{};
    layer.w_ih = &this->register_parameter("weight_ih" + s, uniform_array<T>({H, in}, -k, k, gen));
    layer.w_hh = &this->register_parameter("weight_hh" + s, uniform_array<T>({H, H}, -k, k, gen));
    if (options_.bias()) {
      layer.b_ih = &this->register_parameter("bias_ih" + s, uniform_array<T>({H}, -k, k, gen));
      layer.b_hh = &this->register_parameter("bias_hh" + s, uniform_array<T>({H}, -k, k, gen));
    }
    layers_.push_back(layer);
  }
}

template <class T>
RNNOutput<T> RNN<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h0_in) {
  const auto layout = detail::check_sequence_input("RNN", t, x, h0_in, input_size_, hidden_size_,
                                                   layers_.size(), options_.batch_first());
  Var<T> h = detail::time_major_input(x, layout);
  const Var<T> h0 = detail::batched_h0(h0_in, layout);
  thread_local std::vector<Var<T>> last;  // reused: a training step allocates nothing
  last.clear();
  for (std::size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    const Var<T> h0_l = h0.defined() ? select(h0, 0, static_cast<std::ptrdiff_t>(l)) : Var<T>();
    h = rnn_layer(h, h0_l, t.param(*L.w_ih), t.param(*L.w_hh), L.b_ih ? t.param(*L.b_ih) : Var<T>(),
                  L.b_hh ? t.param(*L.b_hh) : Var<T>(), activation_);
    last.push_back(select(h, 0, -1));
  }
  return detail::to_caller_layout(h, stack(last, 0), layout);
}

template <class T>
Var<T> RNN<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x).output;
}

template <class T>
std::string RNN<T>::extra_repr() const {
  std::string s = std::to_string(input_size_) + ", " + std::to_string(hidden_size_);
  if (options_.num_layers() != 1) s += ", num_layers=" + std::to_string(options_.num_layers());
  if (options_.nonlinearity() != "tanh") s += ", nonlinearity='" + options_.nonlinearity() + "'";
  if (!options_.bias()) s += ", bias=False";
  if (options_.batch_first()) s += ", batch_first=True";
  return s;
}

#define TAPEGRAD_INSTANTIATE(T)                                                                          \
  template class RNN<T>;                                                                                 \
  template detail::SequenceLayout detail::check_sequence_input(                                          \
      const char*, Tape<T>&, const Var<T>&, const Var<T>&, std::size_t, std::size_t, std::size_t, bool); \
  template Var<T> detail::time_major_input(const Var<T>&, const detail::SequenceLayout&);                \
  template Var<T> detail::batched_h0(const Var<T>&, const detail::SequenceLayout&);                      \
  template RNNOutput<T> detail::to_caller_layout(const Var<T>&, const Var<T>&, const detail::SequenceLayout&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
