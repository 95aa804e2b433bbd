// Recurrent training steps in float: a sequence model (input 16, hidden 128, seq 32, batch 32)
// with a Linear(128, 1) head on the last state, MSE loss, SGD step. One iteration = one full
// training step: record on a reset tape (buffers reused), backward, optimizer update.
// The counter us_per_step is CPU microseconds per step; items/s counts sequences.
//
// libtorch 1.13 reference on this machine class (same shapes): torch::nn::RNN step 2536 us,
// a manual per-step loop with LayerNorm 3242 us.
//
//   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_BENCH=ON
//   cmake --build build-bench -j2 --target bench_rnn && ./build-bench/bench/bench_rnn
// BLAS runs single-threaded unless TAPEGRAD_BENCH_THREADS says otherwise (e.g. =2).
#include <benchmark/benchmark.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <memory>
#include <random>

#include "tapegrad/tapegrad.hpp"

namespace tg = tapegrad;

namespace {

constexpr std::size_t kInput = 16, kHidden = 128, kSeq = 32, kBatch = 32;

xt::xarray<float> random_array(const tg::Shape& shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  xt::xarray<float> a = xt::xarray<float>::from_shape(shape);
  for (auto& v : a) v = n(rng);
  return a;
}

// One benchmark body for any recurrent module with run(tape, x) -> {output, h_n}.
template <class M>
void train_steps(benchmark::State& state, M& rnn) {
  tg::Generator gen(1);
  const double k = 1.0 / std::sqrt(double(kHidden));
  tg::Parameter<float> head_w(tg::uniform_array<float>({1, kHidden}, -k, k, gen));
  tg::Parameter<float> head_b(tg::uniform_array<float>({1}, -k, k, gen));
  auto params = rnn.parameters();
  params.push_back(&head_w);
  params.push_back(&head_b);
  tg::SGD<float> opt(params, 0.01);
  const xt::xarray<float> x = random_array({kSeq, kBatch, kInput}, 2);
  const xt::xarray<float> target = random_array({kBatch, 1}, 3);
  tg::Tape<float> tape;
  for (auto _ : state) {
    tape.reset();
    opt.zero_grad();
    const auto r = rnn.run(tape, tape.input(x));
    const auto last = tg::select(r.h_n, 0, -1);  // (N, H): the top layer's last state
    const auto y = tg::linear(last, tape.param(head_w), tape.param(head_b));
    const auto loss = tg::mse_loss(y, tape.constant(target));
    tape.backward(loss);
    opt.step();
    benchmark::DoNotOptimize(head_w.value.data());
    benchmark::ClobberMemory();
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(kBatch));
  state.counters["us_per_step"] =
      benchmark::Counter(static_cast<double>(state.iterations()) * 1e-6,
                         benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void BM_rnn_tanh_train_step(benchmark::State& state) {
  tg::Generator gen(7);
  tg::RNN<float> rnn(kInput, kHidden, tg::RNNOptions(), gen);
  train_steps(state, rnn);
}
BENCHMARK(BM_rnn_tanh_train_step)->Unit(benchmark::kMicrosecond);

void BM_lnrnn_summed_train_step(benchmark::State& state) {
  tg::Generator gen(7);
  tg::LNRNN<float> rnn(kInput, kHidden, tg::LNRNNOptions().variant(tg::LNVariant::Summed), gen);
  train_steps(state, rnn);
}
BENCHMARK(BM_lnrnn_summed_train_step)->Unit(benchmark::kMicrosecond);

void BM_bnrnn_train_step(benchmark::State& state) {
  tg::Generator gen(7);
  tg::BNRNN<float> rnn(kInput, kHidden, tg::BNRNNOptions(), gen);
  train_steps(state, rnn);
}
BENCHMARK(BM_bnrnn_train_step)->Unit(benchmark::kMicrosecond);

}  // namespace

// BLAS runs single-threaded unless TAPEGRAD_BENCH_THREADS says otherwise, as in bench_ops.
int main(int argc, char** argv) {
  const char* env = std::getenv("TAPEGRAD_BENCH_THREADS");
  const int threads = env ? std::atoi(env) : 1;
  tg::set_blas_threads(threads > 0 ? threads : 1);
  benchmark::AddCustomContext("blas_threads", std::to_string(tg::blas_threads()));
  benchmark::AddCustomContext("blas", tg::blas_info().summary());
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
