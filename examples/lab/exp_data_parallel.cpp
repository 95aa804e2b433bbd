// Experiment 9: data-parallel training. One global batch of 64 MNIST digits per step, split over
// R = 1, 2, 4 and 8 ranks (processes; oversubscribed on a small machine), each rank a replica of
// the MLP 784 -> [64 -> norm -> tanh] x 2 -> 10 wrapped in DistributedDataParallel and fed by a
// DistributedSampler. The norms: BatchNorm1d (each replica normalises over its own 64 / R
// examples), SyncBatchNorm (convert_sync_batchnorm: statistics over the global 64) and LayerNorm
// (each example over its own features). Test accuracy, and the communication per step: bytes
// passed to MPI's collectives and the time spent in them, counted through MPI's profiling
// interface (comm_profile.hpp).
//
// The lab is one process; this section starts `mpirun -np R` on the lab's own binary with a
// hidden first argument (--dp-worker and a JSON job: data_parallel_worker below) for each rank
// count, without a shell (fork and execve), and reads the rows that rank 0 writes into a file. Without MPI (tapegrad
// built without it, or no mpirun on PATH) the section says so and is skipped. When the lab itself
// runs under mpirun, its rank 0 starts these jobs (the sweep is not spread: each job uses every
// core) with the launcher's variables removed from their environment and every CPU allowed.
#include <fcntl.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <stdexcept>

#include "comm_profile.hpp"
#include "training.hpp"

extern char** environ;  // NOLINT: POSIX

