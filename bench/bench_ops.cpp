// Benchmarks of the engine's per-op overhead and of the GEMM-bound ops.
//
//   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DTAPEGRAD_BUILD_BENCH=ON
//   cmake --build build-bench -j2 --target bench_ops && ./build-bench/bench/bench_ops
//
// BLAS runs single-threaded unless TAPEGRAD_BENCH_THREADS says otherwise (e.g. =2).
// Results and the command that produced them: bench/RESULTS.md.
#include <cblas.h>

#include <cstdlib>
#include <random>

#include <benchmark/benchmark.h>

#include "tapegrad/tapegrad.hpp"

namespace tg = tapegrad;

namespace {

constexpr int kChain = 100;  // adds per iteration in the overhead benchmarks

xt::xarray<float> random_array(const tg::Shape& shape, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  xt::xarray<float> a = xt::xarray<float>::from_shape(shape);
  for (auto& v : a) v = n(rng);
  return a;
}

// CPU time per op = CPU time / (iterations * ops per iteration), printed as e.g. "45.2n"(s).
void set_time_per_op(benchmark::State& state, double ops_per_iteration) {
  state.counters["time_per_op"] = benchmark::Counter(
      ops_per_iteration, benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
}

// 2 M N K flops per GEMM; printed as e.g. "135G/s".
void set_flops(benchmark::State& state, double flops_per_iteration) {
  state.counters["FLOP/s"] =
      benchmark::Counter(flops_per_iteration, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- (1) per-op overhead: a chain of 100 adds on a (4, 4) tensor ---------------------------

void BM_add_chain_forward_no_grad(benchmark::State& state) {
  tg::Tape<float> t;
  const xt::xarray<float> x0 = random_array({4, 4}, 1);
  tg::NoGradGuard no_grad;
  for (auto _ : state) {
    t.reset();
    auto x = t.input(x0, true);
    auto y = x;
    for (int i = 0; i < kChain; ++i) y = y + x;
    benchmark::DoNotOptimize(t.value(y).data());
  }
  set_time_per_op(state, kChain);
}
BENCHMARK(BM_add_chain_forward_no_grad);

void BM_add_chain_forward_recording(benchmark::State& state) {
  tg::Tape<float> t;
  const xt::xarray<float> x0 = random_array({4, 4}, 1);
  for (auto _ : state) {
    t.reset();
    auto x = t.input(x0, true);
    auto y = x;
    for (int i = 0; i < kChain; ++i) y = y + x;
    benchmark::DoNotOptimize(t.value(y).data());
  }
  set_time_per_op(state, kChain);
}
BENCHMARK(BM_add_chain_forward_recording);

void BM_add_chain_forward_backward(benchmark::State& state) {
  tg::Tape<float> t;
  const xt::xarray<float> x0 = random_array({4, 4}, 1);
  const xt::xarray<float> upstream = random_array({4, 4}, 2);
  for (auto _ : state) {
    t.reset();
    auto x = t.input(x0, true);
    auto y = x;
    for (int i = 0; i < kChain; ++i) y = y + x;
    t.backward(y, upstream);
    benchmark::DoNotOptimize(t.grad(x).data());
  }
  set_time_per_op(state, kChain);
}
BENCHMARK(BM_add_chain_forward_backward);

// ---- (2) the physical reference: raw cblas_sgemm (256 x 1024) @ (1024 x 1024) -------------

void BM_raw_sgemm_256x1024x1024(benchmark::State& state) {
  const int M = 256, K = 1024, N = 1024;
  const xt::xarray<float> a = random_array({256, 1024}, 3), b = random_array({1024, 1024}, 4);
  xt::xarray<float> c = xt::xarray<float>::from_shape({256, 1024});
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, a.data(), K, b.data(), N, 0.0f,
                c.data(), N);
    benchmark::DoNotOptimize(c.data());
  }
  set_flops(state, 2.0 * M * N * K);
}

// ---- (3) linear (rows x in) -> out, forward + backward (3 GEMMs) ---------------------------
// Args: rows, in, out. 256 x 1024 -> 1024 is the GEMM-bound case to hold against raw sgemm;
// 32 x 64 -> 64 is a small-model layer, where the tape's overhead shows.

void BM_linear_forward_backward(benchmark::State& state) {
  const auto rows = static_cast<std::size_t>(state.range(0));
  const auto in = static_cast<std::size_t>(state.range(1));
  const auto out = static_cast<std::size_t>(state.range(2));
  tg::Parameter<float> w(random_array({out, in}, 5) * 0.03f), b(random_array({out}, 6));
  const xt::xarray<float> x0 = random_array({rows, in}, 7);
  const xt::xarray<float> upstream = random_array({rows, out}, 8);
  tg::Tape<float> t;
  for (auto _ : state) {
    t.reset();
    auto x = t.input(x0, true);
    auto y = tg::linear(x, t.param(w), t.param(b));
    t.backward(y, upstream);
    benchmark::DoNotOptimize(w.grad().data());
  }
  set_flops(state, 3 * 2.0 * double(rows) * double(in) * double(out));
}

// The same forward alone in batch-invariant mode (tapegrad's packed kernel) and with BLAS.
void BM_linear_256x1024_to_1024_forward(benchmark::State& state) {
  const std::size_t rows = 256, in = 1024, out = 1024;
  tg::BatchInvariantGuard mode(state.range(0) != 0);
  const xt::xarray<float> w0 = random_array({out, in}, 5) * 0.03f, b0 = random_array({out}, 6);
  const xt::xarray<float> x0 = random_array({rows, in}, 7);
  tg::Tape<float> t;
  tg::NoGradGuard no_grad;
  for (auto _ : state) {
    t.reset();
    auto y = tg::linear(t.input(x0), t.input(w0), t.input(b0));
    benchmark::DoNotOptimize(t.value(y).data());
  }
  set_flops(state, 2.0 * rows * in * out);
  state.SetLabel(state.range(0) ? "batch-invariant mode (packed kernel)" : "default (BLAS)");
}

}  // namespace

int main(int argc, char** argv) {
  const char* env = std::getenv("TAPEGRAD_BENCH_THREADS");
  const int threads = env ? std::atoi(env) : 1;
  tg::set_blas_threads(threads > 0 ? threads : 1);
  benchmark::AddCustomContext("blas_threads", std::to_string(tg::blas_threads()));
  benchmark::AddCustomContext("blas", tg::blas_info().summary());
  // The GEMM benchmarks: with BLAS threads, rates must come from wall time (CPU time counts
  // the main thread only); single-threaded, CPU time is steadier on a shared machine.
  const auto gemm_bench = [&](const char* name, void (*fn)(benchmark::State&)) {
    auto* b = benchmark::RegisterBenchmark(name, fn)->Unit(benchmark::kMillisecond);
    if (tg::blas_threads() > 1) b->UseRealTime();
    return b;
  };
  gemm_bench("BM_raw_sgemm_256x1024x1024", BM_raw_sgemm_256x1024x1024);
  gemm_bench("BM_linear_forward_backward", BM_linear_forward_backward)
      ->Args({256, 1024, 1024})
      ->Args({32, 64, 64});
  gemm_bench("BM_linear_256x1024_to_1024_forward", BM_linear_256x1024_to_1024_forward)->Arg(0)->Arg(1);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
