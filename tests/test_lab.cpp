// The lab program end to end: it is run as a user would (std::system, fork/exec) into scratch
// folders under the build directory, and its CSVs are read back. Only --tiny runs, so the
// whole file stays fast even in a Debug + sanitizer build.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "../examples/lab/csv.hpp"  // the lab's own CSV reading
#include "support.hpp"

namespace {

namespace fs = std::filesystem;

const std::string kLab = TAPEGRAD_LAB_BINARY;

// Scratch folders live in one folder per process (ctest runs test cases as parallel processes).
fs::path process_scratch() {
  return fs::path(TAPEGRAD_BINARY_DIR) / "test_lab_scratch" / std::to_string(getpid());
}

// A fresh, empty folder; a test case removes its folders when it gets to its end.
std::string scratch(const std::string& name) {
  const fs::path dir = process_scratch() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

void remove_scratch(const std::vector<std::string>& dirs) {
  std::error_code ec;
  for (const auto& d : dirs) {
    fs::remove_all(d, ec);
    fs::remove(d + ".log", ec);
  }
  fs::remove(process_scratch(), ec);  // only once empty
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Runs the lab with `args`; its output goes to <log>. Returns the exit status (-1 if it did
// not exit normally).
int run_lab(const std::string& args, const std::string& log) {
  const std::string cmd = "'" + kLab + "' " + args + " --no-progress > '" + log + "' 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

struct Csv {
  std::vector<std::string> header;
  std::vector<std::map<std::string, std::string>> rows;
  const std::string& at(std::size_t r, const std::string& col) const { return rows.at(r).at(col); }
  double num(std::size_t r, const std::string& col) const { return std::strtod(at(r, col).c_str(), nullptr); }
};

// Complete lines only (a line without its newline was cut short by a kill).
Csv read_csv(const std::string& path) {
  Csv csv;
  for (const auto& cells : lab::complete_csv_lines(read_file(path))) {
    if (csv.header.empty()) {
      csv.header = cells;
      continue;
    }
    REQUIRE(cells.size() == csv.header.size());
    std::map<std::string, std::string> row;
    for (std::size_t i = 0; i < cells.size(); ++i) row[csv.header[i]] = cells[i];
    csv.rows.push_back(row);
  }
  return csv;
}

std::size_t complete_rows(const std::string& path) {
  const std::string text = read_file(path);
  const auto lines = static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
  return lines > 0 ? lines - 1 : 0;
}

// Two CSVs hold the same results: same columns, same rows in the same order, same values in
// every column whose name does not contain "time".
void check_same_results(const std::string& a_path, const std::string& b_path) {
  INFO(a_path << " vs " << b_path);
  const Csv a = read_csv(a_path), b = read_csv(b_path);
  REQUIRE(a.header == b.header);
  REQUIRE(a.rows.size() == b.rows.size());
  for (std::size_t r = 0; r < a.rows.size(); ++r) {
    for (const auto& col : a.header) {
      if (col.find("time") != std::string::npos) continue;
      INFO("row " << r << ", column " << col);
      CHECK(a.at(r, col) == b.at(r, col));
    }
  }
}

std::vector<std::string> csv_names(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".csv") names.push_back(e.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Report section `number`: from its "## <number>." heading to the next "## " heading.
std::string report_section(const std::string& report, int number) {
  const std::size_t at = report.find("\n## " + std::to_string(number) + ".");
  if (at == std::string::npos) return "";
  const std::size_t end = report.find("\n## ", at + 1);
  return report.substr(at + 1, end == std::string::npos ? std::string::npos : end - at - 1);
}

// What counts as a number a Reading quotes (the rule is strict on purpose, with no list of
// exceptions): a maximal run of digits, with an optional fraction (".digits") and an optional
// exponent ("e-05", "E+3"), that starts a word: the character before it is not a letter, a digit,
// '_' or '.'. The sign is not part of it. So "0.948", "12288", "1e-05", both numbers of
// "2 / 4", "40" of "T = 40", "0.81" of "B^-0.81", a year, a section number ("section 1") and an
// epoch count all count, and the digits inside names such as "float32", "log10",
// "e1_batch_dependence.csv" do not. Every such number must be written, character for
// character, in one of the section's tables (a line of the report starting with '|', header
// included) or be a whole cell of one of the section's CSVs (the files e<section>_*.csv).
// The numbers of `text` with where each starts.
std::vector<std::pair<std::size_t, std::string>> numbers_at(const std::string& text) {
  std::vector<std::pair<std::size_t, std::string>> out;
  auto digit = [&](std::size_t i) {
    return i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]));
  };
  auto word_char = [&](std::size_t i) {
    const auto ch = static_cast<unsigned char>(text[i]);
    return std::isalnum(ch) || ch == '_' || ch == '.';
  };
  std::size_t i = 0;
  while (i < text.size()) {
    if (!digit(i)) {
      ++i;
      continue;
    }
    const std::size_t start = i;
    while (digit(i)) ++i;
    if (i + 1 < text.size() && text[i] == '.' && digit(i + 1)) {
      ++i;
      while (digit(i)) ++i;
    }
    if (i < text.size() && (text[i] == 'e' || text[i] == 'E')) {
      std::size_t j = i + 1;
      if (j < text.size() && (text[j] == '-' || text[j] == '+')) ++j;
      if (digit(j)) {
        i = j;
        while (digit(i)) ++i;
      }
    }
    if (start == 0 || !word_char(start - 1)) out.emplace_back(start, text.substr(start, i - start));
  }
  return out;
}

std::vector<std::string> number_tokens(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& [pos, t] : numbers_at(text)) out.push_back(t);
  return out;
}

// The section's Readings: every paragraph that starts with "**Reading.**".
std::vector<std::string> readings(const std::string& section) {
  std::vector<std::string> out;
  for (std::size_t at = section.find("**Reading.**"); at != std::string::npos;
       at = section.find("**Reading.**", at + 1)) {
    out.push_back(section.substr(at, section.find("\n\n", at) - at));
  }
  return out;
}

// Checks that every number the section's Readings quote (see number_tokens) is written in one
// of the section's tables or is a whole cell of one of `csv_paths`; returns how many numbers the
// Readings quote.
std::size_t check_reading_numbers(const std::string& section, const std::vector<std::string>& csv_paths) {
  const auto texts = readings(section);
  REQUIRE(!texts.empty());
  std::set<std::string> known;
  std::istringstream lines(section);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("|", 0) != 0) continue;
    for (const auto& t : number_tokens(line)) known.insert(t);
  }
  for (const auto& path : csv_paths) {
    for (const auto& row : read_csv(path).rows) {
      for (const auto& [col, cell] : row) known.insert(cell);
    }
  }
  std::size_t quoted = 0;
  for (const auto& reading : texts) {
    for (const auto& t : number_tokens(reading)) {
      INFO("the Reading quotes " << t << ", which is in none of the section's tables and CSVs: " << reading);
      CHECK(known.count(t) == 1);
      ++quoted;
    }
  }
  return quoted;
}