namespace lab {

namespace {

// --- the section's settings ------------------------------------------------------------------

enum class DpNorm { Batch, SyncBatch, Layer };
const std::vector<DpNorm> kDpNorms = {DpNorm::Batch, DpNorm::SyncBatch, DpNorm::Layer};
constexpr std::size_t kGlobalBatch = 64;
const std::vector<std::size_t> kHidden = {64, 64};
constexpr double kTestFraction = 0.25;
constexpr double kLr = 2e-3;  // Adam
const std::vector<std::string> kMetrics = {"test_acc",
                                           "test_loss",
                                           "last_epoch_loss",
                                           "steps_done",
                                           "max_param_gap",
                                           "allreduce_bytes_per_step",
                                           "bcast_bytes_per_step",
                                           "mpi_calls_per_step",
                                           "comm_time_ms_per_step",
                                           "step_time_ms"};

const char* dp_name(DpNorm n) {
  return n == DpNorm::Batch ? "batch" : n == DpNorm::SyncBatch ? "sync_batch" : "layer";
}
const char* dp_title(DpNorm n) {
  return n == DpNorm::Batch ? "BatchNorm" : n == DpNorm::SyncBatch ? "SyncBatchNorm" : "LayerNorm";
}
DpNorm dp_norm(const std::string& name) {
  for (DpNorm n : kDpNorms) {
    if (name == dp_name(n)) return n;
  }
  throw std::invalid_argument("data-parallel worker: unknown norm '" + name + "'");
}
// The examples one normalisation sees in training: BatchNorm a replica's share of the batch,
// SyncBatchNorm the global batch, LayerNorm one example.
std::size_t normalised_over(DpNorm n, std::size_t ranks) {
  return n == DpNorm::Batch ? kGlobalBatch / ranks : n == DpNorm::SyncBatch ? kGlobalBatch : 1;
}

struct Setup {
  std::size_t per_class, epochs, seeds;
  std::vector<std::size_t> ranks;
};

Setup setup(const Config& c) {
  return Setup{c.pick<std::size_t>(30, 200, 500), c.pick<std::size_t>(1, 2, 4), c.pick<std::size_t>(1, 3, 5),
               c.pick<std::vector<std::size_t>>({1, 2}, {1, 2, 4, 8}, {1, 2, 4, 8})};
}

// --- the worker: one rank of an mpirun job ---------------------------------------------------

// Rows [begin, begin + n) of `order` of a classification dataset, as a batch.
void gather(const tg::Dataset<float>& data, const std::vector<std::size_t>& order, std::size_t begin,
            std::size_t n, xt::xarray<float>& x, std::vector<std::int64_t>& y) {
  const std::size_t width = data.inputs().size() / data.size();
  x.resize({n, width});
  y.resize(n);
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t row = order[begin + i];
    std::memcpy(x.data() + i * width, data.inputs().data() + row * width, width * sizeof(float));
    y[i] = data.labels()[row];
  }
}

// The largest difference of any parameter between this rank and rank 0 (0 when DDP keeps the
// replicas identical, as it must), over every rank.
double max_param_gap(tg::Module<float>& net) {
  double gap = 0;
  for (tg::Parameter<float>* p : net.parameters()) {
    xt::xarray<float> mine = p->value, root = p->value;
    tg::dist::broadcast(root, 0);
    for (std::size_t i = 0; i < mine.size(); ++i)
      gap = std::max(gap, static_cast<double>(std::abs(mine.data()[i] - root.data()[i])));
  }
  return tg::dist::allreduce_value(gap, tg::dist::ReduceOp::max);
}

struct Timing {
  comm_profile::Counters comm;
  double seconds = 0;
  std::size_t steps = 0;
  double last_epoch_loss = 0;  // mean of this rank's step losses over the last epoch
};

// Trains `model` (every rank) on its DistributedSampler shards of `train`, counting the
// communication of the training steps only.
Timing train_replica(tg::DistributedDataParallel<float>& model, tg::Optimizer<float>& opt,
                     const tg::Dataset<float>& train, std::size_t epochs, std::uint64_t order_seed) {
  const int ranks = tg::dist::world_size();
  const std::size_t b = kGlobalBatch / static_cast<std::size_t>(ranks);
  tg::DistributedSampler sampler(train.size(), ranks, tg::dist::rank(), /*shuffle=*/true, order_seed,
                                 /*drop_last=*/true);
  const std::size_t per_epoch = sampler.size() / b;
  xt::xarray<float> x;
  std::vector<std::int64_t> y;
  Timing t;
  tg::dist::barrier();
  comm_profile::start();
  const auto t0 = std::chrono::steady_clock::now();
  for (std::size_t epoch = 0; epoch < epochs; ++epoch) {
    sampler.set_epoch(epoch);
    const std::vector<std::size_t> order = sampler.indices();
    double sum = 0;
    for (std::size_t k = 0; k < per_epoch; ++k) {
      gather(train, order, k * b, b, x, y);
      tg::Tape<float> tape;
      const auto loss = tg::cross_entropy(model.forward(tape, tape.input(x)), y);
      model.zero_grad();
      model.backward(tape, loss);
      opt.step();
      sum += static_cast<double>(loss.item());
      ++t.steps;
    }
    t.last_epoch_loss = sum / static_cast<double>(std::max<std::size_t>(per_epoch, 1));
  }
  t.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  t.comm = comm_profile::stop();
  return t;
}

struct MnistData {
  tg::Dataset<float> train, test;
};

// One run of the job on every rank; returns its metrics (meaningful on rank 0).
nlohmann::json run_replicas(const nlohmann::json& job, const nlohmann::json& run, const MnistData& d) {
  const DpNorm norm = dp_norm(run.at("norm").get<std::string>());
  const std::size_t classes = std::max(d.train.num_classes(), d.test.num_classes());
  auto net = make_net(tg::kMnistPixels, kHidden, classes, norm == DpNorm::Layer ? Norm::Layer : Norm::Batch,
                      run.at("init_seed").get<std::uint64_t>());
  std::shared_ptr<tg::Module<float>> module = net;
  if (norm == DpNorm::SyncBatch) module = tg::convert_sync_batchnorm<float>(module);
  tg::DistributedDataParallel<float> model(module);
  tg::Adam<float> opt(model.parameters(), job.at("lr").get<double>());
  const Timing t = train_replica(model, opt, d.train, job.at("epochs").get<std::size_t>(),
                                 run.at("order_seed").get<std::uint64_t>());
  const double steps = static_cast<double>(std::max<std::size_t>(t.steps, 1));
  const double loss = tg::dist::allreduce_value(t.last_epoch_loss, tg::dist::ReduceOp::mean);
  const double comm_ms = tg::dist::allreduce_value(t.comm.seconds, tg::dist::ReduceOp::mean) * 1e3 / steps;
  const double step_ms = tg::dist::allreduce_value(t.seconds, tg::dist::ReduceOp::mean) * 1e3 / steps;
  const double gap = max_param_gap(*net);
  const EvalResult test = tg::dist::rank() == 0 ? evaluate(*net, d.test, false) : EvalResult{};
  return {{"key", run.at("key")},
          {"test_acc", test.accuracy},
          {"test_loss", test.loss},
          {"last_epoch_loss", loss},
          {"steps_done", t.steps},
          {"max_param_gap", gap},
          {"allreduce_bytes_per_step", static_cast<double>(t.comm.allreduce_bytes) / steps},
          {"bcast_bytes_per_step", static_cast<double>(t.comm.bcast_bytes) / steps},
          {"mpi_calls_per_step", static_cast<double>(t.comm.calls) / steps},
          {"comm_time_ms_per_step", comm_ms},
          {"step_time_ms", step_ms}};
}

// A few collectives of about a step's size before any run is timed: MPI sets up its connections
// and shared-memory segments lazily, on the first messages, and that once-per-job cost is not a
// step's.
void warm_up() {
  xt::xarray<float> buf = xt::zeros<float>({std::size_t{1} << 16});
  for (int i = 0; i < 3; ++i) {
    tg::dist::allreduce(buf, tg::dist::ReduceOp::sum);
    tg::dist::broadcast(buf, 0);
  }
}

MnistData load_job_data(const nlohmann::json& job) {
  const auto all =
      tg::load_mnist<float>(job.at("mnist_dir").get<std::string>(), job.at("per_class").get<std::size_t>());
  auto split = tg::train_test_split(all, kTestFraction, job.at("split_seed").get<std::uint64_t>());
  return MnistData{std::move(split.first), std::move(split.second)};
}

}  // namespace

