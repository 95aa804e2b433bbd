#pragma once
// Layer-normalized LSTM and GRU (Ba, Kiros & Hinton 2016, "Layer Normalization",
// arXiv:1607.06450), single layer, composed per time step of the primitive ops (linear,
// layer_norm, add, mul, sub, sigmoid, tanh, select, slice, stack): no fused kernel. The input
// projection of all steps is one linear over (T*N, I), and its LayerNorm runs over all steps at
// once (LN acts on each row by itself). Input and output layouts are those of RNN
// (nn/rnn.hpp): x (T, N, I), (N, T, I) with batch_first, unbatched (T, I); h0 and c0 of shape
// (1, N, H), (1, H) unbatched, or undefined Vars for zeros.
//
// LN(z; a, b) = (z - mean(z)) / sqrt(var(z) + eps) ⊙ a + b over the features of each row
// (biased variance; the paper's definition has no eps, its reference code and PyTorch put it
// inside the square root, as here).
//
// ---- LNLSTM --------------------------------------------------------------------------------
// The layer-normalized LSTM of the paper's supplementary material (the section on how LN is
// applied in each experiment):
//   (i, f, g, o) = LN_h(W_hh h_{t-1}; a_h, b_h) + LN_x(W_ih x_t; a_x, b_x) + b
//   c_t = σ(f) ⊙ c_{t-1} + σ(i) ⊙ tanh(g)
//   h_t = σ(o) ⊙ tanh(LN_c(c_t; a_c, b_c))
// c_t itself (not its normalization) is carried to the next step and returned as c_n.
// Choices:
// - LN_h and LN_x each normalize the whole 4H-vector of pre-activations, as the paper writes
//   it (LN of W_h h_{t-1}, one vector) and as its authors' code does (github.com/ryankiros/
//   layer-norm, layers.py, lnlstm_layer: gains and shifts of size 4*dim). Per-gate
//   normalization (TensorFlow's LayerNormBasicLSTMCell) is a different model.
// - Gate order: PyTorch's (i, f, g, o), so weight_ih/weight_hh map to nn.LSTM's weight_ih_l0 /
//   weight_hh_l0 row for row. The paper writes (f, i, o, g), its code uses (i, f, o, g); since
//   mean and variance over the 4H features do not depend on their order and every feature has
//   its own gain and shift, the order only relabels the rows: the same family of functions.
// - One bias b (4H): nn.LSTM's bias_ih + bias_hh would be two copies of the same shift. b is
//   itself redundant with the LN shifts (b_h + b_x + b is what enters the gates); the paper's
//   equation keeps it, so do we. (The reference code also adds b to W_ih x before LN_x; that
//   copy is dropped here, following the paper's equation.)
// - h0 and c0 are independent arguments: either may be given without the other (zeros for a
//   missing one). nn.LSTM takes them as one pair.
// Parameters: weight_ih (4H, I), weight_hh (4H, H), bias (4H), ln_x.weight = a_x and ln_x.bias
// = b_x (4H), ln_h.weight, ln_h.bias (4H), ln_c.weight, ln_c.bias (H).
// Init: weight_ih, weight_hh from U(-1/sqrt(H), 1/sqrt(H)) (drawn in that order, as nn.LSTM);
// LN gains 1, LN shifts and b 0, as the authors' code (scale 1, shift 0). (The supplementary's
// sentence on initialization calls alpha additive and beta multiplicative, the reverse of its
// own LN definition, and sets "alpha" to 0 and "beta" to 1: read with the code, gains 1 and
// shifts 0.)
//
// ---- LNGRU ---------------------------------------------------------------------------------
// The LNLSTM's scheme carried over to nn.GRU's equations and parameter layout (gate order
// r, z, n; the hidden-side term of the candidate inside the reset product):
//   A = LN_x(W_ih x_t; a_x, b_x) + b = (A_r, A_z, A_n)       (3H, LN over all 3H)
//   B = LN_h(W_hh h_{t-1}; a_h, b_h)  = (B_r, B_z, B_n)       (3H, LN over all 3H)
//   r = σ(A_r + B_r),  z = σ(A_z + B_z)
//   n = tanh(A_n + r ⊙ B_n)
//   h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}
// nn.GRU's b_hn (inside the reset product) is the n-chunk of b_h, and b_in + b_n is the n-chunk
// of b_x + b; as for the LSTM, one b is kept and is redundant with b_x.
// Where this comes from: the paper's equations (LNLSTM above) are for the LSTM; its GRU experiments
// (order embeddings, skip-thoughts) ran the authors' LN-GRU (ryankiros/layer-norm, layers.py,
// lngru_layer), which also normalizes the input and the recurrent projections separately but
// normalizes the gates' 2H block and the candidate's H block of each on their own (four LNs,
// with separate weight matrices). This module normalizes each whole 3H projection (two LNs),
// as the LNLSTM does its 4H, so that weight_ih/weight_hh are nn.GRU's matrices; it is
// therefore not that code's block layout.
// Parameters: weight_ih (3H, I), weight_hh (3H, H), bias (3H), ln_x.weight, ln_x.bias,
// ln_h.weight, ln_h.bias (3H). Init as LNLSTM.
//
// Both: num_layers is 1 (stack modules for more); no dropout, no bidirectional, no proj_size.
#include <cstddef>
#include <string>

