#pragma once
// The LSTM module, torch.nn.LSTM (PyTorch 1.13): a stack of LSTM layers, each layer (and
// direction) one fused lstm_layer node for the whole sequence (ops/lstm.hpp).
#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/nn/rnn.hpp"
#include "tapegrad/ops/lstm.hpp"

namespace tapegrad {

// torch.nn.LSTM's options (RecurrentOptions in nn/rnn.hpp), with its defaults:
// LSTMOptions().num_layers(2).dropout(0.25).bidirectional(true).batch_first(true).
class LSTMOptions : public RecurrentOptions<LSTMOptions> {};

// A stack of LSTM layers, torch.nn.LSTM (gate order i, f, g, o):
//   [i f g o] = [σ σ tanh σ](W_ih_l{k} x_t^(k) + b_ih_l{k} + W_hh_l{k} h_{t-1}^(k) + b_hh_l{k})
//   c_t^(k) = f ⊙ c_{t-1}^(k) + i ⊙ g,   h_t^(k) = o ⊙ tanh(c_t^(k))
//   x_t^(0) = x_t,  x_t^(k) = dropout(y_t^(k-1)),
// where y^(k) is layer k's output: h^(k), or with bidirectional [h^(k) ; h_rev^(k)], h_rev^(k)
// being the same recurrence run from t = T-1 down to 0 with the `_reverse` parameters.
// Parameters (PyTorch's names, so a PyTorch state_dict loads key for key), per layer k and
// direction (suffix "" or "_reverse"):
//   weight_ih_l{k} (4H, I_k), weight_hh_l{k} (4H, H), bias_ih_l{k} (4H), bias_hh_l{k} (4H)
// with I_0 = input_size, I_k = D * hidden_size (D = 2 bidirectional, else 1); all drawn from
// U(-1/sqrt(H), 1/sqrt(H)) in registration order. With dropout > 0 the constructor then draws
// one more number from `gen`: the seed of the module's own dropout generator (dropout only
// in training mode; eval forwards write nothing into the module).
// Differences from PyTorch: h0 and c0 may be given one without the other (the missing one is
// zeros; PyTorch takes both or neither). Not supported: proj_size.
template <class T>
class LSTM : public Module<T> {
 public:
  // Throws ValueError for hidden_size or num_layers 0, or dropout outside [0, 1] or NaN.
  LSTM(std::size_t input_size, std::size_t hidden_size, LSTMOptions options = LSTMOptions(),
       Generator& gen = default_generator());
  // LSTM(input_size, hidden_size, gen): the default options, drawn from gen.
  LSTM(std::size_t input_size, std::size_t hidden_size, Generator& gen)
      : LSTM(input_size, hidden_size, LSTMOptions(), gen) {}

  // x: (T, N, I), or (N, T, I) with batch_first, or unbatched (T, I).
  // h0, c0: (D * num_layers, N, H) ((D * num_layers, H) unbatched), each an undefined Var for
  // zeros; ordered layer by layer, forward direction first, as PyTorch's.
  // Returns output (T, N, D * H) ((N, T, D * H) batch_first, (T, D * H) unbatched), and h_n,
  // c_n shaped as h0: each layer's and direction's last states (the reverse direction's are
  // those at t = 0).
  // Throws (tape unchanged) ShapeError when x is not 2-D/3-D, its last dim is not input_size,
  // or h0 or c0 has the wrong shape (naming the expected and actual shapes); ValueError for
  // an empty sequence; StateError for a Var of another tape or from before reset().
  LSTMOutput<T> run(Tape<T>& t, const Var<T>& x, const Var<T>& h0 = Var<T>(), const Var<T>& c0 = Var<T>());
  // run(t, x).output
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;

  std::string type_name() const override { return "LSTM"; }
  std::string extra_repr() const override;
  std::size_t input_size() const { return input_size_; }
  std::size_t hidden_size() const { return hidden_size_; }
  const LSTMOptions& options() const { return options_; }
  // Layer `layer`'s parameters, of its reverse direction with `reverse` (bidirectional only);
  // ValueError when there is no such layer.
  const RecurrentLayerParams<T>& layer_params(std::size_t layer, bool reverse = false) const;

 private:
  std::size_t input_size_, hidden_size_;
  LSTMOptions options_;
  std::vector<RecurrentLayerParams<T>> layers_;  // layer by layer, forward direction first
  Generator dropout_gen_;
};

extern template class LSTM<float>;
extern template class LSTM<double>;

}  // namespace tapegrad
