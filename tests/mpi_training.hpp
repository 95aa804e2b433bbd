#pragma once
// Shared by test_mpi's training tests (mpi_ddp.cpp, mpi_sync_batch_norm.cpp): a small MLP with
// a choice of normalisation, a deterministic stream of global batches, and a training loop that
// runs either one process over the whole global batch or one rank of a data-parallel job over
// its share of it.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <vector>

#include <xtensor/xview.hpp>

#include "support.hpp"
#include "tapegrad/dist.hpp"

namespace tgtest {

enum class Norm { none, layer, batch };

inline std::shared_ptr<tg::Sequential<float>> make_mlp(Norm norm, std::uint64_t seed,
                                                       std::size_t hidden = 8) {
  tg::Generator gen(seed);
  auto net = std::make_shared<tg::Sequential<float>>();
  // No bias before BatchNorm (as usual): BatchNorm removes it, so its gradient is rounding noise,
  // which Adam's normalisation would blow up to steps of size lr.
  net->emplace_back<tg::Linear<float>>(4, hidden, tg::LinearOptions().bias(norm != Norm::batch), gen);
  if (norm == Norm::layer) net->emplace_back<tg::LayerNorm<float>>(tg::Shape{hidden});
  if (norm == Norm::batch) net->emplace_back<tg::BatchNorm1d<float>>(hidden);
  net->emplace_back<tg::Tanh<float>>();
  net->emplace_back<tg::Linear<float>>(hidden, 3, tg::LinearOptions{}, gen);
  return net;
}

// Step s's global batch: `global` rows of 4 features (rows scaled per feature so that
// normalisation matters) and their labels.
inline xt::xarray<float> batch_inputs(std::size_t step, std::size_t global) {
  xt::xarray<float> x = randn<float>({global, 4}, 1000 + step);
  for (std::size_t i = 0; i < global; ++i) {
    for (std::size_t j = 0; j < 4; ++j) x(i, j) = x(i, j) * float(1 + j) + float(j) - 1.5f;
  }
  return x;
}
inline std::vector<std::int64_t> batch_labels(std::size_t step, std::size_t global) {
  std::vector<std::int64_t> y(global);
  for (std::size_t i = 0; i < global; ++i) y[i] = static_cast<std::int64_t>((i * 7 + step) % 3);
  return y;
}

// 3 SGD (momentum 0.9) steps, then 3 Adam steps, each clipping the gradient norm to 0.5 after
// sync() (the data-parallel average, or nothing), on rows [first, first + rows) of each step's
// global batch of `global` rows. after_step() runs after every optimizer step.
constexpr int kSteps = 6;
template <class Sync, class AfterStep>
void train_steps(tg::Module<float>& model, std::size_t first, std::size_t rows, std::size_t global,
                 Sync&& sync, AfterStep&& after_step) {
  model.train();
  tg::SGDOptions sgd_options;
  sgd_options.momentum = 0.9;
  tg::SGD<float> sgd(model.parameters(), 0.1, sgd_options);
  tg::Adam<float> adam(model.parameters(), 0.01);
  for (int s = 0; s < kSteps; ++s) {
    const xt::xarray<float> all = batch_inputs(static_cast<std::size_t>(s), global);
    const std::vector<std::int64_t> labels = batch_labels(static_cast<std::size_t>(s), global);
    const xt::xarray<float> x = xt::view(all, xt::range(first, first + rows), xt::all());
    const std::vector<std::int64_t> y(labels.begin() + static_cast<std::ptrdiff_t>(first),
                                      labels.begin() + static_cast<std::ptrdiff_t>(first + rows));
    tg::Tape<float> tape;
    const tg::Var<float> loss = tg::cross_entropy(model(tape, tape.constant(x)), y);
    model.zero_grad();
    tape.backward(loss);
    sync();
    tg::clip_grad_norm(model.parameters(), 0.5);
    if (s < kSteps / 2) {
      sgd.step();
    } else {
      adam.step();
    }
    after_step();
  }
}

// Every parameter and buffer of a model, flattened (in order), in double.
inline std::vector<double> flat_state(tg::Module<float>& m) {
  std::vector<double> out;
  for (const auto& kv : m.state_dict()) {
    for (const float v : kv.second) out.push_back(static_cast<double>(v));
  }
  return out;
}

// The parameters alone (a plain BatchNorm1d's running statistics differ between replicas).
inline std::vector<double> flat_params(tg::Module<float>& m) {
  std::vector<double> out;
  for (tg::Parameter<float>* p : m.parameters()) {
    for (const float v : p->value) out.push_back(static_cast<double>(v));
  }
  return out;
}

inline double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  double d = a.size() == b.size() ? 0.0 : INFINITY;
  for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) d = std::max(d, std::abs(a[i] - b[i]));
  return d;
}

// The largest difference between any two ranks' copies of `v` (0 when every rank holds the same).
inline double spread_over_ranks(const std::vector<double>& v) {
  std::vector<double> hi = v, lo = v;
  tg::dist::allreduce(hi.data(), hi.size(), tg::dist::ReduceOp::max);
  tg::dist::allreduce(lo.data(), lo.size(), tg::dist::ReduceOp::min);
  return max_abs_diff(hi, lo);
}

}  // namespace tgtest