int data_parallel_worker(int argc, char** argv) {
  tg::dist::Context mpi(argc, argv);
  try {
    if (argc != 3) throw std::invalid_argument("usage: tapegrad-lab --dp-worker JOB (started by section 9)");
    const nlohmann::json job = nlohmann::json::parse(argv[2]);
    if (static_cast<std::size_t>(mpi.world_size()) != job.at("ranks").get<std::size_t>())
      throw std::invalid_argument("the job is for " + job.at("ranks").dump() + " ranks, the world has " +
                                  std::to_string(mpi.world_size()));
    tg::set_blas_threads(1);
    const MnistData data = load_job_data(job);
    warm_up();
    for (const auto& run : job.at("runs")) {
      const nlohmann::json row = run_replicas(job, run, data);
      if (mpi.rank() != 0) continue;
      std::ofstream out(job.at("result").get<std::string>(), std::ios::app);
      out << row.dump() << "\n";
      if (!out.flush()) throw std::runtime_error("cannot write " + job.at("result").get<std::string>());
    }
  } catch (const std::exception& e) {
    // Without MPI_Finalize: mpirun then ends every rank instead of letting them wait in a collective.
    std::fprintf(stderr, "tapegrad-lab --dp-worker, rank %d: %s\n", mpi.rank(), e.what());
    std::fflush(stderr);
    std::_Exit(1);
  }
  return 0;
}

