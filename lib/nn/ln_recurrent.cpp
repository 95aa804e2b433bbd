#include "tapegrad/nn/ln_recurrent.hpp"

#include <cmath>
#include <memory>
#include <sstream>
#include <vector>

#include <xtensor/xbuilder.hpp>

#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/matmul.hpp"
#include "tapegrad/ops/norm.hpp"
#include "tapegrad/ops/shape.hpp"
#include "tapegrad/nn/repr.hpp"

#include "../core/check_eps.hpp"
#include "sequence_input.hpp"

namespace tapegrad {

namespace {

// The parameter shapes of a module with `gates` gates, checked before anything is allocated:
// hidden_size 0, eps out of range, or a size whose product overflows is a ValueError naming it.
struct GateShapes {
  std::size_t G;  // gates * hidden_size
  Shape ih, hh;
};
GateShapes gate_shapes(const char* who, std::size_t gates, std::size_t input_size, std::size_t hidden_size,
                       double eps) {
  const std::string name(who);
  if (hidden_size == 0) throw ValueError(name + ": hidden_size must be greater than zero; got 0");
  detail::check_eps(who, eps);
  checked_size((name + ": input_size").c_str(), input_size);
  checked_size((name + ": hidden_size").c_str(), hidden_size);
  const std::size_t G = checked_mul((name + ": gates * hidden_size").c_str(), gates, hidden_size);
  checked_mul((name + ": gates * hidden_size * input_size").c_str(), G, input_size);
  checked_mul((name + ": gates * hidden_size * hidden_size").c_str(), G, hidden_size);
  return {G, {G, input_size}, {G, hidden_size}};
}

// An initial state c0 (or h0) must be (1, N, H), or (1, H) for an unbatched input.
template <class T>
void check_state(const char* who, const char* what, Tape<T>& t, const Var<T>& s, const Var<T>& x,
                 const detail::SequenceLayout& layout, std::size_t hidden_size) {
  if (!s.defined()) return;
  t.check(s, who);
  const Shape want = layout.batched ? Shape{1, layout.N, hidden_size} : Shape{1, hidden_size};
  if (t.shape(s) != want) {
    throw ShapeError(std::string(who) + ": expected " + what + " of shape " + shape_str(want) +
                     " for input of shape " + shape_str(t.shape(x)) + ", got " + what + " of shape " +
                     shape_str(t.shape(s)) + " (" + what + " is (num_layers = 1, batch, hidden_size)" +
                     (layout.batched ? "" : ", or (1, hidden_size) for an unbatched input") + ")");
  }
}

// The state at step 0 as (N, H): the given h0/c0, or zeros. The zeros are copied by
// Tape::constant from the calling thread's buffer (not the module's: threads that share a
// module for inference may use different batch sizes), reallocated only when N changes.
template <class T>
Var<T> initial_state(Tape<T>& t, const Var<T>& s, const detail::SequenceLayout& layout, std::size_t H) {
  if (s.defined()) return select(detail::batched_h0(s, layout), 0, 0);
  thread_local xt::xarray<T> zeros;
  const Shape shape{layout.N, H};
  if (zeros.shape() != shape) zeros = xt::zeros<T>(shape);
  return t.constant(zeros);
}

// The LayerNorm child "ln_<x>" over `features`, with the module's eps.
template <class T>
std::shared_ptr<LayerNorm<T>> make_ln(std::size_t features, double eps) {
  return std::make_shared<LayerNorm<T>>(Shape{features}, LayerNormOptions().eps(eps));
}

// A LayerNorm child's parameters bound once per forward, applied at every step.
template <class T>
struct BoundLN {
  BoundLN(Tape<T>& t, LayerNorm<T>& ln, double eps)
      : weight(t.param(*ln.weight)), bias(t.param(*ln.bias)), e(eps) {}
  Var<T> operator()(const Var<T>& x) const { return layer_norm(x, weight, bias, 1, e); }
  Var<T> weight, bias;
  double e;
};

std::string repr(std::size_t input_size, std::size_t hidden_size, double eps, bool batch_first) {
  std::ostringstream os;
  os << input_size << ", " << hidden_size;
  if (eps != 1e-5) os << ", eps=" << python_float(eps);
  if (batch_first) os << ", batch_first=True";
  return os.str();
}

std::ptrdiff_t idx(std::size_t k) { return static_cast<std::ptrdiff_t>(k); }

}  // namespace

// ---- LNLSTM --------------------------------------------------------------------------------

template <class T>
LNLSTM<T>::LNLSTM(std::size_t input_size, std::size_t hidden_size, LNLSTMOptions options, Generator& gen)
    : input_size_(input_size), hidden_size_(hidden_size), options_(options) {
  const GateShapes s = gate_shapes("LNLSTM", 4, input_size, hidden_size, options.eps());
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  w_ih_ = &this->register_parameter("weight_ih", uniform_array<T>(s.ih, -k, k, gen));
  w_hh_ = &this->register_parameter("weight_hh", uniform_array<T>(s.hh, -k, k, gen));
  bias_ = &this->register_parameter("bias", xt::zeros<T>({s.G}));
  ln_x_ = &this->register_module("ln_x", make_ln<T>(s.G, options.eps()));
  ln_h_ = &this->register_module("ln_h", make_ln<T>(s.G, options.eps()));
  ln_c_ = &this->register_module("ln_c", make_ln<T>(hidden_size, options.eps()));
}

template <class T>
LSTMOutput<T> LNLSTM<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h0, const Var<T>& c0) {
  const std::size_t H = hidden_size_;
  const auto layout =
      detail::check_sequence_input("LNLSTM", t, x, h0, input_size_, H, 1, options_.batch_first());
  check_state("LNLSTM", "c0", t, c0, x, layout, H);
  // Validated: the recording starts here.
  const double eps = options_.eps();
  const BoundLN<T> ln_x(t, *ln_x_, eps), ln_h(t, *ln_h_, eps), ln_c(t, *ln_c_, eps);
  const Var<T> W_hh = t.param(*w_hh_);
  // LN_x(W_ih x_t) + b for every step at once: one GEMM over (T*N, I), one LN over its rows.
  const Var<T> P = add(ln_x(linear(detail::time_major_input(x, layout), t.param(*w_ih_))), t.param(*bias_));
  Var<T> h = initial_state(t, h0, layout, H);
  Var<T> c = initial_state(t, c0, layout, H);
  thread_local std::vector<Var<T>> states;  // reused: a training step allocates nothing
  states.clear();
  for (std::size_t s = 0; s < layout.T; ++s) {
    const Var<T> gates = add(ln_h(linear(h, W_hh)), select(P, 0, idx(s)));  // (N, 4H): i, f, g, o
    const Var<T> i = sigmoid(slice(gates, 1, 0, idx(H)));
    const Var<T> f = sigmoid(slice(gates, 1, idx(H), idx(2 * H)));
    const Var<T> g = tanh(slice(gates, 1, idx(2 * H), idx(3 * H)));
    const Var<T> o = sigmoid(slice(gates, 1, idx(3 * H), idx(4 * H)));
    c = add(mul(f, c), mul(i, g));
    h = mul(o, tanh(ln_c(c)));
    states.push_back(h);
  }
  const RNNOutput<T> out = detail::to_caller_layout(stack(states, 0), unsqueeze(h, 0), layout);
  // c is (N, H); unbatched, N = 1 and (1, H) is already c_n's shape.
  return {out.output, out.h_n, layout.batched ? unsqueeze(c, 0) : c};
}

