#include "tapegrad/nn/rnn_cell.hpp"

#include <cmath>
#include <initializer_list>
#include <utility>

#include "tapegrad/nn/rnn.hpp"
#include "tapegrad/ops/gru.hpp"
#include "tapegrad/ops/lstm.hpp"
#include "tapegrad/ops/shape.hpp"

#include "sequence_input.hpp"

namespace tapegrad {

namespace {

// Checks the sizes (ValueError) and registers weight_ih (G, I), weight_hh (G, H) and, with
// bias, bias_ih, bias_hh (G) through `reg`, G = gates * H, each from U(-k, k), k = 1/sqrt(H).
template <class T, class Reg>
RecurrentLayerParams<T> make_cell_params(const char* who, std::size_t I, std::size_t H, std::size_t gates,
                                         bool bias, Reg&& reg, Generator& gen) {
  const std::string name(who);
  if (H == 0) throw ValueError(name + ": hidden_size must be greater than zero; got 0");
  checked_size((name + ": input_size").c_str(), I);
  checked_size((name + ": hidden_size").c_str(), H);
  const std::size_t G = checked_mul((name + ": gates * hidden_size").c_str(), gates, H);
  checked_mul((name + ": the weights' number of elements").c_str(), G,
              checked_add((name + ": input_size + hidden_size").c_str(), I, H));
  const double k = 1.0 / std::sqrt(static_cast<double>(H));
  RecurrentLayerParams<T> p;
  p.weight_ih = reg("weight_ih", uniform_array<T>({G, I}, -k, k, gen));
  p.weight_hh = reg("weight_hh", uniform_array<T>({G, H}, -k, k, gen));
  if (bias) {
    p.bias_ih = reg("bias_ih", uniform_array<T>({G}, -k, k, gen));
    p.bias_hh = reg("bias_hh", uniform_array<T>({G}, -k, k, gen));
  }
  return p;
}

struct CellLayout {
  bool batched = true;
  std::size_t N = 1;
};

// Validates x and the given states (named "h", "c") for cell `who`; nothing is recorded.
template <class T>
CellLayout check_cell_input(const char* who, Tape<T>& t, const Var<T>& x, std::size_t I, std::size_t H,
                            std::initializer_list<std::pair<const char*, const Var<T>*>> states) {
  const std::string name(who);
  t.check(x, who);
  const Shape& sx = t.shape(x);
  if (sx.size() != 1 && sx.size() != 2) {
    throw ShapeError(
        name + ": expected input to be 1-D (input_size) or 2-D (batch, input_size); got input of shape " +
        shape_str(sx));
  }
  if (sx.back() != I) {
    throw ShapeError(name + ": input has inconsistent input_size: got " + std::to_string(sx.back()) +
                     " expected " + std::to_string(I) + " (input of shape " + shape_str(sx) + ")");
  }
  CellLayout l;
  l.batched = sx.size() == 2;
  l.N = l.batched ? sx[0] : 1;
  const Shape want = l.batched ? Shape{l.N, H} : Shape{H};
  for (const auto& [state_name, s] : states) {
    if (!s->defined()) continue;
    t.check(*s, who);
    if (t.shape(*s) != want) {
      throw ShapeError(name + ": expected " + state_name + " of shape " + shape_str(want) +
                       " for input of shape " + shape_str(sx) + ", got " + state_name + " of shape " +
                       shape_str(t.shape(*s)));
    }
  }
  return l;
}

// x as a sequence of one step, (1, N, I); a state as (N, H) (undefined stays undefined).
template <class T>
Var<T> as_step(const Var<T>& x, const CellLayout& l) {
  return l.batched ? unsqueeze(x, 0) : reshape(x, {1, 1, -1});
}
template <class T>
Var<T> as_batched(const Var<T>& s, const CellLayout& l) {
  return !s.defined() || l.batched ? s : unsqueeze(s, 0);
}
// Row k of the fused op's result (rows, N, H), shaped as the caller's state.
template <class T>
Var<T> state_row(const Var<T>& y, std::ptrdiff_t k, const CellLayout& l) {
  const Var<T> r = select(y, 0, k);
  return l.batched ? r : reshape(r, {-1});
}

std::string cell_repr(std::size_t I, std::size_t H, bool bias) {
  return std::to_string(I) + ", " + std::to_string(H) + (bias ? "" : ", bias=False");
}

}  // namespace

template <class T>
void RecurrentCell<T>::init_params(const char* who, std::size_t gates, bool bias, Generator& gen) {
  const RecurrentLayerParams<T> p = make_cell_params<T>(
      who, input_size_, hidden_size_, gates, bias,
      [this](const std::string& n, xt::xarray<T> v) { return &this->register_parameter(n, std::move(v)); },
      gen);
  weight_ih = p.weight_ih, weight_hh = p.weight_hh, bias_ih = p.bias_ih, bias_hh = p.bias_hh;
}

// ---- RNNCell -------------------------------------------------------------------------------

template <class T>
RNNCell<T>::RNNCell(std::size_t input_size, std::size_t hidden_size, RNNCellOptions options, Generator& gen)
    : RecurrentCell<T>(input_size, hidden_size), options_(std::move(options)) {
  activation_ = detail::rnn_activation("RNNCell", options_.nonlinearity());
  this->init_params("RNNCell", 1, options_.bias(), gen);
}

template <class T>
Var<T> RNNCell<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h) {
  const CellLayout l =
      check_cell_input<T>("RNNCell", t, x, this->input_size_, this->hidden_size_, {{"h", &h}});
  const Var<T> y = rnn_layer(as_step(x, l), as_batched(h, l), t.param(*this->weight_ih),
                             t.param(*this->weight_hh), detail::param_or_none(t, this->bias_ih),
                             detail::param_or_none(t, this->bias_hh), activation_);
  return state_row(y, 0, l);
}

