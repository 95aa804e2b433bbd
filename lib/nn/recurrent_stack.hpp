#pragma once
// Internal to lib/nn: what the stacked recurrent modules (RNN, LSTM, GRU) share: checking their
// configuration, registering their parameters in PyTorch's order, and running the stack of
// layers (both directions, dropout between layers, h_n and c_n gathered as PyTorch orders them).
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

#include "tapegrad/nn/rnn.hpp"
#include "tapegrad/ops/dropout.hpp"
#include "tapegrad/ops/shape.hpp"

namespace tapegrad::detail {

// A recurrent module's configuration: who it is, its sizes and its options.
struct StackConfig {
  const char* who = "";   // "LSTM", for the messages
  std::size_t gates = 1;  // W_ih has gates * hidden_size rows
  std::size_t input_size = 0, hidden_size = 0, num_layers = 1;
  bool bias = true, batch_first = false, bidirectional = false;
  double dropout = 0.0;
  std::size_t directions() const { return bidirectional ? 2 : 1; }
  std::size_t num_states() const { return num_layers * directions(); }  // h_n's first dim
};

template <class Options>
StackConfig stack_config(const char* who, std::size_t gates, std::size_t input_size, std::size_t hidden_size,
                         const Options& o) {
  StackConfig c;
  c.who = who, c.gates = gates, c.input_size = input_size, c.hidden_size = hidden_size;
  c.num_layers = o.num_layers(), c.bias = o.bias(), c.batch_first = o.batch_first();
  c.bidirectional = o.bidirectional(), c.dropout = o.dropout();
  return c;
}

// ValueError naming the value for hidden_size 0, num_layers 0, dropout outside [0, 1] or NaN,
// or sizes whose weights' element counts overflow (checked before anything is allocated).
void check_stack_config(const StackConfig& c);

// Registers every layer's and direction's parameters through `reg` (the module's
// register_parameter), in PyTorch's order (layer by layer; weight_ih, weight_hh, bias_ih,
// bias_hh; the forward direction, then "_reverse"), each drawn from U(-k, k), k = 1/sqrt(H).
template <class T>
using RegisterParameter = std::function<Parameter<T>*(const std::string&, xt::xarray<T>)>;
template <class T>
std::vector<RecurrentLayerParams<T>> make_stack_params(const StackConfig& c, const RegisterParameter<T>& reg,
                                                       Generator& gen);

// The seed of a module's dropout generator: one draw from gen when dropout > 0 (nothing is
// drawn otherwise, so a model without dropout initializes as before).
std::uint64_t dropout_seed(const StackConfig& c, Generator& gen);

// What the constructors of RNN, LSTM and GRU do: check_stack_config, make_stack_params, then
// dropout_gen seeded with dropout_seed. Returns the layers' parameters.
template <class T>
std::vector<RecurrentLayerParams<T>> init_stack(const StackConfig& c, const RegisterParameter<T>& reg,
                                                Generator& gen, Generator& dropout_gen) {
  check_stack_config(c);
  std::vector<RecurrentLayerParams<T>> layers = make_stack_params<T>(c, reg, gen);
  dropout_gen.seed(dropout_seed(c, gen));
  return layers;
}

// params[layer * D + reverse], or a ValueError naming the layer.
template <class T>
const RecurrentLayerParams<T>& stack_layer(const StackConfig& c,
                                           const std::vector<RecurrentLayerParams<T>>& params,
                                           std::size_t layer, bool reverse);

// "3, 4, num_layers=2, bias=False, batch_first=True, dropout=0.5, bidirectional=True", as
// PyTorch prints it; `extra` ("", or ", nonlinearity='relu'") follows num_layers.
std::string stack_repr(const StackConfig& c, const std::string& extra = "");

// What one direction of one layer gives: its states (T, N, H), its last state (N, H) and, for
// an LSTM, its last cell state (else undefined).
template <class T>
struct LayerRun {
  Var<T> output, h_n, c_n;
};

// The LayerRun of a layer op whose result is its states y (T, N, H) (rnn_layer, gru_layer):
// the last state is y's row T - 1, or row 0 for the reverse direction.
template <class T>
LayerRun<T> single_state_run(const Var<T>& y, bool reverse) {
  return {y, select(y, 0, reverse ? 0 : -1), Var<T>()};
}

// Runs the stack over the time-major x (T, N, I). h0 and c0 are (num_states, N, H) or
// undefined. layer(input, h0_k, c0_k, params_k, reverse) runs one direction of one layer.
// Returns the time-major output (T, N, D * H), h_n and c_n (num_states, N, H) (c_n undefined
// unless the layers give cell states).
template <class T, class Layer>
LSTMOutput<T> run_stack(const StackConfig& c, const std::vector<RecurrentLayerParams<T>>& params,
                        const Var<T>& x, const Var<T>& h0, const Var<T>& c0, bool training, Generator& gen,
                        Layer&& layer) {
  thread_local std::vector<Var<T>> h_n, c_n, directions;  // reused: a step allocates nothing
  h_n.clear();
  c_n.clear();
  Var<T> input = x;
  const std::size_t D = c.directions();
  for (std::size_t l = 0; l < c.num_layers; ++l) {
    directions.clear();
    for (std::size_t dir = 0; dir < D; ++dir) {
      const auto k = static_cast<std::ptrdiff_t>(l * D + dir);
      const Var<T> h0_k = h0.defined() ? select(h0, 0, k) : Var<T>();
      const Var<T> c0_k = c0.defined() ? select(c0, 0, k) : Var<T>();
      const LayerRun<T> r = layer(input, h0_k, c0_k, params[l * D + dir], dir == 1);
      directions.push_back(r.output);
      h_n.push_back(r.h_n);
      if (r.c_n.defined()) c_n.push_back(r.c_n);
    }
    input = D == 1 ? directions[0] : concat(directions, 2);
    if (training && c.dropout > 0 && l + 1 < c.num_layers) input = dropout(input, c.dropout, true, gen);
  }
  return {input, stack(h_n, 0), c_n.empty() ? Var<T>() : stack(c_n, 0)};
}

}  // namespace tapegrad::detail
