#include "sweep.hpp"

#include "csv.hpp"
#include "report.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include <tapegrad/dist.hpp>

namespace lab {

namespace {
std::atomic<int> g_runs_executed{0};
Job g_job;
Fault g_fault;

void maybe_fault(const Run& run) {
  if (g_fault.rank != g_job.rank || g_runs_executed.load() != g_fault.after_runs) return;
  std::fprintf(stderr, "tapegrad-lab rank %d: the fault asked for by --test-fault, before the run %s\n",
               g_job.rank, run.key.c_str());
  if (g_fault.kill) ::raise(SIGKILL);
  throw std::runtime_error("a fault asked for by --test-fault, before the run " + run.key);
}

std::string join_row(const std::vector<std::string>& cols, const Row& r) {
  std::string line;
  for (std::size_t i = 0; i < cols.size(); ++i) {
    if (i) line += ',';
    auto it = r.find(cols[i]);
    if (it != r.end()) line += it->second;
  }
  return line + "\n";
}

Row header_row(const std::vector<std::string>& cols) {
  Row h;
  for (const auto& c : cols) h[c] = c;
  return h;
}

// Writes header + rows to a temp file and renames it over `path`: a kill at any moment leaves
// either the old file or the new one.
void write_rows_atomic(const std::string& path, const std::vector<std::string>& cols,
                       const std::vector<const Row*>& rows) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) throw std::runtime_error("cannot write " + tmp);
    out << join_row(cols, header_row(cols));
    for (const Row* r : rows) out << join_row(cols, *r);
    out.flush();
    if (!out) throw std::runtime_error("error writing " + tmp);
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw std::runtime_error("cannot rename " + tmp + " to " + path);
}

class ProgressLine {
 public:
  // Under MPI, the line of rank 0 counts its own runs: total is then what is left to do over
  // all ranks, and the ETA is not shown.
  ProgressLine(std::string name, std::size_t total, std::size_t skipped, bool enabled)
      : name_(std::move(name)),
        total_(total),
        done_(skipped),
        skipped_(skipped),
        enabled_(enabled && isatty(2)),
        start_(std::chrono::steady_clock::now()) {}
  ~ProgressLine() {
    if (enabled_ && job().size > 1 && done_ > 0)
      std::fprintf(stderr, "\n");  // the single-process line ends itself
  }
  ProgressLine(const ProgressLine&) = delete;
  ProgressLine& operator=(const ProgressLine&) = delete;
  void tick() {
    ++done_;
    if (!enabled_) return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = static_cast<double>(done_ - skipped_) / std::max(secs, 1e-9);
    if (job().size > 1) {
      std::fprintf(stderr, "\r  %-26s rank 0 of %d: %5zu runs of the %zu to do  %6.1f runs/s ", name_.c_str(),
                   job().size, done_, total_, rate);
      std::fflush(stderr);
      return;
    }
    const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0;
    std::fprintf(stderr, "\r  %-26s %5zu/%zu runs  %6.1f runs/s  ETA %5.0fs ", name_.c_str(), done_, total_,
                 rate, eta);
    if (done_ == total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  std::string name_;
  std::size_t total_, done_, skipped_;
  bool enabled_;
  std::chrono::steady_clock::time_point start_;
};
}  // namespace

std::string fmt(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return general(v, 17);
}

double num(const Row& r, const std::string& col) {
  auto it = r.find(col);
  if (it == r.end()) throw std::runtime_error("results row has no column '" + col + "'");
  return std::strtod(it->second.c_str(), nullptr);
}

int runs_executed() { return g_runs_executed.load(); }

void set_job(Job j) { g_job = j; }
void set_fault(Fault f) { g_fault = f; }
const Job& job() { return g_job; }

void job_barrier() {
  if (g_job.size > 1) tapegrad::dist::barrier(tapegrad::dist::Group::world(), tapegrad::dist::Wait::sleep);
}

std::vector<Row> read_csv(const std::string& path, std::vector<std::string>* header_out) {
  std::ifstream in(path);
  std::vector<Row> rows;
  if (!in) return rows;
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> header;
  for (auto& cells : complete_csv_lines(text)) {
    if (header.empty()) {
      header = std::move(cells);
      continue;
    }
    if (cells.size() != header.size()) continue;
    Row r;
    for (std::size_t i = 0; i < header.size(); ++i) r[header[i]] = cells[i];
    rows.push_back(std::move(r));
  }
  if (header_out) *header_out = header;
  return rows;
}

namespace {

// Key, parameters, metrics, wall time: the columns of the sweep's CSV.
std::vector<std::string> columns(const SweepSpec& spec) {
  std::vector<std::string> cols = {"key"};
  cols.insert(cols.end(), spec.param_cols.begin(), spec.param_cols.end());
  cols.insert(cols.end(), spec.metric_cols.begin(), spec.metric_cols.end());
  cols.push_back("wall_time_s");
  return cols;
}

std::string part_path(const std::string& csv, int rank) { return csv + ".part" + std::to_string(rank); }
std::string claims_dir(const std::string& csv) { return csv + ".claims"; }

// Every <csv>.part<rank> file beside the CSV (left by a job of any number of ranks).
std::vector<std::string> part_files(const std::string& csv) {
  namespace fs = std::filesystem;
  const fs::path p(csv);
  const std::string prefix = p.filename().string() + ".part";
  std::vector<std::string> parts;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(p.has_parent_path() ? p.parent_path() : fs::path("."), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) != 0 || name.size() == prefix.size()) continue;
    if (std::all_of(name.begin() + static_cast<std::ptrdiff_t>(prefix.size()), name.end(),
                    [](char ch) { return ch >= '0' && ch <= '9'; }))
      parts.push_back(e.path().string());
  }
  std::sort(parts.begin(), parts.end());
  return parts;
}

