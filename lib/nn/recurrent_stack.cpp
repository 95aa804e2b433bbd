#include "recurrent_stack.hpp"

#include "tapegrad/nn/repr.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace tapegrad::detail {

void check_stack_config(const StackConfig& c) {
  const std::string who(c.who);
  if (c.hidden_size == 0) throw ValueError(who + ": hidden_size must be greater than zero; got 0");
  if (c.num_layers == 0) throw ValueError(who + ": num_layers must be at least 1; got 0");
  if (!(c.dropout >= 0 && c.dropout <= 1)) {
    throw ValueError(who +
                     ": dropout should be a number in range [0, 1] representing the probability of an "
                     "element being zeroed; got " +
                     std::to_string(c.dropout));
  }
  // Sizes passed as negative ints, or weights whose number of elements overflows, are errors
  // before anything is allocated.
  checked_size((who + ": input_size").c_str(), c.input_size);
  checked_size((who + ": hidden_size").c_str(), c.hidden_size);
  checked_size((who + ": num_layers").c_str(), c.num_layers);
  const std::size_t rows = checked_mul((who + ": gates * hidden_size").c_str(), c.gates, c.hidden_size);
  const std::size_t wide =
      checked_mul((who + ": directions * hidden_size").c_str(), c.directions(), c.hidden_size);
  const std::size_t per_layer = checked_add((who + ": a layer's input width").c_str(), wide, c.hidden_size);
  const std::size_t first = checked_mul(
      (who + ": the first layer's weights, gates * hidden_size * (input_size + hidden_size)").c_str(), rows,
      checked_add((who + ": input_size + hidden_size").c_str(), c.input_size, c.hidden_size));
  const std::size_t rest = checked_mul(
      (who + ": the other layers' weights").c_str(), c.num_layers - 1,
      checked_mul((who + ": a layer's weights, gates * hidden_size * (directions + 1) * hidden_size").c_str(),
                  rows, per_layer));
  checked_mul((who + ": the weights' number of elements").c_str(), c.directions(),
              checked_add((who + ": the weights' number of elements").c_str(), first, rest));
}

template <class T>
std::vector<RecurrentLayerParams<T>> make_stack_params(const StackConfig& c, const RegisterParameter<T>& reg,
                                                       Generator& gen) {
  const std::size_t H = c.hidden_size, G = c.gates * H;
  const double k = 1.0 / std::sqrt(static_cast<double>(H));
  std::vector<RecurrentLayerParams<T>> params;
  for (std::size_t l = 0; l < c.num_layers; ++l) {
    const std::size_t in = l == 0 ? c.input_size : c.directions() * H;
    for (std::size_t dir = 0; dir < c.directions(); ++dir) {
      const std::string s = "_l" + std::to_string(l) + (dir == 1 ? "_reverse" : "");
      RecurrentLayerParams<T> p;
      p.weight_ih = reg("weight_ih" + s, uniform_array<T>({G, in}, -k, k, gen));
      p.weight_hh = reg("weight_hh" + s, uniform_array<T>({G, H}, -k, k, gen));
      if (c.bias) {
        p.bias_ih = reg("bias_ih" + s, uniform_array<T>({G}, -k, k, gen));
        p.bias_hh = reg("bias_hh" + s, uniform_array<T>({G}, -k, k, gen));
      }
      params.push_back(p);
    }
  }
  return params;
}

std::uint64_t dropout_seed(const StackConfig& c, Generator& gen) {
  return c.dropout > 0 ? gen.engine()() : 0;
}

template <class T>
const RecurrentLayerParams<T>& stack_layer(const StackConfig& c,
                                           const std::vector<RecurrentLayerParams<T>>& params,
                                           std::size_t layer, bool reverse) {
  if (layer >= c.num_layers || (reverse && !c.bidirectional)) {
    throw ValueError(std::string(c.who) + ": no layer " + std::to_string(layer) +
                     (reverse ? " (reverse)" : "") + " in a " + (c.bidirectional ? "bidirectional " : "") +
                     "module of " + std::to_string(c.num_layers) + " layers");
  }
  return params[layer * c.directions() + (reverse ? 1 : 0)];
}

std::string stack_repr(const StackConfig& c, const std::string& extra) {
  std::string s = std::to_string(c.input_size) + ", " + std::to_string(c.hidden_size);
  if (c.num_layers != 1) s += ", num_layers=" + std::to_string(c.num_layers);
  s += extra;
  if (!c.bias) s += ", bias=False";
  if (c.batch_first) s += ", batch_first=True";
  if (c.dropout != 0) s += ", dropout=" + python_float(c.dropout);
  if (c.bidirectional) s += ", bidirectional=True";
  return s;
}

#define TAPEGRAD_INSTANTIATE(T)                                                                             \
  template std::vector<RecurrentLayerParams<T>> make_stack_params(const StackConfig&,                       \
                                                                  const RegisterParameter<T>&, Generator&); \
  template const RecurrentLayerParams<T>& stack_layer(                                                      \
      const StackConfig&, const std::vector<RecurrentLayerParams<T>>&, std::size_t, bool);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad::detail
