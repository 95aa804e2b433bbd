#include "tapegrad/nn/norm_rnn.hpp"

#include <algorithm>
#include <cmath>
#include <sstream>

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

void check_hidden_size(const char* who, std::size_t hidden_size) {
  if (hidden_size == 0) throw ValueError(std::string(who) + ": hidden_size must be greater than zero; got 0");
}

// The (rows, cols) shape of a weight or statistics buffer, checked before it is allocated: a
// size passed as a negative int, or rows * cols overflowing, is a ValueError naming `what`.
Shape checked_matrix(const char* what, std::size_t rows, std::size_t cols) {
  checked_mul(what, rows, cols);
  return {rows, cols};
}

// Zeros of the given shape, for Tape::constant (which copies them). The buffer is the calling
// thread's, not the module's: threads that share a module for inference, with different batch
// sizes, would otherwise resize it under one another. Reallocated only when the shape changes;
// one buffer per use (kUse), so uses of different shapes in one forward do not reallocate.
enum ZerosUse { kInitialState, kBeta };
template <class T, ZerosUse kUse>
const xt::xarray<T>& zeros(const Shape& shape) {
  thread_local xt::xarray<T> buf;
  if (buf.shape() != shape) buf = xt::zeros<T>(shape);
  return buf;
}

std::string num(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// The skeleton LNRNN::run and BNRNN::run share, for an input x checked into `layout`: the
// input projection of every step as one GEMM over (T*N, I), P = input(W_ih x) (all steps at
// once); h = h0, or zeros when h0 is undefined; then for each step s
//   h = step(s, p_s, W_hh h),   p_s = step s of P;
// the states (T, N, H) and the last one, in the caller's layout.
template <class T, class Input, class Step>
RNNOutput<T> run_steps(Tape<T>& t, const Var<T>& x, const Var<T>& h0_in, const detail::SequenceLayout& layout,
                       Parameter<T>& w_ih, Parameter<T>& w_hh, std::size_t hidden_size, Input&& input,
                       Step&& step) {
  const Var<T> xs = detail::time_major_input(x, layout);
  const Var<T> h0 = detail::batched_h0(h0_in, layout);
  const Var<T> W_hh = t.param(w_hh);
  const Var<T> P = input(linear(xs, t.param(w_ih)));
  Var<T> h =
      h0.defined() ? select(h0, 0, 0) : t.constant(zeros<T, kInitialState>(Shape{layout.N, hidden_size}));
  thread_local std::vector<Var<T>> states;  // reused: a training step allocates nothing
  states.clear();
  for (std::size_t s = 0; s < layout.T; ++s) {
    const Var<T> p = select(P, 0, std::ptrdiff_t(s));
    h = step(s, p, linear(h, W_hh));
    states.push_back(h);
  }
  return detail::to_caller_layout(stack(states, 0), unsqueeze(h, 0), layout);
}

}  // namespace

// ---- RecurrentLayerNorm --------------------------------------------------------------------

template <class T>
RecurrentLayerNorm<T>::RecurrentLayerNorm(std::size_t features, double eps)
    : LayerNorm<T>(Shape{checked_size("RecurrentLayerNorm: features", features)},
                   LayerNormOptions().eps(eps)) {}

template <class T>
std::string RecurrentLayerNorm<T>::extra_repr() const {
  return "(" + std::to_string(this->weight->size()) + ",), eps=" + python_float(this->options().eps()) +
         ", elementwise_affine=True";
}

// ---- SequenceBatchNorm ---------------------------------------------------------------------

template <class T>
SequenceBatchNorm<T>::SequenceBatchNorm(std::size_t features, std::size_t max_length, double gamma_init,
                                        double eps, double momentum)
    // The statistics' shape is checked first, before the weight is allocated.
    : weight(&this->register_parameter(
          "weight", xt::xarray<T>(xt::ones<T>({checked_matrix("SequenceBatchNorm: max_length * features",
                                                              max_length, features)[1]}) *
                                  T(gamma_init)))),
      running_mean(this->register_buffer("running_mean", xt::zeros<T>({max_length, features}))),
      running_var(this->register_buffer("running_var", xt::ones<T>({max_length, features}))),
      num_batches_tracked(this->register_buffer("num_batches_tracked", xt::xarray<T>(T(0)))),
      eps_(eps),
      momentum_(momentum) {
  if (max_length == 0) throw ValueError("SequenceBatchNorm: max_length must be at least 1; got 0");
  if (!(momentum >= 0 && momentum <= 1)) {
    throw ValueError("SequenceBatchNorm: momentum must be in [0, 1]; got " + num(momentum));
  }
  check_hidden_size("SequenceBatchNorm", features);
  detail::check_eps("SequenceBatchNorm", eps);
}

