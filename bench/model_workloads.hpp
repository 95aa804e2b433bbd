#pragma once
// The workloads of the side-by-side benchmark, shared by bench_models (tapegrad) and
// bench/libtorch/bench_models_libtorch (libtorch 1.13): the same names, shapes and inputs, so
// that scripts/bench can pair the two programs' results by benchmark name. No tapegrad or torch
// type: it must compile in both programs.
//
// Every step, on both sides, is what a user writes: zero the grads, record the forward pass,
// the loss, backward, one SGD update. Float32, one thread (ATen, OpenBLAS).
#include <cstddef>
#include <cstdint>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <unistd.h>

namespace bench_models {

// ---- (1) engine overhead: a chain of 100 adds on a (4, 4) tensor, forward + backward --------
constexpr int kChain = 100;
constexpr std::size_t kChainRows = 4, kChainCols = 4;

// ---- (2) MLP: 32 -> [Linear 128, norm, Tanh] x 3 -> Linear 10, cross-entropy, SGD ----------
constexpr std::size_t kMlpIn = 32, kMlpHidden = 128, kMlpBlocks = 3, kMlpClasses = 10;
constexpr double kLr = 0.01;
enum class Norm { None, Layer, Batch };

struct MlpCase {
  const char* name;
  std::size_t batch;
  Norm norm;
};
// BatchNorm in training mode needs more than one value per channel, so batch 1 has no
// BatchNorm case (both libraries throw for it).
constexpr MlpCase kMlpCases[] = {
    {"mlp_step/batch:1/none", 1, Norm::None},           {"mlp_step/batch:1/layernorm", 1, Norm::Layer},
    {"mlp_step/batch:32/none", 32, Norm::None},         {"mlp_step/batch:32/layernorm", 32, Norm::Layer},
    {"mlp_step/batch:32/batchnorm", 32, Norm::Batch},   {"mlp_step/batch:256/none", 256, Norm::None},
    {"mlp_step/batch:256/layernorm", 256, Norm::Layer}, {"mlp_step/batch:256/batchnorm", 256, Norm::Batch},
};

// ---- (3) RNN: input 16, hidden 128, seq 32, batch 32; Linear(128, 1) on the last state, MSE --
constexpr std::size_t kRnnInput = 16, kRnnHidden = 128, kRnnSeq = 32, kRnnBatch = 32;
// The same with torch.nn.LSTM / GRU (one layer, hidden 128), and a 2-layer LSTM at hidden 256.
constexpr std::size_t kDeepLstmHidden = 256, kDeepLstmLayers = 2;

// ---- (4) fused normalization kernels, forward + backward with a fixed upstream gradient -----
struct NormCase {
  const char* name;
  std::size_t rows, cols;
};
constexpr NormCase kLayerNormCases[] = {{"layer_norm_fwd_bwd/256x1024", 256, 1024},
                                        {"layer_norm_fwd_bwd/64x128", 64, 128}};
constexpr NormCase kBatchNormCases[] = {{"batch_norm_train_fwd_bwd/256x1024", 256, 1024}};
// GroupNorm over (rows, cols) with kGroupNormGroups groups of cols / groups channels.
constexpr NormCase kGroupNormCases[] = {{"group_norm_fwd_bwd/256x1024/groups:32", 256, 1024}};
constexpr std::size_t kGroupNormGroups = 32;

// ---- (5) GEMM-bound: linear 256 x 1024 -> 1024 forward + backward, and one raw sgemm --------
constexpr std::size_t kLinRows = 256, kLinIn = 1024, kLinOut = 1024;

// ---- (6) memory soak: MLP batch 32 with BatchNorm1d, many steps, RSS after warm-up and end --
constexpr int kSoakSteps = 10000, kSoakWarmup = 1000;

// Inputs: the same pseudo-random numbers on both sides (same seed, same generator).
inline std::vector<float> normal_data(std::size_t n, std::uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = scale * d(rng);
  return v;
}
inline std::vector<std::int64_t> class_targets(std::size_t n, std::size_t classes, std::uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::int64_t> t(n);
  for (auto& x : t) x = static_cast<std::int64_t>(rng() % classes);
  return t;
}

// Resident set size of this process in KiB (Linux, /proc/self/statm: pages of size, resident).
inline double rss_kib() {
  std::ifstream f("/proc/self/statm");
  long size = 0, resident = 0;
  f >> size >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / 1024.0;
}

// ---- (7) two cores for one run: the MLP batch-256 step (no norm) and linear forward+backward
// with 1 and 2 intra-op threads, in wall-clock time (CPU time adds up over threads). Each program
// passes its own two functions (they set and restore its thread counts).
using ThreadedBench = void (*)(benchmark::State&, int threads);
inline void register_thread_rows(ThreadedBench mlp_step, ThreadedBench linear_fwd_bwd) {
  for (int threads : {1, 2}) {
    const std::string suffix = "/threads:" + std::to_string(threads);
    benchmark::RegisterBenchmark(("threads/mlp_step/batch:256/none" + suffix).c_str(), mlp_step, threads)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
    benchmark::RegisterBenchmark(("threads/linear_fwd_bwd/256x1024->1024" + suffix).c_str(), linear_fwd_bwd,
                                 threads)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
}

}  // namespace bench_models