// The section's CSVs: the files e<section>_*.csv of the run's folder.
std::vector<std::string> section_csvs(const std::string& dir, int number) {
  std::vector<std::string> out;
  for (const auto& name : csv_names(dir)) {
    if (name.rfind("e" + std::to_string(number) + "_", 0) == 0) out.push_back(dir + "/" + name);
  }
  return out;
}

// Section 9's message when it cannot start MPI ranks.
const std::string kNoMpi = "**Not run: this section could not start MPI ranks.**";

bool mpirun_on_path() {
  const char* path = std::getenv("PATH");
  std::stringstream in(path ? path : "");
  for (std::string dir; std::getline(in, dir, ':');) {
    if (access(((dir.empty() ? std::string(".") : dir) + "/mpirun").c_str(), X_OK) == 0) return true;
  }
  return false;
}

// Section 9 runs when tapegrad has MPI and mpirun is on PATH.
bool section9_can_run() { return tapegrad::dist::built_with_mpi() && mpirun_on_path(); }

// Runs `mpirun -np <np> tapegrad-lab <args>` (at most 5 minutes: a hung job is a failure, exit
// status 124), with the environment test_mpi's ranks get (tests/CMakeLists.txt). Returns the
// exit status.
int run_lab_mpi(int np, const std::string& args, const std::string& log) {
  const std::string env =
      "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mca_base_component_disable_dlclose=1 "
      "ASAN_OPTIONS=detect_leaks=1:fast_unwind_on_malloc=0 LSAN_OPTIONS=suppressions=" TAPEGRAD_SOURCE_DIR
      "/tests/lsan_openmpi.supp:print_suppressions=0 ";
  const std::string cmd = env + "timeout -k 10 300 mpirun --allow-run-as-root --oversubscribe -np " +
                          std::to_string(np) + " '" + kLab + "' " + args + " --no-progress > '" + log +
                          "' 2>&1";
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// Files a lab job leaves only while it runs: the ranks' part files, the claims, temporaries.
std::vector<std::string> job_leftovers(const std::string& dir) {
  std::vector<std::string> left;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.find(".part") != std::string::npos || name.find(".claims") != std::string::npos ||
        name.find(".tmp") != std::string::npos)
      left.push_back(name);
  }
  return left;
}

}  // namespace

TEST_CASE("The lab's CSVs do not depend on the number of worker threads", "[lab]") {
  const std::string one = scratch("threads1"), two = scratch("threads2");
  REQUIRE(run_lab("--tiny --threads 1 --out '" + one + "'", one + ".log") == 0);
  REQUIRE(run_lab("--tiny --threads 2 --out '" + two + "'", two + ".log") == 0);
  const auto names = csv_names(one);
  REQUIRE(names == csv_names(two));
  for (const char* expected : {"e1_batch_dependence.csv", "e2_cross_gradients.csv", "e3_batch_invariant.csv",
                               "e4_mlp_stability.csv", "e5_rnn_stability.csv", "e6_order_sensitivity.csv"}) {
    CHECK(std::find(names.begin(), names.end(), expected) != names.end());
  }
  for (const auto& n : names) check_same_results(one + "/" + n, two + "/" + n);
  const std::string report = read_file(one + "/report.md");
  for (const char* heading : {"## 1.", "## 4.", "## 5.", "## 6.", "## 7.", "## 8."})
    CHECK(report.find(heading) != std::string::npos);
  remove_scratch({one, two});
}

// One tiny lab run shared by the sections below (Catch2 reruns the test case for each
// section), removed when the process ends.
const std::string& qualitative_run() {
  struct Run {
    std::string dir = scratch("qualitative");
    Run() { REQUIRE(run_lab("--tiny --threads 2 --out '" + dir + "'", dir + ".log") == 0); }
    ~Run() { remove_scratch({dir}); }
  };
  static const Run run;
  return run.dir;
}