namespace {

// --- the parent: availability, mpirun ---------------------------------------------------------

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif
#else
constexpr bool kAsan = false;
#endif

// The first executable `mpirun` on PATH, or "".
std::string find_mpirun() {
  const char* path = std::getenv("PATH");
  std::stringstream in(path ? path : "");
  for (std::string dir; std::getline(in, dir, ':');) {
    const std::string candidate = (dir.empty() ? std::string(".") : dir) + "/mpirun";
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// Why this section cannot run here ("" when it can).
std::string skip_reason(const std::string& mpirun) {
  if (!tg::dist::built_with_mpi())
    return "tapegrad was built without MPI (TAPEGRAD_MPI off, or no MPI found when it was configured: "
           "install libopenmpi-dev and openmpi-bin with scripts/deps, then configure and build again)";
  if (mpirun.empty())
    return "there is no mpirun on PATH (install openmpi-bin, for example with scripts/deps)";
  return "";
}

// The lab's environment for mpirun and its ranks: OpenMPI's shared-memory single-copy mechanism
// off (containers often forbid it), and under AddressSanitizer the leak suppressions for OpenMPI
// that tests/CMakeLists.txt gives test_mpi. Under a lab started by mpirun, without the variables
// its launcher set (dist::launcher_variable): the mpirun it starts would take itself for one of
// the lab's ranks.
std::vector<std::string> child_environment() {
  std::map<std::string, std::string> env;
  const bool nested = tg::dist::launch_environment().world_size > 0;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::size_t eq = kv.find('=');
    if (eq == std::string::npos || (nested && tg::dist::launcher_variable(kv.substr(0, eq)))) continue;
    env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  env.emplace("OMPI_MCA_btl_vader_single_copy_mechanism", "none");
  if (kAsan) {
    env["OMPI_MCA_mca_base_component_disable_dlclose"] = "1";
    env["ASAN_OPTIONS"] += (env["ASAN_OPTIONS"].empty() ? "" : ":") + std::string("fast_unwind_on_malloc=0");
    env["LSAN_OPTIONS"] +=
        (env["LSAN_OPTIONS"].empty() ? "" : ":") +
        std::string("suppressions=" TAPEGRAD_LAB_LSAN_SUPPRESSIONS ":print_suppressions=0");
  }
  std::vector<std::string> out;
  for (const auto& kv : env) out.push_back(kv.first + "=" + kv.second);
  return out;
}

// Runs argv[0] (a path) with `env`, stdin from /dev/null and stdout and stderr into `log`;
// returns its exit status (128 + the signal when a signal ended it). The child gets SIGTERM if
// this thread dies first (a killed lab): mpirun then ends its ranks instead of running on. It
// may run on every CPU (a lab rank under mpirun is bound to one core; its mpirun must not be).
int spawn_and_wait(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                   const std::string& log) {
  std::vector<char*> args, envp;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  args.push_back(nullptr);
  envp.push_back(nullptr);
  cpu_set_t every_cpu;
  CPU_ZERO(&every_cpu);
  for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) CPU_SET(cpu, &every_cpu);  // the kernel keeps the allowed ones
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("cannot fork to start " + argv[0] + ": " + std::strerror(errno));
  if (pid == 0) {  // only async-signal-safe calls until execve
    if (prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != parent) _exit(127);
    sched_setaffinity(0, sizeof every_cpu, &every_cpu);  // a failure leaves the lab's CPUs
    const int in = open("/dev/null", O_RDONLY);
    const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0) _exit(127);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) throw std::runtime_error("waitpid for " + argv[0] + ": " + std::strerror(errno));
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// The last `n` lines of a file, for an error message.
std::string tail_of(const std::string& path, std::size_t n) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string out;
  for (std::size_t i = lines.size() > n ? lines.size() - n : 0; i < lines.size(); ++i) out += lines[i] + "\n";
  return out;
}

// --- the parent: runs, launched per rank count --------------------------------------------------

struct Spec {
  DpNorm norm;
  std::size_t ranks, seed;
  std::string key;
  std::uint64_t init_seed, order_seed;
};

// Starts the mpirun jobs and hands each sweep run its row. The first run of a rank count that
// is not cached starts one job for every run of that rank count still missing from the CSV
// (one MPI start-up per rank count, not per run).
class Launcher {
 public:
  Launcher(const Config& c, const Setup& su, std::string mpirun, std::vector<Spec> specs,
           std::set<std::string> in_csv)
      : c_(c), su_(su), mpirun_(std::move(mpirun)), specs_(std::move(specs)), in_csv_(std::move(in_csv)) {}

  std::vector<std::pair<std::string, double>> metrics(const Spec& s) {
    if (!cache_.count(s.key)) launch(s);
    const auto it = cache_.find(s.key);
    if (it == cache_.end())
      throw std::runtime_error("section 9: the mpirun job wrote no result for " + s.key);
    std::vector<std::pair<std::string, double>> out;
    for (const auto& name : kMetrics) {
      const auto& v = it->second.at(name);
      out.emplace_back(name, v.is_number() ? v.get<double>() : std::nan(""));
    }
    return out;
  }

