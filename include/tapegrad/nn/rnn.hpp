#pragma once
// The Elman RNN module (torch.nn.RNN), and the input handling shared by every recurrent
// module (RNN here, LNRNN and BNRNN in nn/norm_rnn.hpp).
//
// Each layer is one fused rnn_layer node for the whole sequence (ops/rnn.hpp).
#include <cstddef>
#include <string>
#include <vector>

#include "tapegrad/core/random.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/ops/rnn.hpp"

namespace tapegrad {

// What a recurrent module returns, as torch.nn.RNN's (output, h_n):
//   output  every top-layer state: (T, N, H), (N, T, H) with batch_first, (T, H) unbatched
//   h_n     every layer's last state: (num_layers, N, H), (num_layers, H) unbatched
//           (never batch-first, as in PyTorch)
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

// torch.nn.RNN's options, with its defaults. Setters chain: RNNOptions().num_layers(2).bias(false).
// The values are validated by the RNN constructor (ValueError).
class RNNOptions {
 public:
  RNNOptions& num_layers(std::size_t n) {
    num_layers_ = n;
    return *this;
  }
  // "tanh" or "relu".
  RNNOptions& nonlinearity(std::string s) {
    nonlinearity_ = std::move(s);
    return *this;
  }
  RNNOptions& bias(bool on) {
    bias_ = on;
    return *this;
  }
  // Input and output as (batch, seq, feature) instead of (seq, batch, feature).
  RNNOptions& batch_first(bool on) {
    batch_first_ = on;
    return *this;
  }

  std::size_t num_layers() const { return num_layers_; }
  const std::string& nonlinearity() const { return nonlinearity_; }
  bool bias() const { return bias_; }
  bool batch_first() const { return batch_first_; }

 private:
  std::size_t num_layers_ = 1;
  std::string nonlinearity_ = "tanh";
  bool bias_ = true;
  bool batch_first_ = false;
};

// A stack of Elman RNN layers, torch.nn.RNN:
//   h_t^(k) = act(W_ih_l{k} x_t^(k) + b_ih_l{k} + W_hh_l{k} h_{t-1}^(k) + b_hh_l{k}),
//   x_t^(0) = x_t,  x_t^(k) = h_t^(k-1).
// Parameters (PyTorch's names, so a PyTorch state_dict loads key for key), per layer k:
//   weight_ih_l{k} (H, I_k), weight_hh_l{k} (H, H), bias_ih_l{k} (H), bias_hh_l{k} (H)
// with I_0 = input_size, I_k = hidden_size; all drawn from U(-1/sqrt(H), 1/sqrt(H)).
// Not supported (PyTorch has them): dropout between layers, bidirectional, proj_size.
template <class T>
class RNN : public Module<T> {
 public:
  // Throws ValueError for hidden_size or num_layers 0, or a nonlinearity other than
  // "tanh" / "relu".
  RNN(std::size_t input_size, std::size_t hidden_size, RNNOptions options = RNNOptions(),
      Generator& gen = default_generator());

  // x: (T, N, I), or (N, T, I) with batch_first, or unbatched (T, I).
  // h0: (num_layers, N, H) ((num_layers, H) unbatched), or an undefined Var for zeros.
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

 private:
  struct Layer {
    Parameter<T>* w_ih;
    Parameter<T>* w_hh;
    Parameter<T>* b_ih;  // null without bias
    Parameter<T>* b_hh;
  };
  std::size_t input_size_, hidden_size_;
  RNNOptions options_;
  RNNActivation activation_;
  std::vector<Layer> layers_;
};

namespace detail {

// The layout of a recurrent module's input, found by check_sequence_input.
struct SequenceLayout {
  bool batched = true;  // false for an unbatched (T, I) input
  bool batch_first = false;
  std::size_t T = 0, N = 0;
};

// Validates x and h0 for module `who` (a ShapeError/ValueError/StateError naming the shapes;
// nothing is recorded). h0 may be undefined.
template <class T>
SequenceLayout check_sequence_input(const char* who, Tape<T>& t, const Var<T>& x, const Var<T>& h0,
                                    std::size_t input_size, std::size_t hidden_size, std::size_t num_layers,
                                    bool batch_first);
// x as (T, N, I) and h0 as (num_layers, N, H) (undefined stays undefined).
template <class T>
Var<T> time_major_input(const Var<T>& x, const SequenceLayout& layout);
template <class T>
Var<T> batched_h0(const Var<T>& h0, const SequenceLayout& layout);
// From the time-major output (T, N, H) and h_n (L, N, H) back to the caller's layout.
template <class T>
RNNOutput<T> to_caller_layout(const Var<T>& output, const Var<T>& h_n, const SequenceLayout& layout);

}  // namespace detail

extern template class RNN<float>;
extern template class RNN<double>;

}  // namespace tapegrad
