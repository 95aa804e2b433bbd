#pragma once
// The Elman RNN module (torch.nn.RNN), what every recurrent module returns, and the options
// RNN, LSTM (nn/lstm.hpp) and GRU (nn/gru.hpp) share (and the option pieces the cells and the
// LayerNorm modules' options are made of). (The input handling every recurrent
// module shares is internal: lib/nn/sequence_input.hpp.)
//
// Each layer (and direction) is one fused rnn_layer node for the whole sequence (ops/rnn.hpp).
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "tapegrad/core/random.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/ops/rnn.hpp"

namespace tapegrad {

// What a recurrent module returns, as torch.nn.RNN's (output, h_n):
//   output  every top-layer state: (T, N, D*H), (N, T, D*H) with batch_first, (T, D*H)
//           unbatched, D = 2 for a bidirectional module (both directions side by side), else 1
//   h_n     every layer's (and direction's) last state: (D*num_layers, N, H), (D*num_layers, H)
//           unbatched (never batch-first, as in PyTorch)
template <class T>
struct RNNOutput {
  Var<T> output;
  Var<T> h_n;
};

// What an LSTM-type module returns, as torch.nn.LSTM's (output, (h_n, c_n)): output and h_n as
// RNNOutput's; c_n every layer's last cell state, shaped as h_n.
template <class T>
struct LSTMOutput {
  Var<T> output;
  Var<T> h_n;
  Var<T> c_n;
};

// The options the recurrent modules' and cells' option classes are made of (RecurrentOptions,
// RNNOptions, RNNCellOptions, CellOptions in nn/rnn_cell.hpp, LNLSTMOptions and LNGRUOptions
// in nn/ln_recurrent.hpp). Each is a base of the final options class, Derived, whose setters
// chain: each returns Derived&. The values are validated by the module's constructor.
template <class Derived>
class BiasOption {
 public:
  // Whether the layers have biases (PyTorch's default: true).
  Derived& bias(bool on) {
    bias_ = on;
    return static_cast<Derived&>(*this);
  }
  bool bias() const { return bias_; }

 private:
  bool bias_ = true;
};

template <class Derived>
class BatchFirstOption {
 public:
  // Input and output as (batch, seq, feature) instead of (seq, batch, feature).
  Derived& batch_first(bool on) {
    batch_first_ = on;
    return static_cast<Derived&>(*this);
  }
  bool batch_first() const { return batch_first_; }

 private:
  bool batch_first_ = false;
};

template <class Derived>
class NonlinearityOption {
 public:
  // "tanh" or "relu".
  Derived& nonlinearity(std::string s) {
    nonlinearity_ = std::move(s);
    return static_cast<Derived&>(*this);
  }
  const std::string& nonlinearity() const { return nonlinearity_; }

 private:
  std::string nonlinearity_ = "tanh";
};

// The options torch.nn.RNN, LSTM and GRU share (torch.nn.RNNBase's), with PyTorch's defaults:
// bias and batch_first, num_layers, dropout, bidirectional. Setters chain and return the
// module's own options class: LSTMOptions().num_layers(2).dropout(0.25).bidirectional(true).
template <class Derived>
class RecurrentOptions : public BiasOption<Derived>, public BatchFirstOption<Derived> {
 public:
  Derived& num_layers(std::size_t n) {
    num_layers_ = n;
    return self();
  }
  // Dropout with probability p (0 <= p <= 1, as PyTorch) on the output of every layer but the
  // last, in training mode only, drawn from the module's own generator.
  Derived& dropout(double p) {
    dropout_ = p;
    return self();
  }
  // Two layers per level: one reads the sequence forward, one from its end (the `_reverse`
  // parameters); each level's output holds both directions' states side by side.
  Derived& bidirectional(bool on) {
    bidirectional_ = on;
    return self();
  }

  std::size_t num_layers() const { return num_layers_; }
  double dropout() const { return dropout_; }
  bool bidirectional() const { return bidirectional_; }

