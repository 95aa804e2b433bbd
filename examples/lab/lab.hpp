#pragma once
// tapegrad-lab: what LayerNorm and BatchNorm do, measured. Shared pieces of the experiments.
// The lab uses only tapegrad's public API, as a user's program would.
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <tapegrad/tapegrad.hpp>

#include "mlp.hpp"  // examples::make_mlp, shared with the example chapters
#include "report.hpp"
#include "sweep.hpp"

namespace lab {

namespace tg = tapegrad;

// Scale of a lab run: `quick` keeps every section but shrinks it to about 15 s in all;
// `tiny` is the smallest configuration, for the CTest smoke test of the lab itself.
enum class Scale { Tiny, Quick, Full };

struct Config {
  std::string out = "lab-out";
  Scale scale = Scale::Full;
  int threads = 1;
  std::set<int> only;  // empty = every experiment
  std::uint64_t seed = 0;
  std::string mnist_dir;
  bool progress = true;
  bool wants(int experiment) const { return only.empty() || only.count(experiment) > 0; }
  // Picks the value for the current scale.
  template <class V>
  V pick(V tiny, V quick, V full) const {
    return scale == Scale::Tiny ? tiny : scale == Scale::Quick ? quick : full;
  }
  std::string csv(const std::string& name) const { return out + "/" + name + ".csv"; }
  SweepOptions sweep(const std::string& name) const { return SweepOptions{csv(name), threads, progress}; }
};

// Sections 1-7 use the first three; section 8 compares them all.
enum class Norm { None, Layer, Batch, BatchRenorm, GhostBatch, Group, RMS };
// "none", "layer", "batch", "batch_renorm", "ghost_batch", "group", "rms": a norm as CSV
// columns (and, for the first three, examples::make_mlp) name it.
const char* norm_name(Norm n);
// "no norm", "LayerNorm", "BatchNorm", "BatchRenorm", "GhostBatchNorm", "GroupNorm", "RMSNorm":
// a norm as the report names it.
const char* norm_title(Norm n);
// BatchNorm, BatchRenorm and GhostBatchNorm: the norms that normalize with batch statistics in
// training mode (and running statistics in eval mode).
bool uses_batch_statistics(Norm n);

// Section 8's settings of the norms that have one.
constexpr std::size_t kGhostVirtualBatch = 16;  // GhostBatchNorm1d: examples per ghost batch
constexpr std::size_t kGroupNormGroups = 8;     // GroupNorm: groups of the hidden features

// in -> [Linear(h), norm, Tanh] for each h in hidden -> Linear(out), initialized from `seed`.
// None, Layer and Batch are examples::make_mlp's nets (the same bits); the others are built
// the same way (the same Linear weights for a seed) with BatchRenorm1d (the paper's final
// limits r_max 3, d_max 5 until set_limits), GhostBatchNorm1d(h, kGhostVirtualBatch),
// GroupNorm(kGroupNormGroups, h) or RMSNorm({h}) (PyTorch defaults otherwise).
std::shared_ptr<tg::Sequential<float>> make_net(std::size_t in, const std::vector<std::size_t>& hidden,
                                                std::size_t out, Norm norm, std::uint64_t seed);

// Every experiment adds its section to the report and its headline numbers to `summary`.
using Summary = nlohmann::json;
void experiment_batch_dependence(const Config& c, Report& r, Summary& s);   // 1
void experiment_cross_gradients(const Config& c, Report& r, Summary& s);    // 2
void experiment_batch_invariant(const Config& c, Report& r, Summary& s);    // 3
void experiment_mlp_stability(const Config& c, Report& r, Summary& s);      // 4
void experiment_rnn_stability(const Config& c, Report& r, Summary& s);      // 5
void experiment_order_sensitivity(const Config& c, Report& r, Summary& s);  // 6
void experiment_mnist(const Config& c, Report& r, Summary& s);              // 7
void experiment_norm_batch_size(const Config& c, Report& r, Summary& s);    // 8
void experiment_data_parallel(const Config& c, Report& r, Summary& s);      // 9

// Section 9's mpirun ranks: main() hands over when argv[1] is "--dp-worker" (argv[2] is the job,
// JSON). Returns the exit status.
int data_parallel_worker(int argc, char** argv);

}  // namespace lab