TEST_CASE("The tiny lab shows the qualitative results each section is about", "[lab]") {
  const std::string& dir = qualitative_run();

  SECTION("e1: LayerNorm outputs do not depend on the batch; BatchNorm in training mode does") {
    const Csv e1 = read_csv(dir + "/e1_batch_dependence.csv");
    bool saw_layer = false, saw_bn2 = false;
    for (std::size_t r = 0; r < e1.rows.size(); ++r) {
      if (e1.at(r, "norm") == "layer") {
        saw_layer = true;
        CHECK(e1.num(r, "max_abs_dev") <= 1e-5);
      }
      if (e1.at(r, "norm") == "batch_train" && e1.at(r, "batch_size") == "2") {
        saw_bn2 = true;
        CHECK(e1.num(r, "max_abs_dev") >= 1e-3);
      }
    }
    CHECK(saw_layer);
    CHECK(saw_bn2);
  }
  SECTION("e2: only BatchNorm in training mode has cross-example gradients") {
    const Csv e2 = read_csv(dir + "/e2_cross_gradients.csv");
    REQUIRE(!e2.rows.empty());
    for (std::size_t r = 0; r < e2.rows.size(); ++r) {
      INFO(e2.at(r, "key"));
      if (e2.at(r, "norm") == "batch_train")
        CHECK(e2.num(r, "offdiag_max") > 0);
      else
        CHECK(e2.num(r, "offdiag_max") == 0);
    }
  }
  SECTION("e3: batch-invariant mode gives bitwise identical outputs") {
    const Csv e3 = read_csv(dir + "/e3_batch_invariant.csv");
    std::size_t invariant_rows = 0;
    for (std::size_t r = 0; r < e3.rows.size(); ++r) {
      if (e3.at(r, "batch_invariant") != "1") continue;
      ++invariant_rows;
      INFO(e3.at(r, "key"));
      CHECK(e3.num(r, "differing_bits") == 0);
    }
    CHECK(invariant_rows > 0);
  }
  SECTION("e4: lr 3 diverges and stops early for every norm and batch size; lr 0.01 never diverges") {
    // Checked at --tiny with base seeds 0 to 6: lr 0.1 diverged in some of them, 3 and 0.01 never
    // changed sides.
    const Csv e4 = read_csv(dir + "/e4_mlp_stability.csv");
    std::size_t at_3 = 0, at_001 = 0;
    std::set<std::string> epochs;
    for (std::size_t r = 0; r < e4.rows.size(); ++r) {
      INFO(e4.at(r, "key"));
      // The same epochs at every batch size: steps = epochs x whole batches in the training set.
      epochs.insert(e4.at(r, "epochs"));
      CHECK(e4.num(r, "steps") ==
            e4.num(r, "epochs") * std::floor(e4.num(r, "train_size") / e4.num(r, "batch_size")));
      if (e4.at(r, "lr") == "3") {
        ++at_3;
        CHECK(e4.num(r, "diverged") == 1);
        CHECK(e4.num(r, "steps_done") < e4.num(r, "steps"));
      }
      if (e4.at(r, "lr") == "0.01") {
        ++at_001;
        CHECK(e4.num(r, "diverged") == 0);
        CHECK(e4.num(r, "steps_done") == e4.num(r, "steps"));
        CHECK(std::isfinite(e4.num(r, "test_loss")));
      }
      // Training-mode test accuracy exists for BatchNorm only.
      const double tm = e4.num(r, "test_acc_train_mode");
      if (e4.at(r, "norm") == "batch")
        CHECK((tm >= 0 && tm <= 1));
      else
        CHECK(std::isnan(tm));
      CHECK((e4.num(r, "test_acc") >= 0 && e4.num(r, "test_acc") <= 1));
    }
    CHECK(at_3 == 12);  // 3 norms x 2 batch sizes x 2 seeds
    CHECK(at_001 == 12);
    CHECK(epochs.size() == 1);
  }
  SECTION("e5: both settings' cells are in the CSV, and results.json's long-setting numbers come from it") {
    const Csv e5 = read_csv(dir + "/e5_rnn_stability.csv");
    const std::map<std::string, std::string> norm_of = {{"rnn", "none"},
                                                        {"lnrnn_summed", "LayerNorm"},
                                                        {"lnrnn_separate", "LayerNorm"},
                                                        {"bnrnn", "BatchNorm"},
                                                        {"lstm", "none"},
                                                        {"lnlstm", "LayerNorm"},
                                                        {"gru", "none"}};
    std::map<std::string, std::set<std::string>> cells;   // seq_len -> cells
    std::map<std::string, std::vector<double>> long_mse;  // cell -> final MSE of the long setting
    const auto results = nlohmann::json::parse(read_file(dir + "/results.json")).at("e5");
    const std::string short_t = std::to_string(results.at("seq_len").get<int>());
    const std::string long_t = std::to_string(results.at("long").at("seq_len").get<int>());
    for (std::size_t r = 0; r < e5.rows.size(); ++r) {
      INFO(e5.at(r, "key"));
      const std::string cell = e5.at(r, "cell");
      REQUIRE(norm_of.count(cell) == 1);
      CHECK(e5.at(r, "norm") == norm_of.at(cell));
      cells[e5.at(r, "seq_len")].insert(cell);
      const double mse = e5.num(r, "final_test_mse");
      if (e5.num(r, "diverged") == 1)
        CHECK(std::isnan(mse));
      else
        CHECK((mse >= 0 && mse < 1));
      CHECK(e5.num(r, "steps_run") <= e5.num(r, "steps"));
      if (e5.at(r, "seq_len") == long_t && e5.num(r, "diverged") == 0) long_mse[cell].push_back(mse);
    }
    CHECK(std::stoi(long_t) > std::stoi(short_t));
    CHECK(cells.size() == 2);
    CHECK(cells[short_t] == std::set<std::string>{"rnn", "lnrnn_summed", "lnrnn_separate", "bnrnn"});
    std::set<std::string> all_cells;
    for (const auto& [cell, norm] : norm_of) all_cells.insert(cell);
    CHECK(cells[long_t] == all_cells);
    // One learning rate in the long setting at --tiny: each cell's number is the mean over its seeds.
    const auto& long_cells = results.at("long").at("cells");
    for (const auto& cell : all_cells) {
      INFO(cell);
      const auto& j = long_cells.at(cell);
      CHECK(j.at("norm").get<std::string>() == norm_of.at(cell));
      const double frac = j.at("learned_fraction").get<double>();
      CHECK((frac >= 0 && frac <= 1));
      const auto& v = long_mse[cell];
      if (v.empty()) continue;  // every run diverged: results.json holds null (NaN)
      double mean = 0;
      for (double x : v) mean += x / static_cast<double>(v.size());
      CHECK(j.at("final_test_mse").get<double>() == Approx(mean).epsilon(1e-12));
    }
    CHECK(results.at("long").at("baseline_mse").get<double>() == Approx(1.0 / 6));
    const std::string report = read_file(dir + "/report.md");
    CHECK(report.find("### A longer dependency: T = " + long_t) != std::string::npos);
    CHECK(report.find("e5_rnn_long_curves.png") != std::string::npos);
    CHECK(report.find("**Reading.** At T = " + long_t + " the plain RNN") != std::string::npos);
  }
  SECTION("e6: the shuffling order changes the result of every configuration") {
    const Csv e6 = read_csv(dir + "/e6_order_sensitivity.csv");
    std::map<std::string, std::vector<std::string>> losses;  // (norm, batch) -> test loss per order
    for (std::size_t r = 0; r < e6.rows.size(); ++r) {
      losses[e6.at(r, "norm") + "/" + e6.at(r, "batch_size")].push_back(e6.at(r, "test_loss"));
    }
    CHECK(losses.size() == 6);
    for (const auto& [config, v] : losses) {
      INFO(config);
      CHECK(v.size() == 3);
      CHECK(std::set<std::string>(v.begin(), v.end()).size() == v.size());
    }
  }
  SECTION("e7: MNIST learns well above chance at batch size 4, or the report says the data was missing") {
    if (!fs::exists(dir + "/e7_mnist.csv")) {
      CHECK(read_file(dir + "/report.md").find("MNIST data was not available") != std::string::npos);
      return;
    }
    const Csv e7 = read_csv(dir + "/e7_mnist.csv");
    CHECK(e7.rows.size() == 6);
    for (std::size_t r = 0; r < e7.rows.size(); ++r) {
      INFO(e7.at(r, "key"));
      if (e7.at(r, "batch_size") == "4") CHECK(e7.num(r, "acc_epoch_2") > 0.4);  // chance is 0.1
    }
  }
}

