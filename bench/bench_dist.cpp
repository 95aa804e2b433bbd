// Data-parallel training on MPI (issue 19): what DistributedDataParallel's gradient average costs
// per step, and how a data-parallel MLP step scales from 1 to 2 ranks. Built only with MPI
// (TAPEGRAD_MPI, see bench/CMakeLists.txt). Run under mpirun; scripts/bench runs it at 2 ranks
// and (the scaling row) at 1 rank and prints the table (scripts/bench-dist.py):
//
//   export OMPI_MCA_btl_vader_single_copy_mechanism=none   # containers: no CMA single copy
//   mpirun --allow-run-as-root --oversubscribe -np 2 build-bench/bench/bench_dist
//
// Every rank runs every benchmark with the same fixed iteration count (the collectives of the
// ranks must match one to one; Google Benchmark's own choice of the count could differ between
// ranks and hang the job), the same --benchmark_* flags; rank 0 alone reports (the other ranks
// run with a reporter that prints nothing and without --benchmark_out). Times are wall-clock
// (UseRealTime): a rank waiting for the other is time the step loses. Rank 0's times.
//
// The model and inputs are bench_models' mlp_step (bench/model_workloads.hpp, kMlpCases): the
// MLP 32 -> [Linear 128, Tanh] x 3 -> Linear 10, cross-entropy, SGD; rank r takes rows
// [r b, (r + 1) b) of the global batch, whose first rows are bench_models' input of that batch.
//
//   dist/mlp_step/batch:32/none/ranks:R/local      the batch-32 step per rank through the DDP
//                                                  wrapper, gradients not averaged (tape.backward)
//   dist/mlp_step/batch:32/none/ranks:R/allreduce  the same with DDP's average (model.backward);
//                                                  the difference of the two is the overhead.
//                                                  Counters per step: allreduce_bytes (gradient
//                                                  bytes averaged), allreduce_calls (buckets)
//   dist/allreduce/floats:F/ranks:R                one mean allreduce of a flat float buffer of
//                                                  the MLP's gradient size, as DDP calls it
//   dist/mlp_step/global_batch:256/none/ranks:R    a data-parallel step at a global batch of 256:
//                                                  256 / R rows per rank, gradients averaged
#include <benchmark/benchmark.h>

#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "model_workloads.hpp"
#include "tapegrad_workloads.hpp"
#include "tapegrad/tapegrad.hpp"

namespace tg = tapegrad;
namespace bm = bench_models;

namespace {

// Fixed iteration counts (see above): about 0.2 to 0.5 s per repetition on an idle machine.
constexpr benchmark::IterationCount kStepIterations = 2000, kAllreduceIterations = 5000,
                                    kScalingIterations = 400;
constexpr std::size_t kGlobalBatch = 256;  // = bench_models' mlp_step/batch:256 (checked)

const bm::MlpCase& mlp_case(const std::string& name) {
  for (const auto& c : bm::kMlpCases) {
    if (name == c.name) return c;
  }
  throw std::invalid_argument("bench_dist: no MLP case " + name + " in bench/model_workloads.hpp");
}

// One rank's training state: its replica (DDP-wrapped), optimizer, shard of the batch, tape.
struct DdpTrainer {
  DdpTrainer(std::size_t per_rank, bm::Norm norm, int rank, int ranks)
      : ddp(bm::make_tapegrad_mlp(norm)),
        opt(ddp.parameters(), bm::kLr),
        x0(xt::xarray<float>::from_shape({per_rank, bm::kMlpIn})) {
    const std::size_t global = per_rank * static_cast<std::size_t>(ranks),
                      first = per_rank * static_cast<std::size_t>(rank);
    const auto x = bm::normal_data(global * bm::kMlpIn, 10);
    const auto t = bm::class_targets(global, bm::kMlpClasses, 11);
    std::copy(x.begin() + static_cast<std::ptrdiff_t>(first * bm::kMlpIn),
              x.begin() + static_cast<std::ptrdiff_t>((first + per_rank) * bm::kMlpIn), x0.data());
    targets.assign(t.begin() + static_cast<std::ptrdiff_t>(first),
                   t.begin() + static_cast<std::ptrdiff_t>(first + per_rank));
  }

  float step(bool average) {
    opt.zero_grad();
    tape.reset();
    auto logits = ddp(tape, tape.input(x0));
    auto loss = tg::cross_entropy(logits, targets);
    if (average) {
      ddp.backward(tape, loss);
    } else {
      tape.backward(loss);
    }
    opt.step();
    return tape.value(loss).data()[0];
  }

  std::size_t gradient_values() const {
    std::size_t n = 0;
    for (std::size_t i = 0; i < ddp.num_buckets(); ++i) n += ddp.bucket_size(i);
    return n;
  }

