// The libtorch 1.13 side of the side-by-side comparison: the workloads of bench/bench_models.cpp
// under the same names (shapes in bench/model_workloads.hpp), written as a libtorch user would
// write them. Float32, one ATen thread, one interop thread, one OpenBLAS thread.
//
// Built only with -DTAPEGRAD_BENCH_LIBTORCH=ON (needs Debian's libtorch-dev:
// scripts/deps --bench-libtorch). scripts/bench --libtorch runs it alternately with
// bench_models and prints the ratio table.
#include <cblas.h>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <string>
#include <vector>

#include "../model_workloads.hpp"

namespace bm = bench_models;

namespace {

torch::Tensor tensor_of(const std::vector<float>& v, std::vector<std::int64_t> shape) {
  return torch::from_blob(const_cast<float*>(v.data()), shape, torch::kFloat32).clone();
}

std::int64_t i64(std::size_t n) { return static_cast<std::int64_t>(n); }

// ---- (1) a chain of 100 adds on a (4, 4) tensor, forward + backward ------------------------

void BM_add_chain(benchmark::State& state) {
  const std::vector<std::int64_t> s{i64(bm::kChainRows), i64(bm::kChainCols)};
  auto x = tensor_of(bm::normal_data(16, 1), s).requires_grad_(true);
  const auto upstream = tensor_of(bm::normal_data(16, 2), s);
  for (auto _ : state) {
    x.mutable_grad().reset();  // a fresh leaf each iteration, as tape.input() is
    auto y = x;
    for (int i = 0; i < bm::kChain; ++i) y = y + x;
    y.backward(upstream);
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  state.counters["time_per_op"] = benchmark::Counter(
      bm::kChain, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// ---- (2) the MLP training step ---------------------------------------------------------------

torch::nn::Sequential make_mlp(bm::Norm norm) {
  torch::nn::Sequential net;
  std::int64_t in = i64(bm::kMlpIn);
  const auto h = i64(bm::kMlpHidden);
  for (std::size_t k = 0; k < bm::kMlpBlocks; ++k) {
    net->push_back(torch::nn::Linear(in, h));
    if (norm == bm::Norm::Layer) net->push_back(torch::nn::LayerNorm(torch::nn::LayerNormOptions({h})));
    if (norm == bm::Norm::Batch) net->push_back(torch::nn::BatchNorm1d(h));
    net->push_back(torch::nn::Tanh());
    in = h;
  }
  net->push_back(torch::nn::Linear(h, i64(bm::kMlpClasses)));
  return net;
}

struct MlpTrainer {
  MlpTrainer(std::size_t batch, bm::Norm norm)
      : net(make_mlp(norm)),
        opt(net->parameters(), torch::optim::SGDOptions(bm::kLr)),
        x(tensor_of(bm::normal_data(batch * bm::kMlpIn, 10), {i64(batch), i64(bm::kMlpIn)})) {
    const auto t = bm::class_targets(batch, bm::kMlpClasses, 11);
    targets = torch::from_blob(const_cast<std::int64_t*>(t.data()), {i64(batch)}, torch::kInt64).clone();
  }

  float step() {
    opt.zero_grad();
    auto logits = net->forward(x);
    auto loss = torch::nn::functional::cross_entropy(logits, targets);
    loss.backward();
    opt.step();
    return loss.item<float>();
  }

  torch::nn::Sequential net;
  torch::optim::SGD opt;
  torch::Tensor x, targets;
};

void BM_mlp_step(benchmark::State& state, bm::MlpCase c) {
  MlpTrainer tr(c.batch, c.norm);
  for (auto _ : state) benchmark::DoNotOptimize(tr.step());
}

void BM_mlp_soak(benchmark::State& state) {
  for (auto _ : state) {
    MlpTrainer tr(32, bm::Norm::Batch);
    for (int i = 0; i < bm::kSoakWarmup; ++i) tr.step();
    const double warm = bm::rss_kib();
    for (int i = bm::kSoakWarmup; i < bm::kSoakSteps; ++i) tr.step();
    const double end = bm::rss_kib();
    state.counters["rss_warm_KiB"] = warm;
    state.counters["rss_end_KiB"] = end;
    state.counters["rss_growth_KiB"] = end - warm;
  }
}

// ---- (3) RNN steps ---------------------------------------------------------------------------
// x (T, N, I) time-major, target (N, 1); the head reads the last hidden state.

struct RnnData {
  torch::Tensor x, target;
  RnnData()
      : x(tensor_of(bm::normal_data(bm::kRnnSeq * bm::kRnnBatch * bm::kRnnInput, 20),
                    {i64(bm::kRnnSeq), i64(bm::kRnnBatch), i64(bm::kRnnInput)})),
        target(tensor_of(bm::normal_data(bm::kRnnBatch, 21), {i64(bm::kRnnBatch), 1})) {}
};

// torch::nn::RNN (tanh, one layer), the fused ATen kernel path.
void BM_rnn_step(benchmark::State& state) {
  RnnData d;
  torch::nn::RNN rnn(torch::nn::RNNOptions(i64(bm::kRnnInput), i64(bm::kRnnHidden)));
  torch::nn::Linear head(i64(bm::kRnnHidden), 1);
  auto params = rnn->parameters();
  for (auto& p : head->parameters()) params.push_back(p);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(bm::kLr));
  for (auto _ : state) {
    opt.zero_grad();
    auto out = std::get<0>(rnn->forward(d.x));  // (T, N, H)
    auto loss = torch::mse_loss(head->forward(out[i64(bm::kRnnSeq) - 1]), d.target);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
}

// torch::nn::LSTM and torch::nn::GRU (ATen's CPU path), the head on the top layer's last
// output; `hidden` and `layers` for the 2-layer LSTM at hidden 256.
template <class Module, class Options>
void recurrent_steps(benchmark::State& state, std::size_t hidden, std::size_t layers) {
  RnnData d;
  Module rnn(Options(i64(bm::kRnnInput), i64(hidden)).num_layers(i64(layers)));
  torch::nn::Linear head(i64(hidden), 1);
  auto params = rnn->parameters();
  for (auto& p : head->parameters()) params.push_back(p);
  torch::optim::SGD opt(params, torch::optim::SGDOptions(bm::kLr));
  for (auto _ : state) {
    opt.zero_grad();
    const torch::Tensor out = std::get<0>(rnn->forward(d.x));  // (T, N, H)
    torch::Tensor loss = torch::mse_loss(head->forward(out[i64(bm::kRnnSeq) - 1]), d.target);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
}

void BM_lstm_step(benchmark::State& state) {
  recurrent_steps<torch::nn::LSTM, torch::nn::LSTMOptions>(state, bm::kRnnHidden, 1);
}
void BM_gru_step(benchmark::State& state) {
  recurrent_steps<torch::nn::GRU, torch::nn::GRUOptions>(state, bm::kRnnHidden, 1);
}
void BM_lstm_2layer_step(benchmark::State& state) {
  recurrent_steps<torch::nn::LSTM, torch::nn::LSTMOptions>(state, bm::kDeepLstmHidden, bm::kDeepLstmLayers);
}

// A layer-normalized Elman RNN, written as a loop (libtorch has no such module), as
// tapegrad's LNRNN (Ba et al. 2016, eq. 4, the summed form):
//   h_t = tanh(g LN(W_ih x_t + W_hh h_{t-1}) + b),  h_0 = 0    (no linear biases: LN's b)
// The input projection of all time steps is one GEMM before the loop, as a careful user (and
// tapegrad's LNRNN) computes it.
void BM_lnrnn_step(benchmark::State& state) {
  RnnData d;
  const auto h = i64(bm::kRnnHidden);
  torch::nn::Linear ih(torch::nn::LinearOptions(i64(bm::kRnnInput), h).bias(false));
  torch::nn::Linear hh(torch::nn::LinearOptions(h, h).bias(false));
  torch::nn::Linear head(h, 1);
  torch::nn::LayerNorm ln(torch::nn::LayerNormOptions({h}));
  std::vector<torch::Tensor> params;
  for (auto* m : std::initializer_list<torch::nn::Module*>{ih.get(), hh.get(), ln.get(), head.get()}) {
    for (auto& p : m->parameters()) params.push_back(p);
  }
  torch::optim::SGD opt(params, torch::optim::SGDOptions(bm::kLr));
  for (auto _ : state) {
    opt.zero_grad();
    auto pre = ih->forward(d.x);  // (T, N, H)
    auto state_h = torch::zeros({i64(bm::kRnnBatch), h});
    for (std::int64_t t = 0; t < i64(bm::kRnnSeq); ++t) {
      state_h = torch::tanh(ln->forward(pre[t] + hh->forward(state_h)));
    }
    auto loss = torch::mse_loss(head->forward(state_h), d.target);
    loss.backward();
    opt.step();
    benchmark::DoNotOptimize(loss.item<float>());
  }
}

// ---- (4) fused normalization kernels ----------------------------------------------------------
// x is a leaf that requires grad; its grad is reset each iteration (a fresh leaf, as
// tape.input() is); weight and bias grads are zeroed, as an optimizer's zero_grad does.

template <bool kLayer>
void BM_norm_fwd_bwd(benchmark::State& state, bm::NormCase c) {
  const std::vector<std::int64_t> s{i64(c.rows), i64(c.cols)};
  auto x = tensor_of(bm::normal_data(c.rows * c.cols, 3), s).requires_grad_(true);
  const auto upstream = tensor_of(bm::normal_data(c.rows * c.cols, 4), s);
  auto w = torch::ones({i64(c.cols)}).requires_grad_(true);
  auto b = torch::zeros({i64(c.cols)}).requires_grad_(true);
  auto running_mean = torch::zeros({i64(c.cols)}), running_var = torch::ones({i64(c.cols)});
  for (auto _ : state) {
    x.mutable_grad().reset();
    if (w.grad().defined()) {
      w.mutable_grad().zero_();
      b.mutable_grad().zero_();
    }
    auto y = kLayer ? torch::layer_norm(x, {i64(c.cols)}, w, b, 1e-5)
                    : torch::batch_norm(x, w, b, running_mean, running_var, true, 0.1, 1e-5, false);
    y.backward(upstream);
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(c.rows * c.cols));
}

void BM_group_norm_fwd_bwd(benchmark::State& state, bm::NormCase c) {
  const std::vector<std::int64_t> s{i64(c.rows), i64(c.cols)};
  auto x = tensor_of(bm::normal_data(c.rows * c.cols, 3), s).requires_grad_(true);
  const auto upstream = tensor_of(bm::normal_data(c.rows * c.cols, 4), s);
  auto w = torch::ones({i64(c.cols)}).requires_grad_(true);
  auto b = torch::zeros({i64(c.cols)}).requires_grad_(true);
  for (auto _ : state) {
    x.mutable_grad().reset();
    if (w.grad().defined()) {
      w.mutable_grad().zero_();
      b.mutable_grad().zero_();
    }
    auto y = torch::group_norm(x, i64(bm::kGroupNormGroups), w, b, 1e-5);
    y.backward(upstream);
    benchmark::DoNotOptimize(x.grad().data_ptr());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(c.rows * c.cols));
}

// ---- (5) linear forward + backward, and the raw sgemm (at::mm) --------------------------------

void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

void BM_linear_fwd_bwd(benchmark::State& state) {
  const std::size_t rows = bm::kLinRows, in = bm::kLinIn, out = bm::kLinOut;
  auto w = tensor_of(bm::normal_data(out * in, 5, 0.03f), {i64(out), i64(in)}).requires_grad_(true);
  auto b = tensor_of(bm::normal_data(out, 6), {i64(out)}).requires_grad_(true);
  auto x = tensor_of(bm::normal_data(rows * in, 7), {i64(rows), i64(in)}).requires_grad_(true);
  const auto upstream = tensor_of(bm::normal_data(rows * out, 8), {i64(rows), i64(out)});
  for (auto _ : state) {
    x.mutable_grad().reset();
    if (w.grad().defined()) {
      w.mutable_grad().zero_();
      b.mutable_grad().zero_();
    }
    auto y = torch::linear(x, w, b);
    y.backward(upstream);
    benchmark::DoNotOptimize(w.grad().data_ptr());
  }
  set_flops(state, 3 * 2.0 * double(rows) * double(in) * double(out));
}

void BM_raw_sgemm(benchmark::State& state) {
  const auto M = i64(bm::kLinRows), K = i64(bm::kLinIn), N = i64(bm::kLinOut);
  const auto a = tensor_of(bm::normal_data(std::size_t(M * K), 7), {M, K});
  const auto b = tensor_of(bm::normal_data(std::size_t(K * N), 5), {K, N});
  auto c = torch::empty({M, N});
  torch::NoGradGuard no_grad;
  for (auto _ : state) {
    at::mm_out(c, a, b);
    benchmark::DoNotOptimize(c.data_ptr());
  }
  set_flops(state, 2.0 * double(M) * double(N) * double(K));
}

// The same workloads with 1 and 2 intra-op threads (ATen's and OpenBLAS's), wall-clock time.
void BM_threads_mlp(benchmark::State& state, int threads) {
  torch::set_num_threads(threads);
  openblas_set_num_threads(threads);
  BM_mlp_step(state, bm::MlpCase{"", 256, bm::Norm::None});
  torch::set_num_threads(1);
  openblas_set_num_threads(1);
}
void BM_threads_linear(benchmark::State& state, int threads) {
  torch::set_num_threads(threads);
  openblas_set_num_threads(threads);
  BM_linear_fwd_bwd(state);
  torch::set_num_threads(1);
  openblas_set_num_threads(1);
}

}  // namespace

int main(int argc, char** argv) {
  at::set_num_interop_threads(1);
  torch::set_num_threads(1);
  openblas_set_num_threads(1);
  benchmark::AddCustomContext("library", "libtorch " TORCH_VERSION);
  benchmark::AddCustomContext("aten_threads", std::to_string(torch::get_num_threads()));
  const auto us = benchmark::kMicrosecond;
  benchmark::RegisterBenchmark("add_chain_fwd_bwd/100x(4,4)", BM_add_chain)->Unit(us);
  for (const auto& c : bm::kMlpCases) benchmark::RegisterBenchmark(c.name, BM_mlp_step, c)->Unit(us);
  benchmark::RegisterBenchmark("rnn_step/nn_rnn", BM_rnn_step)->Unit(us);
  benchmark::RegisterBenchmark("rnn_step/layernorm_rnn", BM_lnrnn_step)->Unit(us);
  benchmark::RegisterBenchmark("rnn_step/nn_lstm", BM_lstm_step)->Unit(us);
  benchmark::RegisterBenchmark("rnn_step/nn_gru", BM_gru_step)->Unit(us);
  benchmark::RegisterBenchmark("rnn_step/nn_lstm_2layer_h256", BM_lstm_2layer_step)->Unit(us);
  for (const auto& c : bm::kLayerNormCases) {
    benchmark::RegisterBenchmark(c.name, BM_norm_fwd_bwd<true>, c)->Unit(us);
  }
  for (const auto& c : bm::kBatchNormCases) {
    benchmark::RegisterBenchmark(c.name, BM_norm_fwd_bwd<false>, c)->Unit(us);
  }
  for (const auto& c : bm::kGroupNormCases) {
    benchmark::RegisterBenchmark(c.name, BM_group_norm_fwd_bwd, c)->Unit(us);
  }
  benchmark::RegisterBenchmark("linear_fwd_bwd/256x1024->1024", BM_linear_fwd_bwd)->Unit(us);
  benchmark::RegisterBenchmark("raw_sgemm/256x1024x1024", BM_raw_sgemm)->Unit(us);
  bm::register_thread_rows(BM_threads_mlp, BM_threads_linear);
  benchmark::RegisterBenchmark("mlp_soak/batch:32/batchnorm/10000_steps", BM_mlp_soak)
      ->Iterations(1)
      ->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
