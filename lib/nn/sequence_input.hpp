#pragma once
// Internal to lib/nn: the input handling every recurrent module shares (RNN, LSTM, GRU, LNRNN,
// BNRNN, and the cells' callers): checking x and h0 against the module's sizes and layout,
// time-major views of them, and the way back to the caller's layout; with the small pieces
// the modules and cells share around their layer ops.
#include <cstddef>
#include <string>

#include "tapegrad/nn/rnn.hpp"

namespace tapegrad {

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

// The parameter's value on t, or an undefined Var for a null one (an absent bias).
template <class T>
Var<T> param_or_none(Tape<T>& t, Parameter<T>* p) {
  return p ? t.param(*p) : Var<T>();
}

// "tanh" -> Tanh, "relu" -> ReLU; anything else a ValueError naming `who` and the name.
RNNActivation rnn_activation(const char* who, const std::string& nonlinearity);

}  // namespace detail

}  // namespace tapegrad
