#pragma once
// The lab's engine room: many small, independent, seeded runs spread over a worker pool.
//
// Each finished run is appended to the experiment's CSV at once (one line, flushed), so a
// killed sweep loses only the runs in flight; rerunning with the same --out skips every run
// whose key is already in the file. When the sweep ends, the CSV is rewritten in run order,
// so its content does not depend on the number of workers or on interruptions (apart from
// the wall_time_s column).
//
// Under mpirun (`mpirun -np N tapegrad-lab ...`) every rank runs the same program and the runs of
// each sweep are shared out as they come: a rank takes the next run nobody has taken (a claim
// file created exclusively in <csv>.claims/, so --out must be a folder every rank sees) and
// appends its row to <csv>.part<rank>. When every rank is done, rank 0 merges the parts into
// the CSV in run order; a killed job leaves its parts, which the next run merges before it
// starts (with any number of ranks, or none). Rank 0 alone writes the report and the plots.
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
  // false: rank 0 executes every run while the other ranks wait (asleep); for runs that start
  // their own mpirun over all the cores (section 9).
  bool spread = true;
};

// The lab's MPI job: rank 0 of 1 when the lab runs on its own. Set once by main, before any
// sweep.
struct Job {
  int rank = 0;
  int size = 1;
};
void set_job(Job j);
const Job& job();
// True on the rank that writes the report, the plots and the other files beside the CSVs.
inline bool writes_report() { return job().rank == 0; }
// For the lab's own tests (the hidden flag --test-fault RANK:throw|kill:N): rank RANK throws, or
// kills itself with SIGKILL, when it is about to start its run number N + 1 of the lab.
struct Fault {
  int rank = -1;
  bool kill = false;
  int after_runs = 0;
};
void set_fault(Fault f);

// Every rank waits here until all have arrived (asleep: the waiting rank leaves its core to
// the others); nothing when the lab runs alone.
void job_barrier();

// Runs what is missing from csv_path and returns all rows in run order.
std::vector<Row> run_sweep(const SweepSpec& spec, const SweepOptions& options);

// Full-precision formatting of a metric (round-trips a double exactly).
std::string fmt(double v);
double num(const Row& r, const std::string& col);

// Reads a CSV written by run_sweep (header + rows); a final line without a newline or with
// the wrong number of cells (a write cut short by a kill) is dropped.
std::vector<Row> read_csv(const std::string& path, std::vector<std::string>* header = nullptr);

// Total number of runs executed (not skipped) by this process (this rank), for the manifest.
int runs_executed();

}  // namespace lab