 private:
  Derived& self() { return static_cast<Derived&>(*this); }
  std::size_t num_layers_ = 1;
  double dropout_ = 0.0;
  bool bidirectional_ = false;
};

// torch.nn.RNN's options: RecurrentOptions and the nonlinearity.
// RNNOptions().num_layers(2).nonlinearity("relu").bias(false).
class RNNOptions : public RecurrentOptions<RNNOptions>, public NonlinearityOption<RNNOptions> {};

// The parameters of one direction of one layer of a recurrent module (RNN, LSTM, GRU), named
// as in PyTorch: weight_ih_l{k}[_reverse] (G, I_k), weight_hh_l{k}[_reverse] (G, H), and the
// biases bias_ih_l{k}[_reverse], bias_hh_l{k}[_reverse] (G), null without bias; G = H, 4H or 3H.
template <class T>
struct RecurrentLayerParams {
  Parameter<T>* weight_ih = nullptr;
  Parameter<T>* weight_hh = nullptr;
  Parameter<T>* bias_ih = nullptr;
  Parameter<T>* bias_hh = nullptr;
};

// A stack of Elman RNN layers, torch.nn.RNN:
//   h_t^(k) = act(W_ih_l{k} x_t^(k) + b_ih_l{k} + W_hh_l{k} h_{t-1}^(k) + b_hh_l{k}),
//   x_t^(0) = x_t,  x_t^(k) = dropout(y_t^(k-1)),
// where y^(k) is layer k's output: h^(k), or with bidirectional [h^(k) ; h_rev^(k)], h_rev^(k)
// being the same recurrence run from t = T-1 down to 0 with the `_reverse` parameters.
// Parameters (PyTorch's names, so a PyTorch state_dict loads key for key), per layer k and
// direction (suffix "" or "_reverse"):
//   weight_ih_l{k} (H, I_k), weight_hh_l{k} (H, H), bias_ih_l{k} (H), bias_hh_l{k} (H)
// with I_0 = input_size, I_k = D * hidden_size (D = 2 bidirectional, else 1); all drawn from
// U(-1/sqrt(H), 1/sqrt(H)) in registration order. With dropout > 0 the constructor then draws
// one more number from `gen`: the seed of the module's own dropout generator.
// Each layer and direction is one fused rnn_layer node for the whole sequence (ops/rnn.hpp).
// Not supported (PyTorch has it): proj_size (LSTM only in PyTorch anyway).
template <class T>
class RNN : public Module<T> {
 public:
  // Throws ValueError for hidden_size or num_layers 0, dropout outside [0, 1] or NaN, or a
  // nonlinearity other than "tanh" / "relu".
  RNN(std::size_t input_size, std::size_t hidden_size, RNNOptions options = RNNOptions(),
      Generator& gen = default_generator());
  // RNN(input_size, hidden_size, gen): the default options, drawn from gen.
  RNN(std::size_t input_size, std::size_t hidden_size, Generator& gen)
      : RNN(input_size, hidden_size, RNNOptions(), gen) {}

  // x: (T, N, I), or (N, T, I) with batch_first, or unbatched (T, I).
  // h0: (D * num_layers, N, H) ((D * num_layers, H) unbatched), or an undefined Var for zeros;
  // ordered layer by layer, forward direction first, as PyTorch's.
  // Returns output (T, N, D * H) ((N, T, D * H) batch_first, (T, D * H) unbatched) and h_n
  // shaped as h0, each layer's and direction's last state (the reverse direction's is at t = 0).
  // Throws (tape unchanged) ShapeError when x is not 2-D/3-D, its last dim is not
  // input_size, or h0 has the wrong shape (the message names the expected and actual
  // shapes); ValueError for an empty sequence.
  RNNOutput<T> run(Tape<T>& t, const Var<T>& x, const Var<T>& h0 = Var<T>());
  // run(t, x).output
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;

  std::string type_name() const override { return "RNN"; }
  std::string extra_repr() const override;
  std::size_t input_size() const { return input_size_; }
  std::size_t hidden_size() const { return hidden_size_; }
  const RNNOptions& options() const { return options_; }
  // Layer `layer`'s parameters, of its reverse direction with `reverse` (bidirectional only);
  // ValueError when there is no such layer.
  const RecurrentLayerParams<T>& layer_params(std::size_t layer, bool reverse = false) const;

 private:
  std::size_t input_size_, hidden_size_;
  RNNOptions options_;
  RNNActivation activation_;
  std::vector<RecurrentLayerParams<T>> layers_;  // layer by layer, forward direction first
  Generator dropout_gen_;
};

extern template class RNN<float>;
extern template class RNN<double>;

}  // namespace tapegrad