 private:
  nlohmann::json job(const Spec& first) const {
    nlohmann::json runs = nlohmann::json::array();
    for (const Spec& s : specs_) {
      if (s.ranks != first.ranks || (s.key != first.key && (in_csv_.count(s.key) || cache_.count(s.key))))
        continue;
      runs.push_back({{"key", s.key},
                      {"norm", dp_name(s.norm)},
                      {"init_seed", s.init_seed},
                      {"order_seed", s.order_seed}});
    }
    return {{"ranks", first.ranks},
            {"lr", kLr},
            {"epochs", su_.epochs},
            {"per_class", su_.per_class},
            {"split_seed", derive_seed(c_.seed, 9)},
            {"mnist_dir", c_.mnist_dir},
            {"result", result_path()},
            {"runs", runs}};
  }
  std::string result_path() const { return c_.out + "/e9_data_parallel.worker.jsonl"; }
  std::string log_path() const { return c_.out + "/e9_data_parallel.mpirun.log"; }

  void launch(const Spec& first) {
    const std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    std::filesystem::remove(result_path());
    const std::vector<std::string> argv = {
        mpirun_, "--allow-run-as-root", "--oversubscribe", "-np", std::to_string(first.ranks),
        self,    "--dp-worker",         job(first).dump()};
    const int status = spawn_and_wait(argv, child_environment(), log_path());
    if (status != 0)
      throw std::runtime_error("section 9: mpirun -np " + std::to_string(first.ranks) +
                               " ended with status " + std::to_string(status) + "; the end of " + log_path() +
                               ":\n" + tail_of(log_path(), 20));
    std::ifstream in(result_path());
    for (std::string line; std::getline(in, line);) {
      const auto row = nlohmann::json::parse(line);
      cache_[row.at("key").get<std::string>()] = row;
    }
    std::filesystem::remove(result_path());
    std::filesystem::remove(log_path());
  }