std::map<std::string, Row> rows_by_key(const std::string& path) {
  std::map<std::string, Row> rows;
  for (auto& r : read_csv(path)) rows[r["key"]] = r;
  return rows;
}

// The rows of the CSV and of the part files beside it that are still wanted, by key (none from
// a file written with other columns: another configuration, so its runs are redone).
std::map<std::string, Row> read_done(const SweepSpec& spec, const std::vector<std::string>& cols,
                                     const std::string& path) {
  std::vector<std::string> sources = part_files(path);
  sources.insert(sources.begin(), path);
  std::set<std::string> wanted;
  for (const auto& run : spec.runs) wanted.insert(run.key);
  std::map<std::string, Row> done;
  for (const auto& src : sources) {
    std::vector<std::string> header;
    auto rows = read_csv(src, &header);
    if (header != cols) continue;
    for (auto& r : rows) {
      if (wanted.count(r["key"])) done[r["key"]] = std::move(r);
    }
  }
  return done;
}

// After the CSV holds every row of the part files: those and the claims go (rank 0, or the lab
// alone).
void remove_parts(const std::string& path) {
  std::error_code ec;
  for (const auto& part : part_files(path)) std::filesystem::remove(part, ec);
  std::filesystem::remove_all(claims_dir(path), ec);
}