template <class T>
Var<T> SequenceBatchNorm<T>::normalize_step(Tape<T>& t, const Var<T>& x, std::size_t step,
                                            StepStatistics<T>* stats) {
  const std::size_t H = weight->size();
  const Var<T> beta = t.constant(zeros<T, kBeta>(Shape{H}));
  const Var<T> gamma = t.param(*weight);
  if (this->is_training()) {
    if (!stats) return batch_norm(x, gamma, beta, eps_);
    if (stats->steps.size() == stats->count) stats->steps.emplace_back();  // later forwards reuse it
    Var<T> y = batch_norm(x, gamma, beta, eps_, stats->steps[stats->count]);
    stats->batch = t.shape(x)[0];
    ++stats->count;
    return y;
  }
  // Step s's running statistics as arrays of shape (H): the calling thread's copies, so
  // threads sharing the module for inference never write the same scratch.
  const std::size_t s = std::min(step, max_length() - 1);
  thread_local xt::xarray<T> mean_row, var_row;
  mean_row.resize({H});
  var_row.resize({H});
  std::copy(running_mean.data() + s * H, running_mean.data() + (s + 1) * H, mean_row.data());
  std::copy(running_var.data() + s * H, running_var.data() + (s + 1) * H, var_row.data());
  return batch_norm_eval(x, gamma, beta, mean_row, var_row, eps_);
}

template <class T>
void SequenceBatchNorm<T>::update_running(const StepStatistics<T>& stats) {
  const std::size_t H = weight->size();
  const double m = momentum_;
  const double n = static_cast<double>(stats.batch);
  const double unbias = n / (n - 1);  // batch >= 2: batch_norm refused anything smaller
  for (std::size_t step = 0; step < stats.count; ++step) {
    const std::size_t s = std::min(step, max_length() - 1);
    T* rm = running_mean.data() + s * H;
    T* rv = running_var.data() + s * H;
    const double* bm = stats.steps[step].mean.data();
    const double* bv = stats.steps[step].var.data();
    for (std::size_t j = 0; j < H; ++j) {
      rm[j] = static_cast<T>((1 - m) * double(rm[j]) + m * bm[j]);
      rv[j] = static_cast<T>((1 - m) * double(rv[j]) + m * bv[j] * unbias);
    }
  }
  num_batches_tracked() += T(1);
}

template <class T>
Var<T> SequenceBatchNorm<T>::forward(Tape<T>& t, const Var<T>& x) {
  t.check(x, "SequenceBatchNorm");
  const Shape& sx = t.shape(x);
  if (sx.size() != 3 || sx[2] != weight->size() || sx[0] == 0) {
    throw ShapeError("SequenceBatchNorm: expected input of shape (T, N, " + std::to_string(weight->size()) +
                     ") with T >= 1; got " + shape_str(sx));
  }
  if (this->is_training() && sx[1] < 2) {
    throw StateError(
        "SequenceBatchNorm: expected more than 1 value per channel when training; got "
        "input of shape " +
        shape_str(sx) + ". Use eval() or a batch of at least 2");
  }
  // stats_ is written by a training forward only: an eval forward writes nothing into the
  // module, so threads may share it.
  const bool training = this->is_training();
  if (training) stats_.clear();
  thread_local std::vector<Var<T>> steps;  // reused: a training step allocates nothing
  steps.clear();
  for (std::size_t s = 0; s < sx[0]; ++s) {
    steps.push_back(normalize_step(t, select(x, 0, std::ptrdiff_t(s)), s, training ? &stats_ : nullptr));
  }
  if (training) update_running(stats_);
  return stack(steps, 0);
}

template <class T>
std::string SequenceBatchNorm<T>::extra_repr() const {
  return std::to_string(weight->size()) + ", max_length=" + std::to_string(max_length()) +
         ", eps=" + python_float(eps_) + ", momentum=" + python_float(momentum_);
}

// ---- LNRNN ---------------------------------------------------------------------------------

template <class T>
LNRNN<T>::LNRNN(std::size_t input_size, std::size_t hidden_size, LNRNNOptions options, Generator& gen)
    : input_size_(input_size), hidden_size_(hidden_size), options_(options) {
  check_hidden_size("LNRNN", hidden_size);
  detail::check_eps("LNRNN", options.eps());
  const std::size_t H = hidden_size;
  const double k = 1.0 / std::sqrt(static_cast<double>(H));
  const Shape ih = checked_matrix("LNRNN: hidden_size * input_size", H, input_size);
  const Shape hh = checked_matrix("LNRNN: hidden_size * hidden_size", H, H);
  w_ih_ = &this->register_parameter("weight_ih", uniform_array<T>(ih, -k, k, gen));
  w_hh_ = &this->register_parameter("weight_hh", uniform_array<T>(hh, -k, k, gen));
  const double eps = options.eps();
  if (options.variant() == LNVariant::Summed) {
    ln_ = &this->register_module("ln", std::make_shared<RecurrentLayerNorm<T>>(H, eps));
  } else {
    bias_ = &this->register_parameter("bias", xt::zeros<T>({H}));
    ln_h_ = &this->register_module("ln_h", std::make_shared<RecurrentLayerNorm<T>>(H, eps));
    ln_x_ = &this->register_module("ln_x", std::make_shared<RecurrentLayerNorm<T>>(H, eps));
  }
}