TEST_CASE("The tiny lab's section 8 covers every norm and batch size, and results.json agrees with its CSV",
          "[lab]") {
  const std::string& dir = qualitative_run();
  const auto results = nlohmann::json::parse(read_file(dir + "/results.json"));
  const std::string report = read_file(dir + "/report.md");
  const std::size_t at = report.find("## 8. MNIST: test error vs batch size for seven normalizations");
  REQUIRE(at != std::string::npos);
  const std::string section = report.substr(at);
  const auto& e8 = results.at("e8");
  if (!fs::exists(dir + "/e8_norm_batch_size.csv")) {
    CHECK(section.find("MNIST data was not available") != std::string::npos);
    CHECK(e8.at("available").get<bool>() == false);
    return;
  }
  REQUIRE(e8.at("available").get<bool>());
  const std::set<std::string> norms = {"none",  "batch", "batch_renorm", "ghost_batch",
                                       "group", "layer", "rms"};
  const std::set<std::string> batch_stats = {"batch", "batch_renorm", "ghost_batch"};
  const auto sizes = e8.at("batch_sizes").get<std::vector<int>>();
  const auto seeds = e8.at("seeds").get<std::size_t>();
  REQUIRE(sizes.size() >= 2);
  CHECK(sizes.front() == 2);
  const Csv csv = read_csv(dir + "/e8_norm_batch_size.csv");
  CHECK(csv.rows.size() == norms.size() * sizes.size() * seeds);
  std::map<std::string, std::vector<double>> eval, train_mode;  // "norm_B<b>" -> errors over seeds
  std::map<std::string, std::string> epochs, eval_bits;         // same epochs everywhere; GBN vs BN
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    INFO(csv.at(r, "key"));
    const std::string norm = csv.at(r, "norm"), b = csv.at(r, "batch_size");
    REQUIRE(norms.count(norm) == 1);
    const std::string k = norm + "_B" + b;
    const double err = csv.num(r, "test_error"), tm = csv.num(r, "test_error_train_mode");
    CHECK((err >= 0 && err <= 1));
    if (batch_stats.count(norm)) {
      CHECK((tm >= 0 && tm <= 1));
      train_mode[k].push_back(tm);
    } else {
      CHECK(std::isnan(tm));
    }
    eval[k].push_back(err);
    epochs[csv.at(r, "epochs")] = k;
    CHECK(csv.num(r, "steps") ==
          e8.at("epochs").get<double>() * std::floor(csv.num(r, "train_size") / std::stod(b)));
    // GhostBatchNorm with one ghost batch is BatchNorm, bit for bit: the same errors.
    if ((norm == "batch" || norm == "ghost_batch") &&
        std::stoul(b) <= e8.at("ghost_virtual_batch").get<std::size_t>()) {
      const std::string kb = b + "/" + csv.at(r, "seed"),
                        bits = csv.at(r, "test_error") + "," + csv.at(r, "test_error_train_mode");
      if (eval_bits.count(kb))
        CHECK(eval_bits.at(kb) == bits);
      else
        eval_bits[kb] = bits;
    }
  }
  CHECK(epochs.size() == 1);
  CHECK(!eval_bits.empty());
  auto mean = [](const std::vector<double>& v) {
    double m = 0;
    for (double x : v) m += x / static_cast<double>(v.size());
    return m;
  };
  for (const auto& norm : norms) {
    for (int b : sizes) {
      const std::string k = norm + "_B" + std::to_string(b);
      INFO(k);
      REQUIRE(eval[k].size() == seeds);
      CHECK(e8.at("test_error").at(k).get<double>() == Approx(mean(eval[k])).epsilon(1e-12));
      if (batch_stats.count(norm)) {
        REQUIRE(train_mode[k].size() == seeds);
        CHECK(e8.at("test_error_train_mode").at(k).get<double>() ==
              Approx(mean(train_mode[k])).epsilon(1e-12));
      } else {
        CHECK_FALSE(e8.at("test_error_train_mode").contains(k));
      }
    }
  }
  CHECK(e8.at("test_error").size() == norms.size() * sizes.size());
  CHECK(section.find("e8_norm_batch_size.png") != std::string::npos);
  CHECK(section.find("| BatchRenorm, train mode |") != std::string::npos);
  CHECK(section.find("**Reading.** From batch size " + std::to_string(sizes.back()) +
                     " to 2, the mean test error") != std::string::npos);
}