// Who executes spec.runs[i]: the lab alone executes every run; under MPI, the rank that first
// creates the claim file <csv>.claims/<i> (O_EXCL: one creator, also on NFS), or rank 0 alone
// when the sweep is not spread.
class Claims {
 public:
  Claims(std::string dir, bool spread) : dir_(std::move(dir)), spread_(spread) {}
  bool take(std::size_t i) const {
    if (job().size == 1) return true;
    if (!spread_) return job().rank == 0;
    const std::string path = dir_ + "/" + std::to_string(i);
    const int fd = ::open(path.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
    if (fd >= 0) {
      ::close(fd);
      return true;
    }
    if (errno == EEXIST) return false;
    throw std::runtime_error("cannot create the claim file " + path + ": " + std::strerror(errno) +
                             " (under mpirun, --out must be a folder every rank can write)");
  }

 private:
  std::string dir_;
  bool spread_;
};

Row execute(const Run& run) {
  Row row;
  const auto t0 = std::chrono::steady_clock::now();
  const auto metrics = run.fn();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  row["key"] = run.key;
  for (const auto& [k, v] : run.params) row[k] = v;
  for (const auto& [k, v] : metrics) row[k] = fmt(v);
  row["wall_time_s"] = fmt(std::round(secs * 1e4) / 1e4);
  return row;
}

// Runs the spec.runs[todo[...]] this rank claims on a pool of workers, appending each finished
// row to `out` (the CSV, or this rank's part file) and adding it to `done`. The first exception
// stops the pool and is rethrown.
void run_missing(const SweepSpec& spec, const SweepOptions& options, const std::vector<std::string>& cols,
                 const std::vector<std::size_t>& todo, const std::string& out,
                 std::map<std::string, Row>& done) {
  const bool alone = job().size == 1;
  ProgressLine progress(spec.name, alone ? spec.runs.size() : todo.size(),
                        alone ? spec.runs.size() - todo.size() : 0, options.progress && writes_report());
  const Claims claims(claims_dir(options.csv_path), options.spread);
  std::mutex mu;
  std::FILE* file = std::fopen(out.c_str(), "a");
  if (!file) throw std::runtime_error("cannot append to " + out);
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  auto worker = [&] {
    for (;;) {
      const std::size_t j = next.fetch_add(1);
      if (j >= todo.size()) return;
      const Run& run = spec.runs[todo[j]];
      Row row;
      try {
        if (!claims.take(todo[j])) continue;
        maybe_fault(run);
        row = execute(run);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mu);
        if (!error) error = std::current_exception();
        next = todo.size();
        return;
      }
      std::lock_guard<std::mutex> lock(mu);
      std::fputs(join_row(cols, row).c_str(), file);
      std::fflush(file);
      done[run.key] = std::move(row);
      ++g_runs_executed;
      progress.tick();
    }
  };
  std::vector<std::thread> pool;
  const int n = std::max(1, std::min<int>(options.threads, static_cast<int>(todo.size())));
  for (int i = 0; i < n; ++i) pool.emplace_back(worker);
  for (auto& t : pool) t.join();
  std::fclose(file);
  if (error) std::rethrow_exception(error);
}

}  // namespace

namespace {
// The canonical order of a sweep's rows: the order of spec.runs.
std::vector<const Row*> in_run_order(const SweepSpec& spec, const std::map<std::string, Row>& done,
                                     const std::string& path) {
  std::vector<const Row*> ordered;
  for (const auto& run : spec.runs) {
    const auto it = done.find(run.key);
    if (it == done.end())
      throw std::runtime_error(path + ": no row for the run " + run.key + " after the sweep");
    ordered.push_back(&it->second);
  }
  return ordered;
}
}  // namespace

std::vector<Row> run_sweep(const SweepSpec& spec, const SweepOptions& options) {
  const std::vector<std::string> cols = columns(spec);
  const std::string& path = options.csv_path;
  const bool alone = job().size == 1;
  std::map<std::string, Row> done;
  if (writes_report()) {
    // The CSV rewritten with only the wanted rows, so that finished runs can be appended.
    done = read_done(spec, cols, path);
    std::vector<const Row*> kept;
    for (const auto& kv : done) kept.push_back(&kv.second);
    write_rows_atomic(path, cols, kept);
    remove_parts(path);
    if (!alone) std::filesystem::create_directories(claims_dir(path));
  }
  job_barrier();
  if (!writes_report()) done = rows_by_key(path);
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < spec.runs.size(); ++i) {
    if (!done.count(spec.runs[i].key)) todo.push_back(i);
  }
  const std::string out = alone ? path : part_path(path, job().rank);
  if (!alone) write_rows_atomic(out, cols, {});  // this rank's part: the header
  run_missing(spec, options, cols, todo, out, done);
  if (!alone) {
    job_barrier();  // every rank's part is complete
    if (writes_report()) done = read_done(spec, cols, path);
  }

  if (writes_report()) {
    write_rows_atomic(path, cols, in_run_order(spec, done, path));
    if (!alone) remove_parts(path);
  }
  job_barrier();  // the CSV is complete
  if (!writes_report()) done = rows_by_key(path);
  std::vector<Row> rows;
  for (const Row* r : in_run_order(spec, done, path)) rows.push_back(*r);
  return rows;
}

}  // namespace lab