  const Config& c_;
  Setup su_;
  std::string mpirun_;
  std::vector<Spec> specs_;
  std::set<std::string> in_csv_;
  std::map<std::string, nlohmann::json> cache_;
};

std::vector<Spec> all_specs(const Config& c, const Setup& su) {
  std::vector<Spec> specs;
  for (std::size_t r : su.ranks) {
    for (DpNorm n : kDpNorms) {
      for (std::size_t s = 0; s < su.seeds; ++s) {
        specs.push_back(Spec{n, r, s,
                             std::string(dp_name(n)) + "/R" + std::to_string(r) + "/s" + std::to_string(s),
                             derive_seed(c.seed, 9, s, 1), derive_seed(c.seed, 9, s, 2)});
      }
    }
  }
  return specs;
}

const char* kCsvName = "e9_data_parallel";

std::vector<Row> run_all(const Config& c, const Setup& su, const MnistSplit& data,
                         const std::string& mpirun) {
  SweepSpec spec;
  spec.name = kCsvName;
  spec.param_cols = {
      "norm",      "ranks",     "global_batch", "per_replica_batch", "normalised_over", "optimizer",
      "lr",        "epochs",    "hidden",       "train_size",        "test_size",       "seed",
      "init_seed", "order_seed"};
  spec.metric_cols = kMetrics;
  const std::vector<Spec> specs = all_specs(c, su);
  std::set<std::string> in_csv;
  for (const Row& r : read_csv(c.csv(kCsvName))) in_csv.insert(r.at("key"));
  auto launcher = std::make_shared<Launcher>(c, su, mpirun, specs, in_csv);
  for (const Spec& s : specs) {
    Run run;
    run.key = s.key;
    run.params = {{"norm", dp_name(s.norm)},
                  {"ranks", std::to_string(s.ranks)},
                  {"global_batch", std::to_string(kGlobalBatch)},
                  {"per_replica_batch", std::to_string(kGlobalBatch / s.ranks)},
                  {"normalised_over", std::to_string(normalised_over(s.norm, s.ranks))},
                  {"optimizer", "adam"},
                  {"lr", param_num(kLr)},
                  {"epochs", std::to_string(su.epochs)},
                  {"hidden", "64-64"},
                  {"train_size", std::to_string(data.train().size())},
                  {"test_size", std::to_string(data.test().size())},
                  {"seed", std::to_string(s.seed)},
                  {"init_seed", std::to_string(s.init_seed)},
                  {"order_seed", std::to_string(s.order_seed)}};
    run.fn = [launcher, s] { return launcher->metrics(s); };
    spec.runs.push_back(run);
  }
  SweepOptions options = c.sweep(kCsvName);
  options.threads = 1;     // one mpirun at a time: the ranks' timings are the point
  options.spread = false;  // under a lab started by mpirun: rank 0 starts them
  return run_sweep(spec, options);
}

// --- aggregate and report ------------------------------------------------------------------

struct Cell {
  Stats acc;  // test accuracy over the seeds
  double allreduce_bytes = 0, bcast_bytes = 0, calls = 0, comm_ms = 0, step_ms = 0;  // means over the seeds
  double max_gap = 0;                                                                // over the seeds
};
using Cells = std::map<std::pair<DpNorm, std::size_t>, Cell>;

Cells aggregate(const std::vector<Row>& rows, const Setup& su) {
  Cells cells;
  for (DpNorm n : kDpNorms) {
    for (std::size_t r : su.ranks) {
      std::vector<double> acc;
      Cell cell;
      for (const Row& row : rows) {
        if (row.at("norm") != dp_name(n) || row.at("ranks") != std::to_string(r)) continue;
        acc.push_back(num(row, "test_acc"));
        const double k = 1.0 / static_cast<double>(su.seeds);
        cell.allreduce_bytes += k * num(row, "allreduce_bytes_per_step");
        cell.bcast_bytes += k * num(row, "bcast_bytes_per_step");
        cell.calls += k * num(row, "mpi_calls_per_step");
        cell.comm_ms += k * num(row, "comm_time_ms_per_step");
        cell.step_ms += k * num(row, "step_time_ms");
        cell.max_gap = std::max(cell.max_gap, num(row, "max_param_gap"));
      }
      cell.acc = stats(acc);
      cells[{n, r}] = cell;
    }
  }
  return cells;
}

std::string intro_text(const Setup& su, const MnistSplit& data, const std::vector<Row>& rows) {
  std::string ranks;
  for (std::size_t i = 0; i < su.ranks.size(); ++i)
    ranks += (i == 0 ? "" : i + 1 == su.ranks.size() ? " and " : ", ") + std::to_string(su.ranks[i]);
  return "Data-parallel training, where BatchNorm's batch dependence matters most in practice: one global batch "
         "of " +
         std::to_string(kGlobalBatch) + " examples per step, split over " + ranks +
         " ranks (MPI processes, one model replica each: `DistributedDataParallel` averages the gradients, a "
         "`DistributedSampler` gives each rank its shard; more ranks than cores are oversubscribed). "
         "BatchNorm normalises each replica's share alone (" +
         std::to_string(kGlobalBatch) +
         " / R examples), `SyncBatchNorm` (`convert_sync_batchnorm`) over the global batch, LayerNorm each "
         "example over its own features. The task is section 8's (MNIST, the same MLP 784 → [64 → norm → tanh] "
         "× 2 → 10): real data whose loading is fast in every rank (" +
         std::to_string(data.train().size()) + " training and " + std::to_string(data.test().size()) +
         " test digits, " + std::to_string(su.per_class) +
         " per class), so the section costs seconds, mostly MPI start-up and "
         "communication. Adam, learning rate " +
         param_num(kLr) + ", " + std::to_string(su.epochs) + " epoch" + (su.epochs == 1 ? "" : "s") + " (" +
         (rows.empty() ? std::string("?") : rows.front().at("steps_done")) +
         " steps at every rank count: the sampler cuts each epoch into the same global batches whatever R is), " +
         std::to_string(su.seeds) + " seed" + (su.seeds == 1 ? "" : "s") +
         " (initial weights and order, the same for every norm and rank count). Test accuracy in eval mode "
         "on rank 0. Communication, per rank and training step: the bytes passed to `MPI_Allreduce` and "
         "`MPI_Bcast` and the wall time inside them (counted through MPI's profiling interface; waiting for a "
         "slower or descheduled rank counts as communication), mean over the ranks. Each rank count is one "
         "`mpirun` of this program. Data: `e9_data_parallel.csv`.";
}

std::string bytes_text(double v) { return general(v, 10); }

void report_table(const Setup& su, const Cells& cells, Report& rep) {
  const std::vector<std::string> header = {"norm",
                                           "ranks",
                                           "batch per replica",
                                           "normalises over",
                                           "test accuracy",
                                           "allreduce bytes / step",
                                           "broadcast bytes / step",
                                           "MPI calls / step",
                                           "comm ms / step",
                                           "step ms"};
  std::vector<std::vector<std::string>> table;
  for (DpNorm n : kDpNorms) {
    for (std::size_t r : su.ranks) {
      const Cell& cell = cells.at({n, r});
      const std::size_t over = normalised_over(n, r);
      table.push_back(
          {dp_title(n), std::to_string(r), std::to_string(kGlobalBatch / r),
           std::to_string(over) + (over == 1 ? " example" : " examples"),
           short_num(cell.acc.mean) + " (" + short_num(cell.acc.min) + " – " + short_num(cell.acc.max) + ")",
           bytes_text(cell.allreduce_bytes), bytes_text(cell.bcast_bytes), bytes_text(cell.calls),
           short_num(cell.comm_ms), short_num(cell.step_ms)});
    }
  }
  rep.paragraph(
      "Test accuracy: mean over the seeds (min – max); the communication columns: means over the seeds:");
  rep.table(header, table);
}

void report_plot(const Config& c, const Setup& su, const Cells& cells, Report& rep) {
  LinePlot plot;
  plot.stem = "e9_data_parallel";
  plot.title = "MNIST MLP, global batch " + std::to_string(kGlobalBatch) +
               " split over the ranks (band: min-max over seeds)";
  plot.xlabel = "ranks (log2 scale)";
  plot.ylabel = "test accuracy (eval mode)";
  plot.logx = true;
  for (DpNorm n : kDpNorms) {
    Series s;
    s.title = dp_title(n);
    for (std::size_t r : su.ranks) {
      const Stats& st = cells.at({n, r}).acc;
      s.x.push_back(static_cast<double>(r));
      s.y.push_back(st.mean);
      s.lo.push_back(st.min);
      s.hi.push_back(st.max);
    }
    plot.series.push_back(s);
  }
  plot_lines(c.out, plot);
  rep.image("e9_data_parallel.png", "test accuracy vs number of ranks, one line per norm");
}

// The spread of a norm's mean accuracy over the rank counts.
double spread(const Setup& su, const Cells& cells, DpNorm n) {
  double lo = 1e9, hi = -1e9;
  for (std::size_t r : su.ranks) {
    lo = std::min(lo, cells.at({n, r}).acc.mean);
    hi = std::max(hi, cells.at({n, r}).acc.mean);
  }
  return hi - lo;
}

std::string accuracy_reading(const Setup& su, const Cells& cells) {
  const std::size_t r0 = su.ranks.front(), r1 = su.ranks.back();
  auto from_to = [&](DpNorm n) {
    return short_num(cells.at({n, r0}).acc.mean) + " → " + short_num(cells.at({n, r1}).acc.mean);
  };
  double gap = 0;
  for (const auto& kv : cells) gap = std::max(gap, kv.second.max_gap);
  std::string text = "**Reading.** From " + std::to_string(r0) + " to " + std::to_string(r1) +
                     " ranks, the mean test accuracy goes " + from_to(DpNorm::SyncBatch) +
                     " with SyncBatchNorm and " + from_to(DpNorm::Layer) +
                     " with LayerNorm, which see the same global batches at every rank "
                     "count (only float rounding differs), and " +
                     from_to(DpNorm::Batch) + " with BatchNorm, whose replicas normalise over " +
                     std::to_string(kGlobalBatch / r1) + " examples each at " + std::to_string(r1) +
                     " ranks. ";
  const double bn = spread(su, cells, DpNorm::Batch);
  if (bn > spread(su, cells, DpNorm::SyncBatch) && bn > spread(su, cells, DpNorm::Layer))
    text += "BatchNorm's accuracy moves more with the number of ranks than the other two's. ";
  else
    text += "BatchNorm's accuracy does NOT move more with the number of ranks than the other two's. ";
  // Against the seeds' noise: BatchNorm's change from r0 to r1 ranks vs its range over the seeds at r0.
  const Stats& one = cells.at({DpNorm::Batch, r0}).acc;
  const bool beyond_noise = std::abs(one.mean - cells.at({DpNorm::Batch, r1}).acc.mean) > one.max - one.min;
  text += "Its change from " + std::to_string(r0) + " to " + std::to_string(r1) + " ranks is " +
          (beyond_noise ? "" : "NOT ") + "larger than its spread over the seeds at " + std::to_string(r0) +
          (r0 == 1 ? " rank" : " ranks") + (beyond_noise ? ". " : " (seed noise at this scale). ");
  text += "Every rank ended every run with rank 0's parameters (largest difference " + fmt(gap) + "). ";
  return text;
}

std::string comm_reading(const Setup& su, const Cells& cells) {
  const std::size_t r1 = su.ranks.back();
  const Cell &bn = cells.at({DpNorm::Batch, r1}), &sync = cells.at({DpNorm::SyncBatch, r1}),
             &ln = cells.at({DpNorm::Layer, r1});
  std::string text = "At " + std::to_string(r1) + " ranks a step allreduces " +
                     bytes_text(ln.allreduce_bytes) + " bytes per rank with LayerNorm (the gradients) and " +
                     bytes_text(bn.allreduce_bytes) +
                     " with BatchNorm, whose running statistics are also broadcast from rank 0 (" +
                     bytes_text(bn.bcast_bytes) +
                     " bytes); SyncBatchNorm adds its batch statistics: " + bytes_text(sync.allreduce_bytes) +
                     " bytes in " + bytes_text(sync.calls) + " calls instead of " + bytes_text(bn.calls) +
                     ". The ranks spend " + short_num(ln.comm_ms) +
                     " ms per step in "
                     "communication with LayerNorm, " +
                     short_num(bn.comm_ms) + " with BatchNorm and " + short_num(sync.comm_ms) +
                     " with SyncBatchNorm, of steps of " + short_num(ln.step_ms) + ", " +
                     short_num(bn.step_ms) + " and " + short_num(sync.step_ms) + " ms.";
  return text;
}

void add_summary(const Setup& su, const MnistSplit& data, const Cells& cells, Summary& summary) {
  nlohmann::json acc = nlohmann::json::object(), comm = nlohmann::json::object(),
                 bytes = nlohmann::json::object();
  for (DpNorm n : kDpNorms) {
    for (std::size_t r : su.ranks) {
      const std::string k = std::string(dp_name(n)) + "_R" + std::to_string(r);
      acc[k] = cells.at({n, r}).acc.mean;
      comm[k] = cells.at({n, r}).comm_ms;
      bytes[k] = cells.at({n, r}).allreduce_bytes;
    }
  }
  summary["e9"] = {{"available", true},
                   {"ranks", su.ranks},
                   {"global_batch", kGlobalBatch},
                   {"epochs", su.epochs},
                   {"seeds", su.seeds},
                   {"train_size", data.train().size()},
                   {"test_size", data.test().size()},
                   {"test_acc", acc},
                   {"comm_time_ms_per_step", comm},
                   {"allreduce_bytes_per_step", bytes}};
}

}  // namespace