// Section 9's CSV at --tiny: per (norm, ranks) the row of the one seed.
std::map<std::string, std::map<std::string, std::string>> e9_rows(const Csv& csv) {
  std::map<std::string, std::map<std::string, std::string>> out;
  for (const auto& row : csv.rows) out[row.at("norm") + "/R" + row.at("ranks")] = row;
  return out;
}

TEST_CASE("The tiny lab's section 9: data-parallel runs on 1 and 2 ranks, or a visible message without MPI",
          "[lab]") {
  const std::string& dir = qualitative_run();
  const std::string section = report_section(read_file(dir + "/report.md"), 9);
  REQUIRE(!section.empty());
  const auto e9 = nlohmann::json::parse(read_file(dir + "/results.json")).at("e9");
  if (!section9_can_run()) {
    CHECK(section.find(kNoMpi) != std::string::npos);
    CHECK(e9.at("available").get<bool>() == false);
    CHECK_FALSE(fs::exists(dir + "/e9_data_parallel.csv"));
    CHECK(read_file(dir + ".log").find("section 9 skipped") != std::string::npos);
    return;
  }
  if (!fs::exists(dir + "/e9_data_parallel.csv")) {
    CHECK(section.find("MNIST data was not available") != std::string::npos);
    return;
  }
  CHECK(section.find(kNoMpi) == std::string::npos);
  REQUIRE(e9.at("available").get<bool>());
  CHECK(e9.at("ranks").get<std::vector<int>>() == std::vector<int>{1, 2});
  const Csv csv = read_csv(dir + "/e9_data_parallel.csv");
  REQUIRE(csv.rows.size() == 6);  // 3 norms x 2 rank counts x 1 seed
  auto rows = e9_rows(csv);
  for (const auto& [k, row] : rows) {
    INFO(k);
    const int ranks = std::stoi(row.at("ranks")), over = std::stoi(row.at("normalised_over"));
    CHECK(std::stoi(row.at("per_replica_batch")) * ranks == std::stoi(row.at("global_batch")));
    CHECK(over == (row.at("norm") == "batch" ? 64 / ranks : row.at("norm") == "sync_batch" ? 64 : 1));
    CHECK(std::stod(row.at("max_param_gap")) == 0);  // DDP keeps the replicas identical
    CHECK(row.at("steps_done") == rows.at("layer/R1").at("steps_done"));
    const double acc = std::stod(row.at("test_acc"));
    CHECK((acc > 0.2 && acc <= 1));  // chance is 0.1
    CHECK(e9.at("test_acc").at(row.at("norm") + "_R" + row.at("ranks")).get<double>() ==
          Approx(acc).epsilon(1e-12));
  }
  // The point of the section: the same global batches give the same training losses on 1 and 2
  // ranks, to float rounding, with SyncBatchNorm and LayerNorm; BatchNorm normalises each half alone.
  auto loss_gap = [&](const std::string& norm) {
    return std::abs(std::stod(rows.at(norm + "/R1").at("last_epoch_loss")) -
                    std::stod(rows.at(norm + "/R2").at("last_epoch_loss")));
  };
  CHECK(loss_gap("sync_batch") < 1e-4);
  CHECK(loss_gap("layer") < 1e-4);
  CHECK(loss_gap("batch") > 1e-3);
  // Communication: LayerNorm only the gradients, BatchNorm also its buffers' broadcast, SyncBatchNorm
  // its statistics on top.
  auto at2 = [&](const std::string& norm, const std::string& col) {
    return std::stod(rows.at(norm + "/R2").at(col));
  };
  CHECK(at2("layer", "allreduce_bytes_per_step") > 0);
  CHECK(at2("batch", "allreduce_bytes_per_step") == at2("layer", "allreduce_bytes_per_step"));
  CHECK(at2("sync_batch", "allreduce_bytes_per_step") > at2("batch", "allreduce_bytes_per_step"));
  CHECK(at2("layer", "bcast_bytes_per_step") == 0);
  CHECK(at2("batch", "bcast_bytes_per_step") > 0);
  CHECK(at2("sync_batch", "mpi_calls_per_step") > at2("batch", "mpi_calls_per_step"));
  CHECK(at2("batch", "mpi_calls_per_step") > at2("layer", "mpi_calls_per_step"));
  CHECK(section.find("e9_data_parallel.png") != std::string::npos);
  CHECK(section.find("| SyncBatchNorm | 2 | 32 | 64 examples |") != std::string::npos);
  CHECK(section.find("**Reading.** From 1 to 2 ranks, the mean test accuracy") != std::string::npos);
}