  tg::DistributedDataParallel<float> ddp;
  tg::SGD<float> opt;
  xt::xarray<float> x0;
  std::vector<std::int64_t> targets;
  tg::Tape<float> tape;
};

void BM_ddp_step(benchmark::State& state, std::size_t per_rank, bm::Norm norm, bool average) {
  DdpTrainer tr(per_rank, norm, tg::dist::rank(), tg::dist::world_size());
  tg::dist::barrier();  // the ranks start the timed loop together
  for (auto _ : state) benchmark::DoNotOptimize(tr.step(average));
  if (average) {
    state.counters["allreduce_bytes"] = static_cast<double>(tr.gradient_values() * sizeof(float));
    state.counters["allreduce_calls"] = static_cast<double>(tr.ddp.num_buckets());
  }
  state.counters["per_rank_batch"] = static_cast<double>(per_rank);
}

void BM_allreduce(benchmark::State& state, std::size_t n) {
  std::vector<float> flat = bm::normal_data(n, 12);
  tg::dist::barrier();
  for (auto _ : state) {
    tg::dist::allreduce(flat.data(), flat.size(), tg::dist::ReduceOp::mean, tg::dist::Group::world(),
                        tg::dist::Verify::none);
    benchmark::DoNotOptimize(flat.data());
  }
  state.counters["bytes"] = static_cast<double>(n * sizeof(float));
}

void register_rows(int ranks) {
  const std::string suffix = "/ranks:" + std::to_string(ranks);
  const bm::MlpCase& small = mlp_case("mlp_step/batch:32/none");
  for (const bool average : {false, true}) {
    benchmark::RegisterBenchmark(
        ("dist/" + std::string(small.name) + suffix + (average ? "/allreduce" : "/local")).c_str(),
        BM_ddp_step, small.batch, small.norm, average)
        ->Iterations(kStepIterations)
        ->UseRealTime()
        ->Unit(benchmark::kMicrosecond);
  }
  std::size_t values = 0;
  for (const auto* p : bm::make_tapegrad_mlp(small.norm)->parameters()) values += p->size();
  benchmark::RegisterBenchmark(("dist/allreduce/floats:" + std::to_string(values) + suffix).c_str(),
                               BM_allreduce, values)
      ->Iterations(kAllreduceIterations)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
  const bm::MlpCase& big = mlp_case("mlp_step/batch:256/none");
  static_assert(kGlobalBatch == 256, "the row's name says 256");
  if (big.batch != kGlobalBatch) {
    throw std::invalid_argument("bench_dist: bench_models' batch-256 case changed");
  }
  if (kGlobalBatch % static_cast<std::size_t>(ranks) != 0) {
    if (tg::dist::rank() == 0) {
      std::fprintf(stderr, "bench_dist: no global_batch:256 row at %d ranks (256 rows do not split evenly)\n",
                   ranks);
    }
    return;
  }
  benchmark::RegisterBenchmark(("dist/mlp_step/global_batch:256/none" + suffix).c_str(), BM_ddp_step,
                               big.batch / static_cast<std::size_t>(ranks), big.norm, true)
      ->Iterations(kScalingIterations)
      ->UseRealTime()
      ->Unit(benchmark::kMicrosecond);
}

// The reporter of every rank but 0: runs along, prints nothing.
class NullReporter : public benchmark::BenchmarkReporter {
 public:
  bool ReportContext(const Context&) override { return true; }
  void ReportRuns(const std::vector<Run>&) override {}
};

// The arguments of a rank other than 0: without --benchmark_out* (rank 0 alone writes the file).
std::vector<char*> quiet_arguments(int argc, char** argv) {
  std::vector<char*> args;
  for (int i = 0; i < argc; ++i) {
    if (i == 0 || std::strncmp(argv[i], "--benchmark_out", 15) != 0) args.push_back(argv[i]);
  }
  args.push_back(nullptr);
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  tg::dist::Context mpi(argc, argv);
  tg::set_blas_threads(1);
  const int rank = mpi.rank(), ranks = mpi.world_size();
  benchmark::AddCustomContext("library", "tapegrad");
  benchmark::AddCustomContext("ranks", std::to_string(ranks));
  benchmark::AddCustomContext("blas_threads", std::to_string(tg::blas_threads()));
  benchmark::AddCustomContext("blas", tg::blas_info().summary());
  register_rows(ranks);
  std::vector<char*> args = quiet_arguments(argc, argv);
  if (rank == 0) args.assign(argv, argv + argc + 1);
  int n = static_cast<int>(args.size()) - 1;
  benchmark::Initialize(&n, args.data());
  if (benchmark::ReportUnrecognizedArguments(n, args.data())) return 1;
  NullReporter quiet;
  if (rank == 0) {
    benchmark::RunSpecifiedBenchmarks();
  } else {
    benchmark::RunSpecifiedBenchmarks(&quiet);
  }
  benchmark::Shutdown();
  return 0;
}
