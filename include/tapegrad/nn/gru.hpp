#pragma once
// The GRU module, torch.nn.GRU (PyTorch 1.13): a stack of GRU layers, each layer (and direction)
// one fused gru_layer node for the whole sequence (ops/gru.hpp).
#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/nn/rnn.hpp"
#include "tapegrad/ops/gru.hpp"

namespace tapegrad {

// torch.nn.GRU's options (RecurrentOptions in nn/rnn.hpp), with its defaults:
// GRUOptions().num_layers(2).dropout(0.25).bidirectional(true).batch_first(true).
class GRUOptions : public RecurrentOptions<GRUOptions> {};

// A stack of GRU layers, torch.nn.GRU (gate order r, z, n; b_hn inside the reset product):
//   r = σ(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr),  z = σ(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)
//   n = tanh(W_in x_t + b_in + r ⊙ (W_hn h_{t-1} + b_hn)),  h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
// for each layer k, with x_t^(0) = x_t, x_t^(k) = dropout(y_t^(k-1)), y^(k) being layer k's
// output: h^(k), or with bidirectional [h^(k) ; h_rev^(k)], h_rev^(k) the same recurrence run
// from t = T-1 down to 0 with the `_reverse` parameters.
// Parameters (PyTorch's names), per layer k and direction (suffix "" or "_reverse"):
//   weight_ih_l{k} (3H, I_k), weight_hh_l{k} (3H, H), bias_ih_l{k} (3H), bias_hh_l{k} (3H)
// with I_0 = input_size, I_k = D * hidden_size (D = 2 bidirectional, else 1); all drawn from
// U(-1/sqrt(H), 1/sqrt(H)) in registration order. With dropout > 0 the constructor then draws
// one more number from `gen`: the seed of the module's own dropout generator (dropout only
// in training mode; eval forwards write nothing into the module).
template <class T>
class GRU : public Module<T> {
 public:
  // Throws ValueError for hidden_size or num_layers 0, or dropout outside [0, 1] or NaN.
  GRU(std::size_t input_size, std::size_t hidden_size, GRUOptions options = GRUOptions(),
      Generator& gen = default_generator());
  // GRU(input_size, hidden_size, gen): the default options, drawn from gen.
  GRU(std::size_t input_size, std::size_t hidden_size, Generator& gen)
      : GRU(input_size, hidden_size, GRUOptions(), gen) {}

  // x: (T, N, I), or (N, T, I) with batch_first, or unbatched (T, I).
  // h0: (D * num_layers, N, H) ((D * num_layers, H) unbatched), or an undefined Var for zeros;
  // ordered layer by layer, forward direction first, as PyTorch's.
  // Returns output (T, N, D * H) ((N, T, D * H) batch_first, (T, D * H) unbatched) and h_n
  // shaped as h0 (the reverse direction's last state is the one at t = 0).
  // Throws (tape unchanged) ShapeError when x is not 2-D/3-D, its last dim is not input_size,
  // or h0 has the wrong shape (naming the expected and actual shapes); ValueError for an empty
  // sequence; StateError for a Var of another tape or from before reset().
  RNNOutput<T> run(Tape<T>& t, const Var<T>& x, const Var<T>& h0 = Var<T>());
  // run(t, x).output
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;

  std::string type_name() const override { return "GRU"; }
  std::string extra_repr() const override;
  std::size_t input_size() const { return input_size_; }
  std::size_t hidden_size() const { return hidden_size_; }
  const GRUOptions& options() const { return options_; }
  // Layer `layer`'s parameters, of its reverse direction with `reverse` (bidirectional only);
  // ValueError when there is no such layer.
  const RecurrentLayerParams<T>& layer_params(std::size_t layer, bool reverse = false) const;

 private:
  std::size_t input_size_, hidden_size_;
  GRUOptions options_;
  std::vector<RecurrentLayerParams<T>> layers_;  // layer by layer, forward direction first
  Generator dropout_gen_;
};

extern template class GRU<float>;
extern template class GRU<double>;

}  // namespace tapegrad
