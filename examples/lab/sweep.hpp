#pragma once
// The lab's engine room: many small, independent, seeded runs spread over a worker pool.
//
// Each finished run is appended to the experiment's CSV at once (one line, flushed), so a
// killed sweep loses only the runs in flight; rerunning with the same --out skips every run
// whose key is already in the file. When the sweep ends, the CSV is rewritten in run order,
// so its content does not depend on the number of workers or on interruptions (apart from
// the wall_time_s column).
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace lab {

// One row of results: column name -> formatted value.
using Row = std::map<std::string, std::string>;

struct Run {
  std::string key;                                                  // unique within the experiment
  std::vector<std::pair<std::string, std::string>> params;          // its hyper-parameters, as columns
  std::function<std::vector<std::pair<std::string, double>>()> fn;  // seeded; returns metrics
};

struct SweepSpec {
  std::string name;                      // experiment name, e.g. "e4_mlp_stability"
  std::vector<std::string> param_cols;   // every Run's params, in this order
  std::vector<std::string> metric_cols;  // every Run's metrics, in this order
  std::vector<Run> runs;
};

struct SweepOptions {
  std::string csv_path;
  int threads = 1;
  bool progress = true;  // a progress line on stderr when it is a terminal
};

// Runs what is missing from csv_path and returns all rows in run order.
std::vector<Row> run_sweep(const SweepSpec& spec, const SweepOptions& options);

// Full-precision formatting of a metric (round-trips a double exactly).
std::string fmt(double v);
double num(const Row& r, const std::string& col);

// Reads a CSV written by run_sweep (header + rows); a final line without a newline or with
// the wrong number of cells (a write cut short by a kill) is dropped.
std::vector<Row> read_csv(const std::string& path, std::vector<std::string>* header = nullptr);

// Total number of runs executed (not skipped) by this process, for the manifest.
int runs_executed();

}  // namespace lab
