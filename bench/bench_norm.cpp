// Fused normalization ops, forward + backward in float, one training step's worth per
// iteration: record on a reset tape (buffers reused), backward with a fixed upstream gradient.
// items/s counts input elements normalized per second (forward and backward together).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>

#include "tapegrad/tapegrad.hpp"

namespace tg = tapegrad;

namespace {

xt::xarray<float> random_array(const tg::Shape& shape, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> n(0.0f, 1.0f);
  xt::xarray<float> a = xt::xarray<float>::from_shape(shape);
  for (auto& v : a) v = n(rng);
  return a;
}

void set_counters(benchmark::State& state, std::size_t elements) {
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(elements));
  // x read, y written (forward); x, dy read, dx written (backward)
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(5 * elements * sizeof(float)));
}

// layer_norm over the last dim of x (N, C), with weight and bias as Parameters.
void BM_layer_norm_forward_backward(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto c = static_cast<std::size_t>(state.range(1));
  const xt::xarray<float> x = random_array({n, c}, 1);
  const xt::xarray<float> upstream = random_array({n, c}, 2);
  tg::Parameter<float> weight(xt::ones<float>({c})), bias(xt::zeros<float>({c}));
  tg::Tape<float> tape;
  for (auto _ : state) {
    tape.reset();
    weight.zero_grad();
    bias.zero_grad();
    auto xv = tape.input_view(x, true);
    auto y = tg::layer_norm(xv, tape.param(weight), tape.param(bias), 1);
    tape.backward(y, upstream);
    benchmark::DoNotOptimize(tape.grad(xv).data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n * c);
}
BENCHMARK(BM_layer_norm_forward_backward)->Args({256, 1024})->Args({64, 128});

// batch_norm in training mode over x (N, C), also returning the batch statistics as the
// BatchNorm1d module does.
void BM_batch_norm_train_forward_backward(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  const auto c = static_cast<std::size_t>(state.range(1));
  const xt::xarray<float> x = random_array({n, c}, 3);
  const xt::xarray<float> upstream = random_array({n, c}, 4);
  tg::Parameter<float> weight(xt::ones<float>({c})), bias(xt::zeros<float>({c}));
  xt::xarray<float> batch_mean, batch_var;
  tg::Tape<float> tape;
  for (auto _ : state) {
    tape.reset();
    weight.zero_grad();
    bias.zero_grad();
    auto xv = tape.input_view(x, true);
    auto y = tg::batch_norm(xv, tape.param(weight), tape.param(bias), 1e-5, &batch_mean, &batch_var);
    tape.backward(y, upstream);
    benchmark::DoNotOptimize(tape.grad(xv).data());
    benchmark::DoNotOptimize(batch_var.data());
    benchmark::ClobberMemory();
  }
  set_counters(state, n * c);
}
BENCHMARK(BM_batch_norm_train_forward_backward)->Args({256, 1024});

}  // namespace

BENCHMARK_MAIN();
