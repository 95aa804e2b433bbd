#include "tapegrad/train/plot.hpp"

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>

#include "../io/file.hpp"
#include "tapegrad/core/error.hpp"

extern char** environ;

namespace tapegrad {

namespace {

namespace fs = std::filesystem;

const char* const kWho = "plot_metrics";

std::string in_quotes(const std::string& s) { return "\"" + s + "\""; }

// A gnuplot single-quoted string: taken literally, a quote written twice.
std::string gp_string(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
  return out + "'";
}

std::vector<std::string> split(const std::string& line) {
  std::vector<std::string> cells;
  std::size_t start = 0;
  for (;;) {
    const std::size_t comma = line.find(',', start);
    cells.push_back(line.substr(start, comma - start));
    if (comma == std::string::npos) return cells;
    start = comma + 1;
  }
}

bool is_number(const std::string& cell) {
  double v = 0;
  const char* end = cell.data() + cell.size();
  const auto r = std::from_chars(cell.data(), end, v);
  return !cell.empty() && r.ec == std::errc() && r.ptr == end;
}

// The CSV's header and which of its columns hold a number in every row.
struct Table {
  std::vector<std::string> names;
  std::vector<bool> numeric;
  std::size_t rows = 0;

  std::ptrdiff_t find(const std::string& name) const {
    const auto it = std::find(names.begin(), names.end(), name);
    return it == names.end() ? -1 : it - names.begin();
  }
};

Table read_table(const std::string& path) {
  detail::InputFile file(path, kWho);
  std::istream& in = file.stream();
  const std::string where = std::string(kWho) + ": " + in_quotes(path);
  Table t;
  std::string line;
  std::size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    std::vector<std::string> cells = split(line);
    if (t.names.empty()) {
      t.names = std::move(cells);
      t.numeric.assign(t.names.size(), true);
      continue;
    }
    if (cells.size() != t.names.size()) {
      throw IoError(where + " line " + std::to_string(line_no) + " has " + std::to_string(cells.size()) +
                    " values but the header has " + std::to_string(t.names.size()) + " columns");
    }
    for (std::size_t j = 0; j < cells.size(); ++j) t.numeric[j] = t.numeric[j] && is_number(cells[j]);
    ++t.rows;
  }
  if (t.names.empty()) throw IoError(where + " is empty: expected a header line and rows of numbers");
  if (t.rows == 0) throw IoError(where + " has a header but no rows: nothing to plot");
  return t;
}

// The chosen columns, as 1-based CSV column numbers (x = 0: the row number).
struct Layout {
  std::size_t x = 0;
  std::vector<std::size_t> left, right;
};

std::size_t column_of(const Table& t, const std::string& name, const char* option) {
  const std::ptrdiff_t j = t.find(name);
  if (j < 0) {
    std::string have;
    for (const auto& n : t.names) have += (have.empty() ? "" : ", ") + n;
    throw ValueError(std::string(kWho) + ": PlotOptions::" + option + " names column \"" + name +
                     "\", which the CSV does not have (it has " + have + ")");
  }
  if (!t.numeric[static_cast<std::size_t>(j)]) {
    throw ValueError(std::string(kWho) + ": PlotOptions::" + option + " names column \"" + name +
                     "\", which holds values that are not numbers");
  }
  return static_cast<std::size_t>(j) + 1;
}

bool goes_right(const PlotOptions& o, const std::string& name) {
  if (o.right_axis) return std::find(o.right_axis->begin(), o.right_axis->end(), name) != o.right_axis->end();
  return name.find("acc") != std::string::npos;
}

Layout choose_columns(const Table& t, const PlotOptions& o, const std::string& path) {
  Layout l;
  if (o.x != "epoch" || t.find(o.x) >= 0) l.x = column_of(t, o.x, "x");
  std::vector<std::size_t> ys;
  for (const auto& name : o.columns) ys.push_back(column_of(t, name, "columns"));
  if (o.columns.empty()) {
    for (std::size_t j = 0; j < t.names.size(); ++j) {
      if (t.numeric[j] && j + 1 != l.x && t.names[j] != "seconds") ys.push_back(j + 1);
    }
  }
  if (ys.empty()) {
    throw IoError(std::string(kWho) + ": " + in_quotes(path) +
                  " has no numeric column to draw besides the x axis and \"seconds\"");
  }
  if (o.right_axis) {
    for (const auto& name : *o.right_axis) column_of(t, name, "right_axis");
  }
  for (std::size_t y : ys) (goes_right(o, t.names[y - 1]) ? l.right : l.left).push_back(y);
  return l;
}

void check_options(const PlotOptions& o) {
  const auto check_size = [](int v, const char* name) {
    if (v < 100 || v > 10000) {
      throw ValueError(std::string(kWho) + ": PlotOptions::" + name + " is " + std::to_string(v) +
                       "; it must be in [100, 10000]");
    }
  };
  check_size(o.width, "width");
  check_size(o.height, "height");
  for (const std::string* s : {&o.title, &o.ylabel, &o.y2label, &o.x}) {
    if (s->find_first_of("\r\n") != std::string::npos) {
      throw ValueError(std::string(kWho) +
                       ": a title, label or column name must not hold a line break: " + in_quotes(*s));
    }
  }
}

const char* const kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                               "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

std::string script_text(const Table& t, const Layout& l, const PlotOptions& o, PlotFormat format,
                        const std::string& csv_path) {
  std::ostringstream s;
  s << "# Drawn by tapegrad::plot_metrics from a MetricsLog CSV. Run it by hand with\n"
    << "#   gnuplot -c <this file> <metrics.csv> <output." << (format == PlotFormat::Png ? "png" : "svg")
    << ">\n";
  if (format == PlotFormat::Png) {
    s << "set terminal pngcairo size " << o.width << "," << o.height
      << " noenhanced font \"Sans,11\" background \"white\"\n";
  } else {
    s << "set terminal svg size " << o.width << "," << o.height
      << " noenhanced font \"Sans,12\" background \"white\"\n";
  }
  const std::string title = o.title.empty() ? fs::path(csv_path).filename().string() : o.title;
  s << "set output ARG2\nset datafile separator \",\"\nset title " << gp_string(title) << "\nset xlabel "
    << gp_string(l.x == 0 ? "row" : t.names[l.x - 1]) << "\nset grid\nset key below\n";
  if (!o.ylabel.empty()) s << "set ylabel " << gp_string(o.ylabel) << "\n";
  if (o.log_y) s << "set logscale y\n";
  if (!l.right.empty()) {
    s << "set ytics nomirror\nset y2tics\n";
    if (!o.y2label.empty()) s << "set y2label " << gp_string(o.y2label) << "\n";
  }
  const std::string x = l.x == 0 ? "($0+1)" : std::to_string(l.x);
  s << "plot ";
  std::size_t k = 0;
  for (int side = 0; side < 2; ++side) {
    for (std::size_t y : side == 0 ? l.left : l.right) {
      s << (k > 0 ? ", \\\n     " : "") << "ARG1 skip 1 using " << x << ":" << y
        << (side == 1 ? " axes x1y2" : "") << " with linespoints lw 2 pt 7 ps 0.5 lc rgb \"" << kColors[k % 8]
        << "\"" << (side == 1 ? " dashtype 2" : "") << " title "
        << gp_string(t.names[y - 1] + (side == 1 ? " (right axis)" : ""));
      ++k;
    }
  }
  s << "\nset output\n";
  return s.str();
}

// A temporary file removed when this goes out of scope.
struct TempFile {
  std::string path;
  int fd = -1;
  explicit TempFile(const std::string& suffix) {
    std::string tmpl = (fs::temp_directory_path() / ("tapegrad_plot_XXXXXX" + suffix)).string();
    fd = ::mkstemps(tmpl.data(), static_cast<int>(suffix.size()));
    if (fd < 0)
      throw IoError(std::string(kWho) + ": cannot create a temporary file: " + std::strerror(errno));
    path = tmpl;
  }
  ~TempFile() {
    if (fd >= 0) ::close(fd);
    ::unlink(path.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

std::string read_all(int fd) {
  std::string text;
  char buf[4096];
  ::lseek(fd, 0, SEEK_SET);
  for (ssize_t n; (n = ::read(fd, buf, sizeof buf)) > 0;) text.append(buf, static_cast<std::size_t>(n));
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

// Runs `gnuplot -c script csv out` with stdin and stdout on /dev/null and stderr into a temporary
// file; returns gnuplot's exit status and its stderr.
std::pair<int, std::string> run_gnuplot(const std::string& script, const std::string& csv,
                                        const std::string& out) {
  TempFile err(".log");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, err.fd, 2);
  std::string prog = "gnuplot", dash_c = "-c", s = script, c = csv, o = out;
  char* argv[] = {prog.data(), dash_c.data(), s.data(), c.data(), o.data(), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawnp(&pid, "gnuplot", &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc == ENOENT) {
    throw StateError(std::string(kWho) +
                     ": gnuplot is not installed (no \"gnuplot\" on PATH). Install it with scripts/deps, "
                     "or `sudo apt-get install gnuplot-nox`; the metrics are still in " +
                     in_quotes(csv));
  }
  if (rc != 0) throw IoError(std::string(kWho) + ": cannot start gnuplot: " + std::strerror(rc));
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR)
      throw IoError(std::string(kWho) + ": waiting for gnuplot failed: " + std::strerror(errno));
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, read_all(err.fd)};
}

void check_output_folder(const std::string& out_path) {
  detail::check_output_path(out_path, kWho);
  const fs::path folder = fs::absolute(out_path).parent_path();
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) {
    throw IoError(std::string(kWho) + ": cannot write " + in_quotes(out_path) + ": the folder " +
                  in_quotes(folder.string()) + " does not exist");
  }
}

}  // namespace

PlotFormat plot_format_of(const std::string& out_path) {
  std::string ext = fs::path(out_path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  if (ext == ".png") return PlotFormat::Png;
  if (ext == ".svg") return PlotFormat::Svg;
  throw ValueError(std::string(kWho) + ": the output " + in_quotes(out_path) +
                   " must end in .png or .svg (the extension chooses the format)");
}

std::string metrics_plot_script(const std::string& csv_path, PlotFormat format, const PlotOptions& options) {
  check_options(options);
  const Table table = read_table(csv_path);
  return script_text(table, choose_columns(table, options, csv_path), options, format, csv_path);
}

void plot_metrics(const std::string& csv_path, const std::string& out_path, const PlotOptions& options) {
  const PlotFormat format = plot_format_of(out_path);
  const std::string script = metrics_plot_script(csv_path, format, options);
  check_output_folder(out_path);
  TempFile gp(".gp");
  if (::write(gp.fd, script.data(), script.size()) != static_cast<ssize_t>(script.size())) {
    throw IoError(std::string(kWho) + ": cannot write the temporary script " + in_quotes(gp.path));
  }
  // Absolute paths start with '/': gnuplot never reads them as "<command" or "|command".
  const std::string csv = fs::absolute(csv_path).string(), out = fs::absolute(out_path).string();
  const bool existed = fs::exists(out);
  const auto [code, err] = run_gnuplot(gp.path, csv, out);
  if (code != 0) {
    std::error_code ignored;
    if (!existed) fs::remove(out, ignored);  // gnuplot opens the output before it fails

    throw IoError(std::string(kWho) + ": gnuplot failed (exit status " + std::to_string(code) + ") drawing " +
                  in_quotes(csv_path) + " into " + in_quotes(out_path) + (err.empty() ? "" : ": " + err));
  }
  std::error_code ec;
  if (fs::file_size(out, ec) == 0 || ec) {
    throw IoError(std::string(kWho) + ": gnuplot ran but wrote nothing to " + in_quotes(out_path) +
                  (err.empty() ? "" : ": " + err));
  }
}

}  // namespace tapegrad
