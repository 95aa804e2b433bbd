#include "tapegrad/nn/rnn.hpp"

#include <cmath>

#include "tapegrad/ops/shape.hpp"

#include "recurrent_stack.hpp"
#include "sequence_input.hpp"

namespace tapegrad {

// ---- RNN -----------------------------------------------------------------------------------

namespace {
detail::StackConfig rnn_config(std::size_t input_size, std::size_t hidden_size, const RNNOptions& o) {
  return detail::stack_config("RNN", 1, input_size, hidden_size, o);
}
}  // namespace

template <class T>
RNN<T>::RNN(std::size_t input_size, std::size_t hidden_size, RNNOptions options, Generator& gen)
    : input_size_(input_size), hidden_size_(hidden_size), options_(std::move(options)) {
  const detail::StackConfig c = rnn_config(input_size, hidden_size, options_);
  detail::check_stack_config(c);  // (before the nonlinearity: init_stack checks it again)
  activation_ = detail::rnn_activation("RNN", options_.nonlinearity());
  layers_ = detail::init_stack<T>(
      c,
      [this](const std::string& name, xt::xarray<T> v) {
        return &this->register_parameter(name, std::move(v));
      },
      gen, dropout_gen_);
}

template <class T>
RNNOutput<T> RNN<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h0_in) {
  const detail::StackConfig c = rnn_config(input_size_, hidden_size_, options_);
  const auto layout = detail::check_sequence_input("RNN", t, x, h0_in, input_size_, hidden_size_,
                                                   c.num_states(), options_.batch_first());
  const auto layer = [&t, act = activation_](const Var<T>& in, const Var<T>& h0, const Var<T>&,
                                             const RecurrentLayerParams<T>& p, bool reverse) {
    const Var<T> y =
        rnn_layer(in, h0, t.param(*p.weight_ih), t.param(*p.weight_hh), detail::param_or_none(t, p.bias_ih),
                  detail::param_or_none(t, p.bias_hh), act, reverse);
    return detail::single_state_run(y, reverse);
  };
  const LSTMOutput<T> r =
      detail::run_stack(c, layers_, detail::time_major_input(x, layout), detail::batched_h0(h0_in, layout),
                        Var<T>(), this->is_training(), dropout_gen_, layer);
  return detail::to_caller_layout(r.output, r.h_n, layout);
}

template <class T>
Var<T> RNN<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x).output;
}

template <class T>
const RecurrentLayerParams<T>& RNN<T>::layer_params(std::size_t layer, bool reverse) const {
  return detail::stack_layer(rnn_config(input_size_, hidden_size_, options_), layers_, layer, reverse);
}

template <class T>
std::string RNN<T>::extra_repr() const {
  const std::string nl =
      options_.nonlinearity() != "tanh" ? ", nonlinearity='" + options_.nonlinearity() + "'" : "";
  return detail::stack_repr(rnn_config(input_size_, hidden_size_, options_), nl);
}

template class RNN<float>;
template class RNN<double>;

}  // namespace tapegrad
