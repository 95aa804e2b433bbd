#include "tapegrad/nn/gru.hpp"

#include "tapegrad/ops/shape.hpp"

#include "recurrent_stack.hpp"
#include "sequence_input.hpp"

namespace tapegrad {

namespace {
detail::StackConfig gru_config(std::size_t input_size, std::size_t hidden_size, const GRUOptions& o) {
  return detail::stack_config("GRU", 3, input_size, hidden_size, o);
}
}  // namespace

template <class T>
GRU<T>::GRU(std::size_t input_size, std::size_t hidden_size, GRUOptions options, Generator& gen)
    : input_size_(input_size), hidden_size_(hidden_size), options_(options) {
  const detail::StackConfig c = gru_config(input_size, hidden_size, options_);
  layers_ = detail::init_stack<T>(
      c,
      [this](const std::string& name, xt::xarray<T> v) {
        return &this->register_parameter(name, std::move(v));
      },
      gen, dropout_gen_);
}

template <class T>
RNNOutput<T> GRU<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h0) {
  const detail::StackConfig c = gru_config(input_size_, hidden_size_, options_);
  const auto layout = detail::check_sequence_input("GRU", t, x, h0, input_size_, hidden_size_, c.num_states(),
                                                   options_.batch_first());
  const auto layer = [&t](const Var<T>& in, const Var<T>& h0_k, const Var<T>&,
                          const RecurrentLayerParams<T>& p, bool reverse) {
    const Var<T> y =
        gru_layer(in, h0_k, t.param(*p.weight_ih), t.param(*p.weight_hh), detail::param_or_none(t, p.bias_ih),
                  detail::param_or_none(t, p.bias_hh), reverse);
    return detail::single_state_run(y, reverse);
  };
  const LSTMOutput<T> r =
      detail::run_stack(c, layers_, detail::time_major_input(x, layout), detail::batched_h0(h0, layout),
                        Var<T>(), this->is_training(), dropout_gen_, layer);
  return detail::to_caller_layout(r.output, r.h_n, layout);
}

template <class T>
Var<T> GRU<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x).output;
}

template <class T>
const RecurrentLayerParams<T>& GRU<T>::layer_params(std::size_t layer, bool reverse) const {
  return detail::stack_layer(gru_config(input_size_, hidden_size_, options_), layers_, layer, reverse);
}

template <class T>
std::string GRU<T>::extra_repr() const {
  return detail::stack_repr(gru_config(input_size_, hidden_size_, options_));
}

template class GRU<float>;
template class GRU<double>;

}  // namespace tapegrad
