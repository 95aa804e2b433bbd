#include "tapegrad/nn/lstm.hpp"

#include "tapegrad/ops/shape.hpp"

#include "recurrent_stack.hpp"
#include "sequence_input.hpp"

namespace tapegrad {

namespace {

detail::StackConfig lstm_config(std::size_t input_size, std::size_t hidden_size, const LSTMOptions& o) {
  return detail::stack_config("LSTM", 4, input_size, hidden_size, o);
}

// c0 as check_sequence_input checks h0: (num_states, N, H), (num_states, H) unbatched.
template <class T>
void check_c0(const Tape<T>& t, const Var<T>& x, const Var<T>& c0, const detail::SequenceLayout& l,
              std::size_t num_states, std::size_t hidden_size) {
  if (!c0.defined()) return;
  t.check(c0, "LSTM");
  const Shape want = l.batched ? Shape{num_states, l.N, hidden_size} : Shape{num_states, hidden_size};
  if (t.shape(c0) != want) {
    throw ShapeError("LSTM: expected cell state size " + shape_str(want) + " for input of shape " +
                     shape_str(t.shape(x)) + ", got c0 of shape " + shape_str(t.shape(c0)) +
                     " (c0 is (D*num_layers, batch, hidden_size)" +
                     (l.batched ? "" : ", or (D*num_layers, hidden_size) for an unbatched input") + ")");
  }
}

}  // namespace

template <class T>
LSTM<T>::LSTM(std::size_t input_size, std::size_t hidden_size, LSTMOptions options, Generator& gen)
    : input_size_(input_size), hidden_size_(hidden_size), options_(options) {
  const detail::StackConfig c = lstm_config(input_size, hidden_size, options_);
  layers_ = detail::init_stack<T>(
      c,
      [this](const std::string& name, xt::xarray<T> v) {
        return &this->register_parameter(name, std::move(v));
      },
      gen, dropout_gen_);
}

template <class T>
LSTMOutput<T> LSTM<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h0, const Var<T>& c0) {
  const detail::StackConfig c = lstm_config(input_size_, hidden_size_, options_);
  const auto layout = detail::check_sequence_input("LSTM", t, x, h0, input_size_, hidden_size_,
                                                   c.num_states(), options_.batch_first());
  check_c0(t, x, c0, layout, c.num_states(), hidden_size_);
  const auto layer = [&t](const Var<T>& in, const Var<T>& h0_k, const Var<T>& c0_k,
                          const RecurrentLayerParams<T>& p, bool reverse) {
    const Var<T> y =
        lstm_layer(in, h0_k, c0_k, t.param(*p.weight_ih), t.param(*p.weight_hh),
                   detail::param_or_none(t, p.bias_ih), detail::param_or_none(t, p.bias_hh), reverse);
    const LSTMLayerParts<T> parts = split_lstm_layer(y, reverse);
    return detail::LayerRun<T>{parts.output, parts.h_n, parts.c_n};
  };
  const LSTMOutput<T> r =
      detail::run_stack(c, layers_, detail::time_major_input(x, layout), detail::batched_h0(h0, layout),
                        detail::batched_h0(c0, layout), this->is_training(), dropout_gen_, layer);
  const RNNOutput<T> o = detail::to_caller_layout(r.output, r.h_n, layout);
  return {o.output, o.h_n, layout.batched ? r.c_n : squeeze(r.c_n, 1)};
}

template <class T>
Var<T> LSTM<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x).output;
}

template <class T>
const RecurrentLayerParams<T>& LSTM<T>::layer_params(std::size_t layer, bool reverse) const {
  return detail::stack_layer(lstm_config(input_size_, hidden_size_, options_), layers_, layer, reverse);
}

template <class T>
std::string LSTM<T>::extra_repr() const {
  return detail::stack_repr(lstm_config(input_size_, hidden_size_, options_));
}

template class LSTM<float>;
template class LSTM<double>;

}  // namespace tapegrad