template <class T>
Var<T> LNLSTM<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x).output;
}

template <class T>
std::string LNLSTM<T>::extra_repr() const {
  return repr(input_size_, hidden_size_, options_.eps(), options_.batch_first());
}

// ---- LNGRU ---------------------------------------------------------------------------------

template <class T>
LNGRU<T>::LNGRU(std::size_t input_size, std::size_t hidden_size, LNGRUOptions options, Generator& gen)
    : input_size_(input_size), hidden_size_(hidden_size), options_(options) {
  const GateShapes s = gate_shapes("LNGRU", 3, input_size, hidden_size, options.eps());
  const double k = 1.0 / std::sqrt(static_cast<double>(hidden_size));
  w_ih_ = &this->register_parameter("weight_ih", uniform_array<T>(s.ih, -k, k, gen));
  w_hh_ = &this->register_parameter("weight_hh", uniform_array<T>(s.hh, -k, k, gen));
  bias_ = &this->register_parameter("bias", xt::zeros<T>({s.G}));
  ln_x_ = &this->register_module("ln_x", make_ln<T>(s.G, options.eps()));
  ln_h_ = &this->register_module("ln_h", make_ln<T>(s.G, options.eps()));
}

template <class T>
RNNOutput<T> LNGRU<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h0) {
  const std::size_t H = hidden_size_;
  const auto layout =
      detail::check_sequence_input("LNGRU", t, x, h0, input_size_, H, 1, options_.batch_first());
  // Validated: the recording starts here.
  const double eps = options_.eps();
  const BoundLN<T> ln_x(t, *ln_x_, eps), ln_h(t, *ln_h_, eps);
  const Var<T> W_hh = t.param(*w_hh_);
  // A = LN_x(W_ih x_t) + b for every step at once, split into its (r, z) and n parts.
  const Var<T> A = add(ln_x(linear(detail::time_major_input(x, layout), t.param(*w_ih_))), t.param(*bias_));
  const Var<T> A_rz = slice(A, 2, 0, idx(2 * H));
  const Var<T> A_n = slice(A, 2, idx(2 * H), idx(3 * H));
  Var<T> h = initial_state(t, h0, layout, H);
  thread_local std::vector<Var<T>> states;  // reused: a training step allocates nothing
  states.clear();
  for (std::size_t s = 0; s < layout.T; ++s) {
    const Var<T> B = ln_h(linear(h, W_hh));  // (N, 3H): r, z, n
    const Var<T> rz = sigmoid(add(select(A_rz, 0, idx(s)), slice(B, 1, 0, idx(2 * H))));
    const Var<T> r = slice(rz, 1, 0, idx(H));
    const Var<T> z = slice(rz, 1, idx(H), idx(2 * H));
    const Var<T> n = tanh(add(select(A_n, 0, idx(s)), mul(r, slice(B, 1, idx(2 * H), idx(3 * H)))));
    h = add(n, mul(z, sub(h, n)));  // (1 - z) ⊙ n + z ⊙ h
    states.push_back(h);
  }
  return detail::to_caller_layout(stack(states, 0), unsqueeze(h, 0), layout);
}

template <class T>
Var<T> LNGRU<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x).output;
}

template <class T>
std::string LNGRU<T>::extra_repr() const {
  return repr(input_size_, hidden_size_, options_.eps(), options_.batch_first());
}

template class LNLSTM<float>;
template class LNLSTM<double>;
template class LNGRU<float>;
template class LNGRU<double>;

}  // namespace tapegrad
