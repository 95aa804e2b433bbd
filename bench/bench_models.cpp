// Small-model training steps, the tapegrad side of the side-by-side comparison with libtorch
// (bench/libtorch/bench_models_libtorch.cpp runs the same workloads under the same names; the
// shapes live in bench/model_workloads.hpp). scripts/bench builds both, runs them alternately
// and prints the time ratios.
//
//   scripts/bench                # tapegrad only
//   scripts/bench --libtorch     # side by side, with the ratio table
//
// One Tape is reused and reset() every step, as a training loop should: after the first step
// the tape's node slots already hold buffers of the right sizes, so a step allocates nothing.
// Counters: tape_bytes is Tape::bytes_allocated() after a step (the tape's peak: reset()
// keeps every buffer); the soak reports the process RSS after warm-up and at the end.
#include <cblas.h>

#include <benchmark/benchmark.h>

#include <memory>
#include <string>

#include "model_workloads.hpp"
#include "tapegrad_workloads.hpp"
#include "tapegrad/tapegrad.hpp"

namespace tg = tapegrad;
namespace bm = bench_models;

namespace {

xt::xarray<float> array_of(const std::vector<float>& v, const tg::Shape& shape) {
  xt::xarray<float> a = xt::xarray<float>::from_shape(shape);
  std::copy(v.begin(), v.end(), a.data());
  return a;
}

// ---- (1) a chain of 100 adds on a (4, 4) tensor, forward + backward ------------------------

void BM_add_chain(benchmark::State& state) {
  const tg::Shape s{bm::kChainRows, bm::kChainCols};
  const auto x0 = array_of(bm::normal_data(16, 1), s);
  const auto upstream = array_of(bm::normal_data(16, 2), s);
  tg::Tape<float> t;
  for (auto _ : state) {
    t.reset();
    auto x = t.input(x0, true);
    auto y = x;
    for (int i = 0; i < bm::kChain; ++i) y = y + x;
    t.backward(y, upstream);
    benchmark::DoNotOptimize(t.grad(x).data());
  }
  state.counters["time_per_op"] = benchmark::Counter(
      bm::kChain, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// ---- (2) the MLP training step ---------------------------------------------------------------

// Rates for the roofline table of scripts/bench-ratio.py: FLOP/s of the products (against the
// peak sgemm rate) and bytes/s (against the streaming bandwidth of stream_triad).
void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}
void set_bytes(benchmark::State& state, double bytes_per_iteration) {
  state.counters["bytes/s"] =
      benchmark::Counter(bytes_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

// One training step's state: model, optimizer, data, tape.
struct MlpTrainer {
  MlpTrainer(std::size_t batch, bm::Norm norm)
      : net(bm::make_tapegrad_mlp(norm)),
        opt(net->parameters(), bm::kLr),
        x0(array_of(bm::normal_data(batch * bm::kMlpIn, 10), {batch, bm::kMlpIn})),
        targets(bm::class_targets(batch, bm::kMlpClasses, 11)) {}

  float step() {
    opt.zero_grad();
    tape.reset();
    auto logits = (*net)(tape, tape.input(x0));
    auto loss = tg::cross_entropy(logits, targets);
    tape.backward(loss);
    opt.step();
    return tape.value(loss).data()[0];
  }

  std::shared_ptr<tg::Sequential<float>> net;
  tg::SGD<float> opt;
  xt::xarray<float> x0;
  std::vector<std::int64_t> targets;
  tg::Tape<float> tape;
};

void BM_mlp_step(benchmark::State& state, bm::MlpCase c) {
  MlpTrainer tr(c.batch, c.norm);
  for (auto _ : state) benchmark::DoNotOptimize(tr.step());
  // The products: forward, dW and (but for the first layer, whose input needs no grad) dX.
  const double h = bm::kMlpHidden, first = double(bm::kMlpIn) * h,
               rest = double(bm::kMlpBlocks - 1) * h * h + h * double(bm::kMlpClasses);
  set_flops(state, 2.0 * double(c.batch) * (2 * first + 3 * rest));
  state.counters["tape_bytes"] = static_cast<double>(tr.tape.bytes_allocated());
  state.counters["tape_nodes"] = static_cast<double>(tr.tape.size());
}

// 10,000 steps; RSS must be flat after warm-up: the tape reuses its buffers, the optimizer
// has no state (plain SGD), BatchNorm1d updates its running statistics in place.
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
    state.counters["tape_bytes"] = static_cast<double>(tr.tape.bytes_allocated());
    if (end - warm > 1024) state.SkipWithError("RSS grew by more than 1 MiB after warm-up");
  }
}

// ---- (3) RNN steps -------------------------------------------------------------------------
// x (T, N, I) time-major, target (N, 1); the Linear(128, 1) head reads the last hidden state.

template <class M>
void rnn_steps(benchmark::State& state, M& rnn, std::size_t hidden = bm::kRnnHidden) {
  tg::Linear<float> head(hidden, 1);
  auto params = rnn.parameters();
  for (auto* p : head.parameters()) params.push_back(p);
  tg::SGD<float> opt(params, bm::kLr);
  const auto x0 = array_of(bm::normal_data(bm::kRnnSeq * bm::kRnnBatch * bm::kRnnInput, 20),
                           {bm::kRnnSeq, bm::kRnnBatch, bm::kRnnInput});
  const auto target = array_of(bm::normal_data(bm::kRnnBatch, 21), {bm::kRnnBatch, 1});
  tg::Tape<float> t;
  for (auto _ : state) {
    opt.zero_grad();
    t.reset();
    const auto r = rnn.run(t, t.input(x0));
    const auto loss = tg::mse_loss(head(t, tg::select(r.h_n, 0, -1)), t.constant(target));
    t.backward(loss);
    opt.step();
    benchmark::DoNotOptimize(t.value(loss).data()[0]);
  }
  state.counters["tape_bytes"] = static_cast<double>(t.bytes_allocated());
}

// nn::RNN: one fused node for the whole sequence (BPTT in one loop).
void BM_rnn_step(benchmark::State& state) {
  tg::RNN<float> rnn(bm::kRnnInput, bm::kRnnHidden);
  rnn_steps(state, rnn);
}

// LNRNN, Ba et al.'s summed form: h_t = tanh(LN(W_hh h_{t-1} + W_ih x_t)), built per step from
// the fused ops (linear, layer_norm, add, tanh).
void BM_lnrnn_step(benchmark::State& state) {
  tg::LNRNN<float> rnn(bm::kRnnInput, bm::kRnnHidden);
  rnn_steps(state, rnn);
}

// nn::LSTM and nn::GRU: one fused node per layer for the whole sequence, as RNN.
void BM_lstm_step(benchmark::State& state) {
  tg::LSTM<float> rnn(bm::kRnnInput, bm::kRnnHidden);
  rnn_steps(state, rnn);
}

void BM_gru_step(benchmark::State& state) {
  tg::GRU<float> rnn(bm::kRnnInput, bm::kRnnHidden);
  rnn_steps(state, rnn);
}

void BM_lstm_2layer_step(benchmark::State& state) {
  tg::LSTM<float> rnn(bm::kRnnInput, bm::kDeepLstmHidden, tg::LSTMOptions().num_layers(bm::kDeepLstmLayers));
  rnn_steps(state, rnn, bm::kDeepLstmHidden);
}

// ---- (4) fused normalization kernels ----------------------------------------------------------
// x is an input leaf that requires grad (as the output of an earlier layer would), bound with
// input_view: read in place, as libtorch reads its leaf x, where input() would copy 1 MiB.
// backward reads the upstream in place too. weight and bias are Parameters whose grads are
// zeroed each iteration, as an optimizer's zero_grad does.

// The least traffic of a fused norm forward+backward: forward reads x and writes y, backward
// reads dy and x and writes dx (weights and statistics are a row or a column: negligible).
constexpr double kNormArrays = 5;

template <bool kLayer>
void BM_norm_fwd_bwd(benchmark::State& state, bm::NormCase c) {
  const tg::Shape s{c.rows, c.cols};
  const auto x0 = array_of(bm::normal_data(c.rows * c.cols, 3), s);
  const auto upstream = array_of(bm::normal_data(c.rows * c.cols, 4), s);
  tg::Parameter<float> w(xt::ones<float>({c.cols})), b(xt::zeros<float>({c.cols}));
  xt::xarray<float> batch_mean, batch_var;
  tg::Tape<float> t;
  for (auto _ : state) {
    w.zero_grad();
    b.zero_grad();
    t.reset();
    auto x = t.input_view(x0, true);
    auto y = kLayer ? tg::layer_norm(x, t.param(w), t.param(b), 1)
                    : tg::batch_norm(x, t.param(w), t.param(b), 1e-5, &batch_mean, &batch_var);
    t.backward(y, upstream);
    benchmark::DoNotOptimize(t.grad(x).data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(c.rows * c.cols));
  set_bytes(state, kNormArrays * double(c.rows * c.cols) * sizeof(float));
}

// GroupNorm (N, C) with kGroupNormGroups groups, as BM_norm_fwd_bwd.
void BM_group_norm_fwd_bwd(benchmark::State& state, bm::NormCase c) {
  const tg::Shape s{c.rows, c.cols};
  const auto x0 = array_of(bm::normal_data(c.rows * c.cols, 3), s);
  const auto upstream = array_of(bm::normal_data(c.rows * c.cols, 4), s);
  tg::Parameter<float> w(xt::ones<float>({c.cols})), b(xt::zeros<float>({c.cols}));
  tg::Tape<float> t;
  for (auto _ : state) {
    w.zero_grad();
    b.zero_grad();
    t.reset();
    auto x = t.input_view(x0, true);
    auto y = tg::group_norm(x, bm::kGroupNormGroups, t.param(w), t.param(b));
    t.backward(y, upstream);
    benchmark::DoNotOptimize(t.grad(x).data());
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(c.rows * c.cols));
  set_bytes(state, kNormArrays * double(c.rows * c.cols) * sizeof(float));
}

// ---- (5) linear forward + backward, and the raw sgemm it is held against ---------------------

void BM_linear_fwd_bwd(benchmark::State& state, tg::GemmBackend backend) {
  tg::set_gemm_backend(backend);
  const std::size_t rows = bm::kLinRows, in = bm::kLinIn, out = bm::kLinOut;
  tg::Parameter<float> w(array_of(bm::normal_data(out * in, 5, 0.03f), {out, in}));
  tg::Parameter<float> b(array_of(bm::normal_data(out, 6), {out}));
  const auto x0 = array_of(bm::normal_data(rows * in, 7), {rows, in});
  const auto upstream = array_of(bm::normal_data(rows * out, 8), {rows, out});
  tg::Tape<float> t;
  for (auto _ : state) {
    w.zero_grad();
    b.zero_grad();
    t.reset();
    auto x = t.input_view(x0, true);
    auto y = tg::linear(x, t.param(w), t.param(b));
    t.backward(y, upstream);
    benchmark::DoNotOptimize(w.grad().data());
  }
  set_flops(state, 3 * 2.0 * double(rows) * double(in) * double(out));
  tg::set_gemm_backend(tg::GemmBackend::kAuto);
}

void BM_raw_sgemm(benchmark::State& state) {
  const int M = bm::kLinRows, K = bm::kLinIn, N = bm::kLinOut;
  const auto a = bm::normal_data(std::size_t(M) * K, 7), b = bm::normal_data(std::size_t(K) * N, 5);
  std::vector<float> c(std::size_t(M) * N);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f,
                c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, 2.0 * M * N * K);
}

// The same product on tapegrad's own packed kernels (GemmBackend::kOwn: what gemm runs when the
// BLAS's kernel is below the CPU), beside the raw sgemm in the same run.
void BM_own_sgemm(benchmark::State& state) {
  const std::size_t M = bm::kLinRows, K = bm::kLinIn, N = bm::kLinOut;
  const auto a = bm::normal_data(M * K, 7), b = bm::normal_data(K * N, 5);
  std::vector<float> c(M * N);
  tg::set_gemm_backend(tg::GemmBackend::kOwn);
  for (auto _ : state) {
    tg::gemm<float>(false, false, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f, c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  tg::set_gemm_backend(tg::GemmBackend::kAuto);
  set_flops(state, 2.0 * double(M) * double(N) * double(K));
}

// STREAM's triad a = b + s c over three float arrays of `bytes` each: the bandwidth the norm
// workloads are held against. 1 MiB arrays stay in this machine's caches, as the norm
// workloads' 1 MiB arrays do; 64 MiB arrays stream from memory.
void BM_stream_triad(benchmark::State& state, std::size_t bytes) {
  const std::size_t n = bytes / sizeof(float);
  std::vector<float> a(n), b = bm::normal_data(n, 1), c = bm::normal_data(n, 2);
  const float s = 0.5f;
  for (auto _ : state) {
    float* pa = a.data();
    const float *pb = b.data(), *pc = c.data();
    for (std::size_t i = 0; i < n; ++i) pa[i] = pb[i] + s * pc[i];
    benchmark::DoNotOptimize(a.data());
    benchmark::ClobberMemory();
  }
  set_bytes(state, 3.0 * double(n) * sizeof(float));
}

// Two cores for one run (core/threads.hpp): the MLP batch-256 step and linear forward+backward
// with set_num_threads(1) and (2), in wall-clock time (CPU time adds up over threads).
void BM_threads_mlp(benchmark::State& state, int threads) {
  tg::set_num_threads(threads);
  BM_mlp_step(state, bm::MlpCase{"", 256, bm::Norm::None});
  tg::set_num_threads(1);
}
void BM_threads_linear(benchmark::State& state, int threads) {
  tg::set_num_threads(threads);
  BM_linear_fwd_bwd(state, tg::GemmBackend::kAuto);
  tg::set_num_threads(1);
}

}  // namespace

int main(int argc, char** argv) {
  tg::set_blas_threads(1);
  benchmark::AddCustomContext("library", "tapegrad");
  benchmark::AddCustomContext("blas_threads", std::to_string(tg::blas_threads()));
  benchmark::AddCustomContext("blas", tg::blas_info().summary());
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
  benchmark::RegisterBenchmark("linear_fwd_bwd/256x1024->1024", BM_linear_fwd_bwd, tg::GemmBackend::kAuto)
      ->Unit(us);
  benchmark::RegisterBenchmark("linear_fwd_bwd/256x1024->1024/own_kernels", BM_linear_fwd_bwd,
                               tg::GemmBackend::kOwn)
      ->Unit(us);
  benchmark::RegisterBenchmark("raw_sgemm/256x1024x1024", BM_raw_sgemm)->Unit(us);
  benchmark::RegisterBenchmark("own_sgemm/256x1024x1024", BM_own_sgemm)->Unit(us);
  benchmark::RegisterBenchmark("stream_triad/3x1MiB", BM_stream_triad, std::size_t(1) << 20)->Unit(us);
  benchmark::RegisterBenchmark("stream_triad/3x64MiB", BM_stream_triad, std::size_t(64) << 20)->Unit(us);
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
