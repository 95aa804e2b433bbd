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
// "none", "layer", "batch": a norm as CSV columns and examples::make_mlp name it.
const char* norm_name(Norm n);
// "no norm", "LayerNorm", "BatchNorm": a norm as the report names it.
const char* norm_title(Norm n);

// Every experiment adds its section to the report and its headline numbers to `summary`.
using Summary = nlohmann::json;
void experiment_batch_dependence(const Config& c, Report& r, Summary& s);   // 1
void experiment_cross_gradients(const Config& c, Report& r, Summary& s);    // 2
void experiment_batch_invariant(const Config& c, Report& r, Summary& s);    // 3
void experiment_mlp_stability(const Config& c, Report& r, Summary& s);      // 4
void experiment_rnn_stability(const Config& c, Report& r, Summary& s);      // 5
void experiment_order_sensitivity(const Config& c, Report& r, Summary& s);  // 6
void experiment_mnist(const Config& c, Report& r, Summary& s);              // 7

}  // namespace lab
