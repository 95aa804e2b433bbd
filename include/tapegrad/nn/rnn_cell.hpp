#pragma once
// The recurrent cells, torch.nn.RNNCell, LSTMCell and GRUCell (PyTorch 1.13): one time step,
// for loops written by hand. A call is the fused layer op with T = 1 (rnn_layer, lstm_layer,
// gru_layer: one node for the step's math) between the reshapes that make the step a sequence
// of one: x (N, I) -> (1, N, I) before, the state(s) selected after; 3 nodes per step (4 for
// LSTMCell) where the same step composed from linear, chunk and elementwise ops takes 10 to 16.
//
// Shapes: x (N, I) or unbatched (I); each state (N, H), or (H) for an unbatched x, or an
// undefined Var for zeros. Parameters, as PyTorch names them, drawn from U(-1/sqrt(H), 1/sqrt(H))
// in registration order:
//   weight_ih (G, I), weight_hh (G, H), bias_ih (G), bias_hh (G) (no biases with bias(false))
// with G = H (RNNCell), 4H (LSTMCell, gates i, f, g, o) or 3H (GRUCell, gates r, z, n).
// Bad input throws (tape unchanged): ShapeError when x is not 1-D/2-D, its last dim is not
// input_size, or a state's shape is not the expected one (the message names both shapes);
// StateError for a Var of another tape or from before reset(). The constructors throw
// ValueError for hidden_size 0 (or sizes whose weights overflow), RNNCell also for a
// nonlinearity other than "tanh" / "relu".
#include <cstddef>
#include <string>

#include "tapegrad/core/random.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/rnn.hpp"
#include "tapegrad/ops/rnn.hpp"

namespace tapegrad {

// torch.nn.RNNCell's options: RNNCellOptions().bias(false).nonlinearity("relu").
class RNNCellOptions : public BiasOption<RNNCellOptions>, public NonlinearityOption<RNNCellOptions> {};

// torch.nn.LSTMCell's and GRUCell's options: CellOptions().bias(false).
class CellOptions : public BiasOption<CellOptions> {};
using LSTMCellOptions = CellOptions;
using GRUCellOptions = CellOptions;

// What LSTMCell returns: the new hidden and cell states, shaped as the given ones.
template <class T>
struct LSTMCellState {
  Var<T> h;
  Var<T> c;
};

// What RNNCell, LSTMCell and GRUCell share: their sizes and their parameters.
template <class T>
class RecurrentCell : public Module<T> {
 public:
  std::size_t input_size() const { return input_size_; }
  std::size_t hidden_size() const { return hidden_size_; }

  Parameter<T>* weight_ih = nullptr;
  Parameter<T>* weight_hh = nullptr;
  Parameter<T>* bias_ih = nullptr;  // null without bias
  Parameter<T>* bias_hh = nullptr;

 protected:
  RecurrentCell(std::size_t input_size, std::size_t hidden_size)
      : input_size_(input_size), hidden_size_(hidden_size) {}
  // Checks the sizes (ValueError naming `who`) and registers the parameters (see above), G =
  // gates * hidden_size.
  void init_params(const char* who, std::size_t gates, bool bias, Generator& gen);

  std::size_t input_size_, hidden_size_;
};

// h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh).
template <class T>
class RNNCell : public RecurrentCell<T> {
 public:
  RNNCell(std::size_t input_size, std::size_t hidden_size, RNNCellOptions options = RNNCellOptions(),
          Generator& gen = default_generator());
  // RNNCell(input_size, hidden_size, gen): the default options, drawn from gen.
  RNNCell(std::size_t input_size, std::size_t hidden_size, Generator& gen)
      : RNNCell(input_size, hidden_size, RNNCellOptions(), gen) {}
  // h': (N, H), or (H) for an unbatched x.
  Var<T> run(Tape<T>& t, const Var<T>& x, const Var<T>& h = Var<T>());
  // run(t, x): from a zero state.
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "RNNCell"; }
  std::string extra_repr() const override;

 private:
  RNNCellOptions options_;
  RNNActivation activation_;
};

// [i f g o] = [σ σ tanh σ](x W_ih^T + b_ih + h W_hh^T + b_hh),
// c' = f ⊙ c + i ⊙ g,  h' = o ⊙ tanh(c').
template <class T>
class LSTMCell : public RecurrentCell<T> {
 public:
  LSTMCell(std::size_t input_size, std::size_t hidden_size, LSTMCellOptions options = LSTMCellOptions(),
           Generator& gen = default_generator());
  // LSTMCell(input_size, hidden_size, gen): the default options, drawn from gen.
  LSTMCell(std::size_t input_size, std::size_t hidden_size, Generator& gen)
      : LSTMCell(input_size, hidden_size, LSTMCellOptions(), gen) {}
  // {h', c'}, each (N, H), or (H) for an unbatched x. h and c may be given one without the
  // other (the missing one is zeros; PyTorch takes both or neither).
  LSTMCellState<T> run(Tape<T>& t, const Var<T>& x, const Var<T>& h = Var<T>(), const Var<T>& c = Var<T>());
  // run(t, x).h: from zero states.
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "LSTMCell"; }
  std::string extra_repr() const override;

 private:
  LSTMCellOptions options_;
};

// r = σ(x W_ir^T + b_ir + h W_hr^T + b_hr),  z = σ(x W_iz^T + b_iz + h W_hz^T + b_hz),
// n = tanh(x W_in^T + b_in + r ⊙ (h W_hn^T + b_hn)),  h' = (1 - z) ⊙ n + z ⊙ h.
template <class T>
class GRUCell : public RecurrentCell<T> {
 public:
  GRUCell(std::size_t input_size, std::size_t hidden_size, GRUCellOptions options = GRUCellOptions(),
          Generator& gen = default_generator());
  // GRUCell(input_size, hidden_size, gen): the default options, drawn from gen.
  GRUCell(std::size_t input_size, std::size_t hidden_size, Generator& gen)
      : GRUCell(input_size, hidden_size, GRUCellOptions(), gen) {}
  // h': (N, H), or (H) for an unbatched x.
  Var<T> run(Tape<T>& t, const Var<T>& x, const Var<T>& h = Var<T>());
  // run(t, x): from a zero state.
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "GRUCell"; }
  std::string extra_repr() const override;

 private:
  GRUCellOptions options_;
};

extern template class RecurrentCell<float>;
extern template class RecurrentCell<double>;
extern template class RNNCell<float>;
extern template class RNNCell<double>;
extern template class LSTMCell<float>;
extern template class LSTMCell<double>;
extern template class GRUCell<float>;
extern template class GRUCell<double>;

}  // namespace tapegrad