template <class T>
Var<T> RNNCell<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x);
}

template <class T>
std::string RNNCell<T>::extra_repr() const {
  const std::string& nl = options_.nonlinearity();
  return cell_repr(this->input_size_, this->hidden_size_, options_.bias()) +
         (nl == "tanh" ? "" : ", nonlinearity=" + nl);
}

// ---- LSTMCell ------------------------------------------------------------------------------

template <class T>
LSTMCell<T>::LSTMCell(std::size_t input_size, std::size_t hidden_size, LSTMCellOptions options,
                      Generator& gen)
    : RecurrentCell<T>(input_size, hidden_size), options_(options) {
  this->init_params("LSTMCell", 4, options_.bias(), gen);
}

template <class T>
LSTMCellState<T> LSTMCell<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h, const Var<T>& c) {
  const CellLayout l =
      check_cell_input<T>("LSTMCell", t, x, this->input_size_, this->hidden_size_, {{"h", &h}, {"c", &c}});
  const Var<T> y = lstm_layer(as_step(x, l), as_batched(h, l), as_batched(c, l), t.param(*this->weight_ih),
                              t.param(*this->weight_hh), detail::param_or_none(t, this->bias_ih),
                              detail::param_or_none(t, this->bias_hh));
  return {state_row(y, 0, l), state_row(y, 1, l)};  // y = [h_0; c_n]
}

template <class T>
Var<T> LSTMCell<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x).h;
}

template <class T>
std::string LSTMCell<T>::extra_repr() const {
  return cell_repr(this->input_size_, this->hidden_size_, options_.bias());
}

// ---- GRUCell -------------------------------------------------------------------------------

template <class T>
GRUCell<T>::GRUCell(std::size_t input_size, std::size_t hidden_size, GRUCellOptions options, Generator& gen)
    : RecurrentCell<T>(input_size, hidden_size), options_(options) {
  this->init_params("GRUCell", 3, options_.bias(), gen);
}

template <class T>
Var<T> GRUCell<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h) {
  const CellLayout l =
      check_cell_input<T>("GRUCell", t, x, this->input_size_, this->hidden_size_, {{"h", &h}});
  const Var<T> y =
      gru_layer(as_step(x, l), as_batched(h, l), t.param(*this->weight_ih), t.param(*this->weight_hh),
                detail::param_or_none(t, this->bias_ih), detail::param_or_none(t, this->bias_hh));
  return state_row(y, 0, l);
}

template <class T>
Var<T> GRUCell<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x);
}

template <class T>
std::string GRUCell<T>::extra_repr() const {
  return cell_repr(this->input_size_, this->hidden_size_, options_.bias());
}

template class RecurrentCell<float>;
template class RecurrentCell<double>;
template class RNNCell<float>;
template class RNNCell<double>;
template class LSTMCell<float>;
template class LSTMCell<double>;
template class GRUCell<float>;
template class GRUCell<double>;

}  // namespace tapegrad
