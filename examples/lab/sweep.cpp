#include "sweep.hpp"

#include "csv.hpp"
#include "report.hpp"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

namespace lab {

namespace {
std::atomic<int> g_runs_executed{0};

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
  ProgressLine(std::string name, std::size_t total, std::size_t skipped, bool enabled)
      : name_(std::move(name)),
        total_(total),
        done_(skipped),
        skipped_(skipped),
        enabled_(enabled && isatty(2)),
        start_(std::chrono::steady_clock::now()) {}
  void tick() {
    ++done_;
    if (!enabled_) return;
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const double rate = static_cast<double>(done_ - skipped_) / std::max(secs, 1e-9);
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

// The rows of the CSV that are still wanted, by key (none when it was written with other
// columns: another configuration, so everything is redone); the file is rewritten with only
// them, so that finished runs can be appended.
std::map<std::string, Row> load_done(const SweepSpec& spec, const std::vector<std::string>& cols,
                                     const std::string& path) {
  std::vector<std::string> old_header;
  std::map<std::string, Row> done;
  for (auto& r : read_csv(path, &old_header)) done[r["key"]] = r;
  if (!old_header.empty() && old_header != cols) done.clear();
  std::set<std::string> wanted;
  for (const auto& run : spec.runs) wanted.insert(run.key);
  std::vector<const Row*> keep;
  for (const auto& [k, r] : done) {
    if (wanted.count(k)) keep.push_back(&r);
  }
  write_rows_atomic(path, cols, keep);
  return done;
}

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

// Runs spec.runs[todo[...]] on a pool of workers, appending each finished row to the CSV and
// adding it to `done`. The first exception stops the pool and is rethrown.
void run_missing(const SweepSpec& spec, const SweepOptions& options, const std::vector<std::string>& cols,
                 const std::vector<std::size_t>& todo, std::map<std::string, Row>& done) {
  ProgressLine progress(spec.name, spec.runs.size(), spec.runs.size() - todo.size(), options.progress);
  std::mutex mu;
  std::FILE* file = std::fopen(options.csv_path.c_str(), "a");
  if (!file) throw std::runtime_error("cannot append to " + options.csv_path);
  std::atomic<std::size_t> next{0};
  std::exception_ptr error;
  auto worker = [&] {
    for (;;) {
      const std::size_t j = next.fetch_add(1);
      if (j >= todo.size()) return;
      const Run& run = spec.runs[todo[j]];
      Row row;
      try {
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

std::vector<Row> run_sweep(const SweepSpec& spec, const SweepOptions& options) {
  const std::vector<std::string> cols = columns(spec);
  std::map<std::string, Row> done = load_done(spec, cols, options.csv_path);
  std::vector<std::size_t> todo;
  for (std::size_t i = 0; i < spec.runs.size(); ++i) {
    if (!done.count(spec.runs[i].key)) todo.push_back(i);
  }
  run_missing(spec, options, cols, todo, done);

  // Canonical order: the order of spec.runs.
  std::vector<Row> rows;
  std::vector<const Row*> ordered;
  for (const auto& run : spec.runs) {
    rows.push_back(done.at(run.key));
    ordered.push_back(&done.at(run.key));
  }
  write_rows_atomic(options.csv_path, cols, ordered);
  return rows;
}

}  // namespace lab
