#pragma once
// Normalized recurrent networks: the LayerNorm RNN (Ba, Kiros & Hinton 2016) and the
// BatchNorm RNN (Cooijmans et al. 2016). Both are single-layer tanh RNNs built from the fused
// ops per time step (linear, layer_norm / batch_norm, add, tanh, select, stack); the input
// projection of all steps is still one linear over (T*N, I). Input and output layouts are
// those of RNN (nn/rnn.hpp): (T, N, I) / (N, T, I) with batch_first / unbatched (T, I), and
// h0 of shape (1, N, H) or undefined (zeros).
#include <cstddef>
#include <vector>

#include "tapegrad/nn/norm.hpp"
#include "tapegrad/nn/rnn.hpp"
#include "tapegrad/ops/norm.hpp"

namespace tapegrad {

// ---- the normalization children ------------------------------------------------------------

// The affine LayerNorm over the last dim used inside LNRNN: y = LN(x) ⊙ weight + bias. It is
// LayerNorm({H}) with elementwise_affine (nn/norm.hpp: the same op, parameters "weight" (H,
// ones) and "bias" (H, zeros), never null here), as torch.nn.LayerNorm(H), so an LNRNN written
// in PyTorch with nn.LayerNorm children has the same state_dict keys. It adds the (features,
// eps) constructor and prints as PyTorch does: LayerNorm((H,), eps=1e-05, ...).
template <class T>
class RecurrentLayerNorm : public LayerNorm<T> {
 public:
  RecurrentLayerNorm(std::size_t features, double eps);
  std::string extra_repr() const override;
};

// Batch statistics of every step of one training forward, kept until they are folded into
// the running statistics (steps[t] for t < count: the per-feature batch mean and BIASED
// variance, in double, so a float batch variance beyond FLT_MAX still updates a finite running
// one). clear() keeps the arrays, so a module that reuses one object for every forward
// allocates nothing after its first.
template <class T>
struct StepStatistics {
  std::vector<BatchStatistics> steps;
  std::size_t count = 0;
  std::size_t batch = 0;
  void clear() { count = 0; }
};

// BatchNorm with SEPARATE statistics per time step (Cooijmans et al. 2016, section 3):
//   BN(x_t; gamma) = gamma ⊙ (x_t - mean_t) / sqrt(var_t + eps)        (beta = 0, see BNRNN)
// In training mode mean_t, var_t are the batch statistics of step t; the running statistics
// of step t are then updated as BatchNorm1d's (momentum, UNBIASED variance):
//   running_mean[s] = (1 - m) running_mean[s] + m mean_t
//   running_var[s]  = (1 - m) running_var[s]  + m var_t N / (N - 1),    s = min(t, T_max - 1)
// In eval mode step t is normalized with running statistics s = min(t, T_max - 1): steps past
// T_max use the last step's population statistics, as the paper does for longer sequences
// (and in training every step t >= T_max - 1 feeds that last slot, in order).
// State: parameter "weight" (H, gamma_init); buffers "running_mean" (T_max, H) zeros,
// "running_var" (T_max, H) ones, "num_batches_tracked" (0-d, +1 per training forward).
template <class T>
class SequenceBatchNorm : public Module<T> {
 public:
  SequenceBatchNorm(std::size_t features, std::size_t max_length, double gamma_init, double eps,
                    double momentum);
  // Normalizes x (N, H), the values of time step `step`. Training mode: batch statistics,
  // appended to *stats if stats is not null (which must then go to update_running). Eval
  // mode: running ones; writes nothing into the module (stats is not used).
  // Throws StateError in training mode when N < 2 (the batch_norm op's check).
  Var<T> normalize_step(Tape<T>& t, const Var<T>& x, std::size_t step, StepStatistics<T>* stats);
  // Folds the statistics of steps 0, 1, ... into the running ones; num_batches_tracked += 1.
  void update_running(const StepStatistics<T>& stats);
  // A whole sequence x (T, N, H): every step normalized, and in training the running
  // statistics updated. Throws (nothing changed) ShapeError unless x is (T, N, H).
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "SequenceBatchNorm"; }
  std::string extra_repr() const override;
  std::size_t max_length() const { return running_mean.shape()[0]; }

  Parameter<T>* weight;  // never null
  xt::xarray<T>& running_mean;
  xt::xarray<T>& running_var;
  xt::xarray<T>& num_batches_tracked;

 private:
  double eps_, momentum_;
  StepStatistics<T> stats_;  // a training forward()'s, reused
};

// ---- LNRNN ---------------------------------------------------------------------------------

// Where the LayerNorm goes (Ba et al. 2016):
//   Summed    eq. 4: one LN over the summed inputs, gain g and bias b shared over time
//               a_t = W_hh h_{t-1} + W_ih x_t
//               h_t = tanh(g ⊙ LN(a_t) + b)
//             parameters weight_ih (H, I), weight_hh (H, H), ln.weight = g, ln.bias = b (H)
//   Separate  the paper's reference code: each input stream normalized on its own
//               h_t = tanh(LN_h(W_hh h_{t-1}) + LN_x(W_ih x_t) + b)
//             parameters weight_ih, weight_hh, bias = b (H), ln_h.weight, ln_h.bias,
//             ln_x.weight, ln_x.bias (H). (The LN biases and b are redundant, as in that code.)
//             LN_x acts on each row, so it runs over all steps at once.
// LN(v) = (v - mean(v)) / sqrt(var(v) + eps) over the H features (biased variance).
// Init: weight_ih, weight_hh from U(-1/sqrt(H), 1/sqrt(H)) as RNN; LN gains 1, LN biases and b 0.
enum class LNVariant { Summed, Separate };

