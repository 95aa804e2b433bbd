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

#include "report.hpp"
#include "sweep.hpp"

namespace lab {

namespace tg = tapegrad;

// Scale of a lab run: `quick` keeps every section but shrinks it to about a minute in all;
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

enum class Norm { None, Layer, Batch };
const char* norm_name(Norm n);
Norm parse_norm(const std::string& s);

// MLP in -> [Linear h, norm, tanh] x len(hidden) -> Linear out, initialized from `seed`.
template <class T>
std::shared_ptr<tg::Sequential<T>> make_mlp(std::size_t in, const std::vector<std::size_t>& hidden,
                                            std::size_t out, Norm norm, std::uint64_t seed);

// Every experiment adds its section to the report and its headline numbers to `summary`.
using Summary = nlohmann::json;
void experiment_batch_dependence(const Config& c, Report& r, Summary& s);     // 1
void experiment_cross_gradients(const Config& c, Report& r, Summary& s);      // 2
void experiment_batch_invariant(const Config& c, Report& r, Summary& s);      // 3
void experiment_mlp_stability(const Config& c, Report& r, Summary& s);        // 4
void experiment_rnn_stability(const Config& c, Report& r, Summary& s);        // 5
void experiment_order_sensitivity(const Config& c, Report& r, Summary& s);    // 6
void experiment_mnist(const Config& c, Report& r, Summary& s);                // 7

// Median wall time in seconds of `reps` calls of f (after one warm-up call).
double time_median(int reps, const std::function<void()>& f);

}  // namespace lab