template <class T>
RNNOutput<T> LNRNN<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h0_in) {
  const auto layout = detail::check_sequence_input("LNRNN", t, x, h0_in, input_size_, hidden_size_, 1,
                                                   options_.batch_first());
  return run_steps<T>(
      t, x, h0_in, layout, *w_ih_, *w_hh_, hidden_size_,
      [&](const Var<T>& P) {  // Separate: LN_x(W_ih x_t) + b, all steps at once
        return ln_x_ ? add(ln_x_->forward(t, P), t.param(*bias_)) : P;
      },
      [&](std::size_t, const Var<T>& p, const Var<T>& r) {
        return ln_ ? tanh(ln_->forward(t, add(r, p)))     // tanh(g ⊙ LN(W_hh h + W_ih x) + b)
                   : tanh(add(ln_h_->forward(t, r), p));  // tanh(LN_h(W_hh h) + [LN_x(W_ih x) + b])
      });
}

template <class T>
Var<T> LNRNN<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x).output;
}

template <class T>
std::string LNRNN<T>::extra_repr() const {
  return std::to_string(input_size_) + ", " + std::to_string(hidden_size_) +
         ", variant=" + (options_.variant() == LNVariant::Summed ? "summed" : "separate") +
         (options_.batch_first() ? ", batch_first=True" : "");
}

// ---- BNRNN ---------------------------------------------------------------------------------

template <class T>
BNRNN<T>::BNRNN(std::size_t input_size, std::size_t hidden_size, BNRNNOptions options, Generator& gen)
    : input_size_(input_size), hidden_size_(hidden_size), options_(options) {
  check_hidden_size("BNRNN", hidden_size);
  detail::check_eps("BNRNN", options.eps());
  const std::size_t H = hidden_size;
  const double k = 1.0 / std::sqrt(static_cast<double>(H));
  const Shape ih = checked_matrix("BNRNN: hidden_size * input_size", H, input_size);
  const Shape hh = checked_matrix("BNRNN: hidden_size * hidden_size", H, H);
  checked_matrix("BNRNN: max_length * hidden_size", options.max_length(), H);
  w_ih_ = &this->register_parameter("weight_ih", uniform_array<T>(ih, -k, k, gen));
  w_hh_ = &this->register_parameter("weight_hh", uniform_array<T>(hh, -k, k, gen));
  bias_ = &this->register_parameter("bias", xt::zeros<T>({H}));
  auto make_bn = [&] {
    return std::make_shared<SequenceBatchNorm<T>>(H, options.max_length(), options.gamma_init(),
                                                  options.eps(), options.momentum());
  };
  bn_x_ = &this->register_module("bn_x", make_bn());
  bn_h_ = &this->register_module("bn_h", make_bn());
}

template <class T>
RNNOutput<T> BNRNN<T>::run(Tape<T>& t, const Var<T>& x, const Var<T>& h0_in) {
  const auto layout = detail::check_sequence_input("BNRNN", t, x, h0_in, input_size_, hidden_size_, 1,
                                                   options_.batch_first());
  // Checked here, before anything is recorded or updated, rather than by the step's batch_norm.
  if (this->is_training() && layout.N < 2) {
    throw StateError(
        "BNRNN: expected more than 1 value per channel when training; got batch "
        "size " +
        std::to_string(layout.N) + " (input of shape " + shape_str(t.shape(x)) +
        "). Use eval() or a batch of at least 2");
  }
  const Var<T> b = t.param(*bias_);
  // The step statistics are written by a training forward only: an eval forward writes
  // nothing into the module, so threads may share it.
  const bool training = this->is_training();
  if (training) {
    stats_x_.clear();
    stats_h_.clear();
  }
  StepStatistics<T>* stats_h = training ? &stats_h_ : nullptr;
  StepStatistics<T>* stats_x = training ? &stats_x_ : nullptr;
  RNNOutput<T> out = run_steps<T>(
      t, x, h0_in, layout, *w_ih_, *w_hh_, hidden_size_, [](const Var<T>& P) { return P; },
      [&](std::size_t s, const Var<T>& p, const Var<T>& r) {
        const Var<T> bh = bn_h_->normalize_step(t, r, s, stats_h);
        const Var<T> bx = bn_x_->normalize_step(t, p, s, stats_x);
        return tanh(add(add(bh, bx), b));  // tanh(BN_h(W_hh h) + BN_x(W_ih x) + b)
      });
  if (training) {
    bn_x_->update_running(stats_x_);
    bn_h_->update_running(stats_h_);
  }
  return out;
}

template <class T>
Var<T> BNRNN<T>::forward(Tape<T>& t, const Var<T>& x) {
  return run(t, x).output;
}

template <class T>
std::string BNRNN<T>::extra_repr() const {
  return std::to_string(input_size_) + ", " + std::to_string(hidden_size_) +
         ", max_length=" + std::to_string(options_.max_length()) +
         (options_.batch_first() ? ", batch_first=True" : "");
}

template class RecurrentLayerNorm<float>;
template class RecurrentLayerNorm<double>;
template class SequenceBatchNorm<float>;
template class SequenceBatchNorm<double>;
template class LNRNN<float>;
template class LNRNN<double>;
template class BNRNN<float>;
template class BNRNN<double>;

}  // namespace tapegrad