#include "tapegrad/core/random.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/norm.hpp"
#include "tapegrad/nn/rnn.hpp"

namespace tapegrad {

// The options LNLSTM and LNGRU share: eps (their LayerNorms') and batch_first.
// LNLSTMOptions().eps(1e-3).batch_first(true).
template <class Derived>
class LNRecurrentOptions : public BatchFirstOption<Derived>, public EpsOption<Derived> {};

class LNLSTMOptions : public LNRecurrentOptions<LNLSTMOptions> {};
class LNGRUOptions : public LNRecurrentOptions<LNGRUOptions> {};

template <class T>
class LNLSTM : public Module<T> {
 public:
  // Throws ValueError for hidden_size 0, eps negative or not finite, or weight sizes that
  // overflow.
  LNLSTM(std::size_t input_size, std::size_t hidden_size, LNLSTMOptions options = LNLSTMOptions(),
         Generator& gen = default_generator());
  // LNLSTM(input_size, hidden_size, gen): the default options, drawn from gen.
  LNLSTM(std::size_t input_size, std::size_t hidden_size, Generator& gen)
      : LNLSTM(input_size, hidden_size, LNLSTMOptions(), gen) {}
  // x as above; h0, c0: (1, N, H) ((1, H) unbatched) or undefined for zeros. Returns output
  // (every h_t, in x's layout), h_n and c_n ((1, N, H), (1, H) unbatched).
  // Throws (tape unchanged) ShapeError when x is not 2-D/3-D, its last dim is not input_size,
  // or h0 or c0 has the wrong shape (naming the expected and actual shapes); ValueError for an
  // empty sequence; StateError for a Var of another tape or a stale one.
  LSTMOutput<T> run(Tape<T>& t, const Var<T>& x, const Var<T>& h0 = Var<T>(), const Var<T>& c0 = Var<T>());
  // run(t, x).output
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "LNLSTM"; }
  std::string extra_repr() const override;
  std::size_t input_size() const { return input_size_; }
  std::size_t hidden_size() const { return hidden_size_; }
  const LNLSTMOptions& options() const { return options_; }

 private:
  std::size_t input_size_, hidden_size_;
  LNLSTMOptions options_;
  Parameter<T>* w_ih_;
  Parameter<T>* w_hh_;
  Parameter<T>* bias_;
  LayerNorm<T>* ln_x_;
  LayerNorm<T>* ln_h_;
  LayerNorm<T>* ln_c_;
};

template <class T>
class LNGRU : public Module<T> {
 public:
  // Throws as LNLSTM's constructor.
  LNGRU(std::size_t input_size, std::size_t hidden_size, LNGRUOptions options = LNGRUOptions(),
        Generator& gen = default_generator());
  // LNGRU(input_size, hidden_size, gen): the default options, drawn from gen.
  LNGRU(std::size_t input_size, std::size_t hidden_size, Generator& gen)
      : LNGRU(input_size, hidden_size, LNGRUOptions(), gen) {}
  // As RNN::run with num_layers 1: output and h_n.
  RNNOutput<T> run(Tape<T>& t, const Var<T>& x, const Var<T>& h0 = Var<T>());
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "LNGRU"; }
  std::string extra_repr() const override;
  std::size_t input_size() const { return input_size_; }
  std::size_t hidden_size() const { return hidden_size_; }
  const LNGRUOptions& options() const { return options_; }

 private:
  std::size_t input_size_, hidden_size_;
  LNGRUOptions options_;
  Parameter<T>* w_ih_;
  Parameter<T>* w_hh_;
  Parameter<T>* bias_;
  LayerNorm<T>* ln_x_;
  LayerNorm<T>* ln_h_;
};

extern template class LNLSTM<float>;
extern template class LNLSTM<double>;
extern template class LNGRU<float>;
extern template class LNGRU<double>;

}  // namespace tapegrad