TEST_CASE(
    "The tiny lab's section 4: results.json agrees with its CSV, and its Reading quotes only its numbers",
    "[lab]") {
  const std::string& dir = qualitative_run();
  const auto e4 = nlohmann::json::parse(read_file(dir + "/results.json")).at("e4");
  const Csv csv = read_csv(dir + "/e4_mlp_stability.csv");
  // Per norm and batch size: each lr's test accuracies and whether a seed diverged.
  std::map<std::string, std::map<std::string, std::vector<double>>> acc;
  std::map<std::string, std::set<std::string>> diverged_lrs;
  for (std::size_t r = 0; r < csv.rows.size(); ++r) {
    const std::string k = csv.at(r, "norm") + "/" + csv.at(r, "batch_size");
    acc[k][csv.at(r, "lr")].push_back(csv.num(r, "test_acc"));
    if (csv.num(r, "diverged") == 1) diverged_lrs[k].insert(csv.at(r, "lr"));
    CHECK(e4.at("by_norm_and_batch")
              .at(csv.at(r, "norm"))
              .at(csv.at(r, "batch_size"))
              .at("steps")
              .get<double>() == csv.num(r, "steps"));
  }
  REQUIRE(acc.size() == 6);  // 3 norms x 2 batch sizes
  for (const auto& [k, by_lr] : acc) {
    INFO(k);
    double best = -1;
    for (const auto& [lr, v] : by_lr) {
      if (diverged_lrs[k].count(lr)) continue;
      double mean = 0;
      for (double x : v) mean += x / static_cast<double>(v.size());
      best = std::max(best, mean);
    }
    const std::string norm = k.substr(0, k.find('/')), b = k.substr(k.find('/') + 1);
    const auto& j = e4.at("by_norm_and_batch").at(norm).at(b).at("best_mean_test_acc");
    if (best < 0)
      CHECK(j.is_null());  // every lr diverged in some seed: NaN
    else
      CHECK(j.get<double>() == Approx(best).epsilon(1e-12));
  }
  const std::string section = report_section(read_file(dir + "/report.md"), 4);
  REQUIRE(!section.empty());
  CHECK(section.find("**Reading.** With the same " + std::to_string(e4.at("epochs").get<int>()) + " epoch") !=
        std::string::npos);
  CHECK(check_reading_numbers(section, {dir + "/e4_mlp_stability.csv"}) >= 10);
}

TEST_CASE("Every number a Reading of the tiny lab quotes is in its section's tables or CSVs", "[lab]") {
  const std::string& dir = qualitative_run();
  const std::string report = read_file(dir + "/report.md");
  for (int number = 1; number <= 9; ++number) {
    INFO("section " << number);
    const std::string section = report_section(report, number);
    REQUIRE(!section.empty());
    const auto csvs = section_csvs(dir, number);
    if (number == 9 && csvs.empty() && section.find(kNoMpi) != std::string::npos) {
      WARN("section 9 skipped: no MPI");
      continue;
    }
    if ((number == 7 || number == 8 || number == 9) && csvs.empty()) {
      // MNIST sections: without the data there is no table and no Reading.
      CHECK(section.find("MNIST data was not available") != std::string::npos);
      WARN("section " << number << " skipped: the MNIST data was not available (scripts/fetch-mnist)");
      continue;
    }
    REQUIRE(!csvs.empty());
    CHECK(check_reading_numbers(section, csvs) >= 2);
  }
}

TEST_CASE("The tiny lab's RNN curve plots show each cell at the learning rate of its best cell of the table",
          "[lab]") {
  const std::string& dir = qualitative_run();
  const std::map<std::string, std::string> title_of = {{"rnn", "RNN"},
                                                       {"lnrnn_summed", "LN-RNN (summed, eq. 4)"},
                                                       {"lnrnn_separate", "LN-RNN (separate)"},
                                                       {"bnrnn", "BN-RNN"},
                                                       {"lstm", "LSTM"},
                                                       {"lnlstm", "LN-LSTM"},
                                                       {"gru", "GRU"}};
  const auto e5 = nlohmann::json::parse(read_file(dir + "/results.json")).at("e5");
  const Csv csv = read_csv(dir + "/e5_rnn_stability.csv");
  for (const auto& [stem, seq_len] : std::vector<std::pair<std::string, int>>{
           {"e5_rnn_curves", e5.at("seq_len").get<int>()},
           {"e5_rnn_long_curves", e5.at("long").at("seq_len").get<int>()}}) {
    // Per cell and lr (ascending): the final MSEs of the runs that did not diverge.
    std::map<std::string, std::map<double, std::vector<double>>> finals;
    for (std::size_t r = 0; r < csv.rows.size(); ++r) {
      if (csv.at(r, "seq_len") != std::to_string(seq_len)) continue;
      auto& v = finals[csv.at(r, "cell")][csv.num(r, "lr")];
      if (csv.num(r, "diverged") == 0) v.push_back(csv.num(r, "final_test_mse"));
    }
    REQUIRE(!finals.empty());
    const std::string gp = read_file(dir + "/" + stem + ".gp");
    for (const auto& [cell, by_lr] : finals) {
      // The table's best lr of the cell: the lowest mean final MSE (ties and no finished run: the smallest lr).
      double best_lr = by_lr.begin()->first, best = INFINITY;
      for (const auto& [lr, v] : by_lr) {
        if (v.empty()) continue;
        double mean = 0;
        for (double x : v) mean += x / static_cast<double>(v.size());
        if (mean < best) best = mean, best_lr = lr;
      }
      const std::string prefix = "title \"" + title_of.at(cell) + " (lr ";
      const std::size_t at = gp.find(prefix);
      INFO(stem << ", " << cell << ", best lr " << best_lr);
      REQUIRE(at != std::string::npos);
      CHECK(std::stod(gp.substr(at + prefix.size())) == Approx(best_lr).epsilon(1e-9));
    }
  }
}