void experiment_data_parallel(const Config& c, Report& rep, Summary& summary) {
  rep.heading(2, "9. Data-parallel training: BatchNorm, SyncBatchNorm and LayerNorm over ranks");
  const std::string mpirun = find_mpirun();
  const std::string why = skip_reason(mpirun);
  if (!why.empty()) {
    rep.paragraph(
        "**Not run: this section could not start MPI ranks.** " + why +
        ". It runs when tapegrad is built with MPI and `tapegrad-lab` is started without mpirun: it "
        "then starts `mpirun --allow-run-as-root --oversubscribe -np R` on itself for each rank count.");
    summary["e9"] = {{"available", false}, {"reason", why}};
    std::fprintf(stderr, "  section 9 skipped: %s\n", why.c_str());
    return;
  }
  const Setup su = setup(c);
  const auto loaded =
      load_mnist_split(c, su.per_class, kTestFraction, derive_seed(c.seed, 9), "e9", rep, summary);
  if (!loaded) return;
  const auto rows = run_all(c, su, *loaded, mpirun);
  const Cells cells = aggregate(rows, su);
  rep.paragraph(intro_text(su, *loaded, rows));
  report_plot(c, su, cells, rep);
  report_table(su, cells, rep);
  rep.paragraph(accuracy_reading(su, cells) + comm_reading(su, cells));
  add_summary(su, *loaded, cells, summary);
}

}  // namespace lab