class LNRNNOptions {
 public:
  LNRNNOptions& variant(LNVariant v) {
    variant_ = v;
    return *this;
  }
  LNRNNOptions& eps(double e) {
    eps_ = e;
    return *this;
  }
  LNRNNOptions& batch_first(bool on) {
    batch_first_ = on;
    return *this;
  }
  LNVariant variant() const { return variant_; }
  double eps() const { return eps_; }
  bool batch_first() const { return batch_first_; }

 private:
  LNVariant variant_ = LNVariant::Summed;
  double eps_ = 1e-5;
  bool batch_first_ = false;
};

template <class T>
class LNRNN : public Module<T> {
 public:
  // Throws ValueError for hidden_size 0, or eps negative or not finite.
  LNRNN(std::size_t input_size, std::size_t hidden_size, LNRNNOptions options = LNRNNOptions(),
        Generator& gen = default_generator());
  // LNRNN(input_size, hidden_size, gen): the default options, drawn from gen.
  LNRNN(std::size_t input_size, std::size_t hidden_size, Generator& gen)
      : LNRNN(input_size, hidden_size, LNRNNOptions(), gen) {}
  // As RNN::run (num_layers = 1).
  RNNOutput<T> run(Tape<T>& t, const Var<T>& x, const Var<T>& h0 = Var<T>());
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "LNRNN"; }
  std::string extra_repr() const override;

 private:
  std::size_t input_size_, hidden_size_;
  LNRNNOptions options_;
  Parameter<T>* w_ih_;
  Parameter<T>* w_hh_;
  Parameter<T>* bias_ = nullptr;           // Separate only
  RecurrentLayerNorm<T>* ln_ = nullptr;    // Summed
  RecurrentLayerNorm<T>* ln_h_ = nullptr;  // Separate
  RecurrentLayerNorm<T>* ln_x_ = nullptr;  // Separate
};

// ---- BNRNN ---------------------------------------------------------------------------------

class BNRNNOptions {
 public:
  // T_max: the number of time steps with their own running statistics.
  BNRNNOptions& max_length(std::size_t n) {
    max_length_ = n;
    return *this;
  }
  BNRNNOptions& momentum(double m) {
    momentum_ = m;
    return *this;
  }
  BNRNNOptions& eps(double e) {
    eps_ = e;
    return *this;
  }
  BNRNNOptions& gamma_init(double g) {
    gamma_init_ = g;
    return *this;
  }
  BNRNNOptions& batch_first(bool on) {
    batch_first_ = on;
    return *this;
  }
  std::size_t max_length() const { return max_length_; }
  double momentum() const { return momentum_; }
  double eps() const { return eps_; }
  double gamma_init() const { return gamma_init_; }
  bool batch_first() const { return batch_first_; }

 private:
  std::size_t max_length_ = 100;
  double momentum_ = 0.1;
  double eps_ = 1e-5;
  double gamma_init_ = 0.1;
  bool batch_first_ = false;
};

// The BatchNorm RNN of Cooijmans et al. 2016 ("Recurrent Batch Normalization"), tanh:
//   h_t = tanh(BN_h(W_hh h_{t-1}; gamma_h, t) + BN_x(W_ih x_t; gamma_x, t) + b)
// BN_h and BN_x are SequenceBatchNorms: statistics per time step, shift beta = 0 (the paper
// sets beta_h = beta_x = 0 "to avoid unnecessary redundancy": b is the one shift).
// Parameters: weight_ih (H, I), weight_hh (H, H) from U(-1/sqrt(H), 1/sqrt(H)); bias = b (H)
// zeros; bn_x.weight = gamma_x and bn_h.weight = gamma_h (H), initialized to 0.1 as the paper
// recommends (a gain of 1 saturates tanh and makes gradients vanish). Buffers:
// bn_{x,h}.running_mean / running_var (T_max, H), bn_{x,h}.num_batches_tracked.
// Training with batch size 1 throws StateError before anything is recorded or updated.
template <class T>
class BNRNN : public Module<T> {
 public:
  // Throws ValueError for hidden_size or max_length 0, momentum outside [0, 1], eps < 0.
  BNRNN(std::size_t input_size, std::size_t hidden_size, BNRNNOptions options = BNRNNOptions(),
        Generator& gen = default_generator());
  // BNRNN(input_size, hidden_size, gen): the default options, drawn from gen.
  BNRNN(std::size_t input_size, std::size_t hidden_size, Generator& gen)
      : BNRNN(input_size, hidden_size, BNRNNOptions(), gen) {}
  RNNOutput<T> run(Tape<T>& t, const Var<T>& x, const Var<T>& h0 = Var<T>());
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "BNRNN"; }
  std::string extra_repr() const override;

 private:
  std::size_t input_size_, hidden_size_;
  BNRNNOptions options_;
  Parameter<T>* w_ih_;
  Parameter<T>* w_hh_;
  Parameter<T>* bias_;
  SequenceBatchNorm<T>* bn_x_;
  SequenceBatchNorm<T>* bn_h_;
  StepStatistics<T> stats_x_, stats_h_;  // a training run()'s, reused
};

#define TAPEGRAD_NORM_RNN_EXTERN(T)            \
  extern template class RecurrentLayerNorm<T>; \
  extern template class SequenceBatchNorm<T>;  \
  extern template class LNRNN<T>;              \
  extern template class BNRNN<T>;
TAPEGRAD_NORM_RNN_EXTERN(float)
TAPEGRAD_NORM_RNN_EXTERN(double)
#undef TAPEGRAD_NORM_RNN_EXTERN

}  // namespace tapegrad