TEST_CASE("A lab killed mid-sweep resumes where it stopped and ends with the same CSV", "[lab]") {
  const std::string clean = scratch("resume-clean");
  REQUIRE(run_lab("--tiny --only 4 --threads 2 --out '" + clean + "'", clean + ".log") == 0);
  const std::string csv_name = "/e4_mlp_stability.csv";
  const std::size_t total = read_csv(clean + csv_name).rows.size();
  REQUIRE(total == 36);

  // Start the lab, SIGKILL it once some rows are written, and make sure it was really cut short
  // (a fast machine might finish first: then try again).
  std::string dir;
  std::size_t rows_at_kill = 0;
  bool interrupted = false;
  for (int attempt = 0; attempt < 5 && !interrupted; ++attempt) {
    const std::string out = scratch("resume-" + std::to_string(attempt)) + "/out";
    const pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      if (!std::freopen("/dev/null", "w", stdout) || !std::freopen("/dev/null", "w", stderr)) _exit(126);
      execl(kLab.c_str(), kLab.c_str(), "--tiny", "--only", "4", "--threads", "1", "--no-progress", "--out",
            out.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    int status = 0;
    bool exited = false;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;  // finished (or failed) before we saw a row
        break;
      }
      if (complete_rows(out + csv_name) >= 2) break;
      std::this_thread::sleep_for(std::chrono::microseconds(500));
    }
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
    REQUIRE_FALSE((exited && WIFEXITED(status) && WEXITSTATUS(status) != 0));
    rows_at_kill = complete_rows(out + csv_name);
    interrupted = WIFSIGNALED(status) && rows_at_kill > 0 && rows_at_kill < total;
    dir = out;
  }
  REQUIRE(interrupted);
  INFO("killed with " << rows_at_kill << " of " << total << " runs written");

  REQUIRE(run_lab("--tiny --only 4 --threads 2 --out '" + dir + "'", dir + ".log") == 0);
  check_same_results(clean + csv_name, dir + csv_name);
  const auto manifest = nlohmann::json::parse(read_file(dir + "/manifest.json"));
  const int executed = manifest.at("runs_executed").get<int>();
  CHECK(executed < static_cast<int>(total));
  CHECK(executed == static_cast<int>(total - rows_at_kill));
  // The manifest records what ran the matrix products (issue: BLAS kernel misdetection).
  const auto& blas = manifest.at("blas");
  CHECK(blas.at("kernel").get<std::string>() == tapegrad::blas_info().kernel);
  CHECK(blas.at("cpu_isa").get<std::string>() == tapegrad::blas_info().cpu_isa);
  CHECK(blas.at("warning").get<std::string>() == tapegrad::blas_info().warning());
  const tapegrad::BlasInfo info = tapegrad::blas_info();
  CHECK_THAT(read_file(dir + "/report.md"), Catch::Contains("Matrix products: " + info.library + "; kernel " +
                                                            info.kernel + " (" + info.kernel_isa));
  CHECK(read_file(dir + "/report.md").find("## 4.") != std::string::npos);
  remove_scratch({clean});
  for (int attempt = 0; attempt < 5; ++attempt)
    remove_scratch({(process_scratch() / ("resume-" + std::to_string(attempt))).string()});
}

TEST_CASE("Under mpirun the lab spreads its runs over the ranks: the CSVs of one process, one report",
          "[lab][mpi]") {
  if (!mpirun_on_path()) return;  // nothing to start the ranks with
  const std::string dir = scratch("mpi2");
  if (!tapegrad::dist::built_with_mpi()) {
    // Every rank would run the whole lab into the same files: refused, with the reason.
    CHECK(run_lab_mpi(2, "--tiny --only 1 --out '" + dir + "'", dir + ".log") == 2);
    CHECK_THAT(read_file(dir + ".log"), Catch::Contains("tapegrad was built without MPI"));
    CHECK_FALSE(fs::exists(dir + "/e1_batch_dependence.csv"));
    remove_scratch({dir});
    return;
  }
  const std::string& reference = qualitative_run();  // one process, 2 threads
  REQUIRE(run_lab_mpi(2, "--tiny --threads 1 --out '" + dir + "'", dir + ".log") == 0);
  const auto names = csv_names(reference);
  REQUIRE(names == csv_names(dir));
  for (const auto& n : names) check_same_results(reference + "/" + n, dir + "/" + n);
  CHECK(job_leftovers(dir).empty());
  const std::string log = read_file(dir + ".log");
  // One report, written once (rank 0), saying how it was made.
  std::size_t reports = 0;
  for (std::size_t at = log.find("report written to"); at != std::string::npos;
       at = log.find("report written to", at + 1))
    ++reports;
  CHECK(reports == 1);
  CHECK_THAT(read_file(dir + "/report.md"), Catch::Contains("2 MPI ranks of 1 worker thread(s)"));
  const auto manifest = nlohmann::json::parse(read_file(dir + "/manifest.json"));
  CHECK(manifest.at("flags").at("ranks").get<int>() == 2);
  std::size_t total = 0;
  for (const auto& n : names) total += (n == "e2_heatmap.csv") ? 0 : read_csv(dir + "/" + n).rows.size();
  CHECK(manifest.at("runs_executed").get<std::size_t>() == total);  // summed over the ranks
  remove_scratch({dir});
}

TEST_CASE("A lab rank that fails ends the whole job with a message naming the rank", "[lab][mpi]") {
  if (!section9_can_run()) return;
  const std::string dir = scratch("mpi-throw");
  const int rc =
      run_lab_mpi(2, "--tiny --only 4 --threads 1 --test-fault 1:throw:1 --out '" + dir + "'", dir + ".log");
  CHECK(rc != 0);
  CHECK(rc != 124);  // not ended by the timeout: no hang
  const std::string log = read_file(dir + ".log");
  INFO(log);
  CHECK_THAT(log, Catch::Contains("tapegrad::dist: rank 1 of 2: tapegrad-lab stopped: a fault asked for by "
                                  "--test-fault, before the run"));
  CHECK_FALSE(fs::exists(dir + "/report.md"));
  remove_scratch({dir});
}

TEST_CASE("A lab job whose rank was killed ends; the next job resumes and ends with the CSV of one process",
          "[lab][mpi]") {
  if (!section9_can_run()) return;
  const std::string& reference = qualitative_run();
  const std::string dir = scratch("mpi-kill"), csv_name = "/e4_mlp_stability.csv";
  const int rc =
      run_lab_mpi(2, "--tiny --only 4 --threads 1 --test-fault 1:kill:2 --out '" + dir + "'", dir + ".log");
  CHECK(rc != 0);
  CHECK(rc != 124);
  {
    INFO(read_file(dir + ".log"));
    // Rank 1 wrote its first two rows before it died; they are kept for the next job.
    REQUIRE(fs::exists(dir + csv_name + ".part1"));
    CHECK(complete_rows(dir + csv_name + ".part1") == 2);
  }
  REQUIRE(run_lab_mpi(2, "--tiny --only 4 --threads 1 --out '" + dir + "'", dir + ".resumed.log") == 0);
  check_same_results(reference + csv_name, dir + csv_name);
  CHECK(job_leftovers(dir).empty());
  const auto manifest = nlohmann::json::parse(read_file(dir + "/manifest.json"));
  CHECK(manifest.at("runs_executed").get<int>() <= 36 - 2);
  fs::remove(dir + ".resumed.log");
  remove_scratch({dir});
}

TEST_CASE("The lab rejects bad flags with a nonzero exit and a message naming the flag", "[lab]") {
  const std::string dir = scratch("flags");
  const std::string out = " --out '" + dir + "/out'";
  struct Case {
    std::string args, expect;
  };
  for (const Case& c :
       {Case{"--threads 0", "--threads"}, Case{"--only 10", "--only"}, Case{"--only 4,x", "'x'"},
        Case{"--no-such-flag", "--no-such-flag"}, Case{"--tiny --quick", "--quick"}}) {
    INFO(c.args);
    const std::string log = dir + "/log.txt";
    CHECK(run_lab(c.args + out, log) != 0);
    CHECK(read_file(log).find(c.expect) != std::string::npos);
  }
  CHECK_FALSE(fs::exists(dir + "/out/report.md"));
  remove_scratch({dir});
}

// --- the README's lab figures and docs/lab-results.json ---------------------------------------

// Every number in a JSON document (arrays and objects, recursively; booleans and strings are not).
void json_numbers(const nlohmann::json& j, std::vector<double>& out) {
  if (j.is_number()) out.push_back(j.get<double>());
  if (j.is_structured()) {
    for (const auto& v : j) json_numbers(v, out);
  }
}

// Does the README's number `q` (as written, thousands separators removed) state `v`? An integer
// (no '.', no exponent) must equal v exactly; a decimal must equal v rounded to q's significant
// digits ("0.21" states 0.2137, "4.2e-7" states 4.17e-07; "0" only 0).
bool states(const std::string& q, double v) {
  const double x = std::strtod(q.c_str(), nullptr);
  if (q.find_first_of(".eE") == std::string::npos) return v == x;
  std::size_t sig = 0;
  bool leading = true;
  for (char ch : q.substr(0, q.find_first_of("eE"))) {
    if (!std::isdigit(static_cast<unsigned char>(ch))) continue;
    if (ch != '0') leading = false;
    if (!leading) ++sig;
  }
  if (sig == 0) return v == 0;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*e", static_cast<int>(sig) - 1, v);
  return std::abs(std::strtod(buf, nullptr) - x) <= 1e-12 * std::abs(x);
}

TEST_CASE(
    "Every figure the README's lab findings quote is in docs/lab-results.json or docs/lab-manifest.json",
    "[lab]") {
  const fs::path root(TAPEGRAD_SOURCE_DIR);
  std::vector<double> values;
  for (const char* name : {"docs/lab-results.json", "docs/lab-manifest.json"})
    json_numbers(nlohmann::json::parse(read_file((root / name).string())), values);
  REQUIRE(values.size() > 100);
  // The findings: from "What one run of the full lab" to the next "## " heading, pictures left out.
  const std::string readme = read_file((root / "README.md").string());
  const std::size_t at = readme.find("What one run of the full lab");
  REQUIRE(at != std::string::npos);
  std::string findings;
  std::istringstream lines(readme.substr(at, readme.find("\n## ", at) - at));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("![", 0) == 0) continue;
    // The bold section labels ("**4.**") are not figures.
    for (std::size_t b = line.find("**"); b != std::string::npos; b = line.find("**", b + 1)) {
      const std::size_t e = line.find(".**", b + 2);
      if (e != std::string::npos && e > b + 2 && e - b <= 4 &&
          std::all_of(line.begin() + static_cast<long>(b) + 2, line.begin() + static_cast<long>(e),
                      [](char ch) { return std::isdigit(static_cast<unsigned char>(ch)); }))
        line.replace(b, e + 3 - b, "");
    }
    findings += line + "\n";
  }
  // Thousands separators: "3,000" is 3000.
  for (std::size_t i = 1; i + 3 < findings.size(); ++i) {
    if (findings[i] == ',' && std::isdigit(static_cast<unsigned char>(findings[i - 1])) &&
        std::isdigit(static_cast<unsigned char>(findings[i + 1])) &&
        std::isdigit(static_cast<unsigned char>(findings[i + 2])) &&
        std::isdigit(static_cast<unsigned char>(findings[i + 3])))
      findings.erase(i, 1);
  }
  std::size_t checked = 0;
  for (const auto& number : numbers_at(findings)) {
    const std::string& q = number.second;
    const std::size_t end = number.first + q.size();
    const bool percent = end < findings.size() && findings[end] == '%';
    const bool found =
        std::any_of(values.begin(), values.end(), [&](double v) { return states(q, percent ? 100 * v : v); });
    INFO("the README's lab findings quote " << q << (percent ? "%" : "")
                                            << ", which is in neither JSON file");
    CHECK(found);
    ++checked;
  }
  CHECK(checked >= 40);
}
