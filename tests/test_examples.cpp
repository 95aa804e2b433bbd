// The example chapters, run as a user runs them: each must exit 0 and print what it claims.
// Flags keep every run to a few seconds even in the Debug + sanitizer build.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "support.hpp"

namespace tg = tapegrad;
namespace fs = std::filesystem;
using Catch::Contains;
using tgtest::have_gnuplot;

namespace {

struct Result {
  int status = -1;
  std::string output;  // stdout and stderr
};

// env: variable assignments for the program, e.g. "PATH=/nonexistent".
Result run(const std::string& program, const std::string& args, const std::string& env = "") {
  const std::string cmd = env + " '" + program + "' " + args + " 2>&1";
  Result r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  REQUIRE(pipe != nullptr);
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int raw = ::pclose(pipe);
  r.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  return r;
}

fs::path scratch_dir() {
  const fs::path dir = fs::temp_directory_path() / ("tapegrad_test_examples_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir;
}

// The number after the first occurrence of `label` in `text`, e.g. "final test accuracy: 97.25%".
// Whether `path` holds a PNG image of more than a few kilobytes.
bool is_png(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[8] = {};
  in.read(magic, 8);
  return in.gcount() == 8 && std::string(magic, 8) == std::string("\x89PNG\r\n\x1a\n", 8) &&
         fs::file_size(path) > 5000;
}

double number_after(const std::string& text, const std::string& label) {
  const auto pos = text.find(label);
  REQUIRE(pos != std::string::npos);
  return std::stod(text.substr(pos + label.size()));
}

}  // namespace

TEST_CASE("01_scalar_autograd prints the tape and gradients that match the hand-derived ones") {
  const fs::path dot = scratch_dir() / "tape.dot";
  const auto r = run(TAPEGRAD_EXAMPLE_01, "--dot '" + dot.string() + "'");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("    6  mul                ()               4,5            yes"));
  // x = 0.5, y = -1.5: df/dx = tanh(y) (y + e^x), df/dy = tanh(y) x + (xy + e^x)(1 - tanh(y)^2)
  CHECK(number_after(r.output, "df/dx") == Approx(std::tanh(-1.5) * (-1.5 + std::exp(0.5))).epsilon(1e-12));
  const double t = std::tanh(-1.5);
  CHECK(number_after(r.output, "df/dy") ==
        Approx(t * 0.5 + (-0.75 + std::exp(0.5)) * (1 - t * t)).epsilon(1e-12));
  CHECK_THAT(r.output, Contains("agree with the hand-derived ones"));
  std::ifstream in(dot);
  std::string first;
  std::getline(in, first);
  CHECK(first == "digraph tape {");
  fs::remove_all(dot.parent_path());

  const auto bad = run(TAPEGRAD_EXAMPLE_01, "--x abc");
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Contains("--x"));
  const auto help = run(TAPEGRAD_EXAMPLE_01, "--help");
  CHECK(help.status == 0);
  CHECK_THAT(help.output, Contains("--dot"));
}

TEST_CASE("02_layernorm_by_hand prints the row statistics and all three computations agree") {
  const auto r = run(TAPEGRAD_EXAMPLE_02, "");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("mu  = (0.5800, -0.0800)"));
  CHECK_THAT(r.output, Contains("var = (2.3576, 3.7016)"));
  CHECK_THAT(r.output, Contains("[ -0.05210,  -1.15927,   1.77147,   0.14328,  -0.70338]"));
  CHECK_THAT(r.output, Contains("all three agree to 1e-12"));
  CHECK(number_after(r.output, "max |LayerNorm - closed form| = ") < 1e-12);
}

TEST_CASE("03_train_mlp learns two spirals, writes its metrics CSV, and rejects bad flags") {
  const fs::path csv = scratch_dir() / "metrics.csv";
  const auto r =
      run(TAPEGRAD_EXAMPLE_03, "--points 500 --epochs 40 --target 0.95 --log '" + csv.string() + "'");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(number_after(r.output, "final test accuracy: ") >= 95.0);
  std::ifstream in(csv);
  std::string header;
  std::getline(in, header);
  CHECK(header == "epoch,train_loss,test_accuracy,seconds");
  std::size_t rows = 0;
  for (std::string line; std::getline(in, line);) ++rows;
  CHECK(rows == 40);
  fs::remove_all(csv.parent_path());

  const auto bad = run(TAPEGRAD_EXAMPLE_03, "--norm group");
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Contains("group not in {none,layer,batch}"));
  const auto missing = run(TAPEGRAD_EXAMPLE_03, "--dataset mnist --mnist-dir /nonexistent/mnist");
  CHECK(missing.status == 2);
  CHECK_THAT(missing.output, Contains("/nonexistent/mnist/0.json"));
}

TEST_CASE("03_train_mlp --plot draws the metrics CSV into a PNG next to it, or says how to get gnuplot") {
  const fs::path dir = scratch_dir();
  const std::string flags = "--points 100 --epochs 3 --plot --log '" + (dir / "run.csv").string() + "'";
  // Without gnuplot: the run ends with exit status 2 and the way to install it.
  const auto none = run(TAPEGRAD_EXAMPLE_03, flags, "PATH=/nonexistent");
  INFO(none.output);
  CHECK(none.status == 2);
  CHECK_THAT(none.output, Contains("gnuplot is not installed"));
  CHECK_THAT(none.output, Contains("scripts/deps"));
  CHECK_THAT(none.output, Contains("metrics written to"));
  if (!have_gnuplot()) {
    WARN("gnuplot is not on PATH: --plot not tested. Install it with scripts/deps.");
    fs::remove_all(dir);
    return;
  }
  const auto r = run(TAPEGRAD_EXAMPLE_03, flags);
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("plot of the metrics written to " + (dir / "run.png").string()));
  CHECK(is_png(dir / "run.png"));
  fs::remove_all(dir);
}

TEST_CASE("03_train_mlp reaches 85% on MNIST after one epoch") {
  const std::string dir = tg::default_mnist_dir();
  if (!fs::exists(fs::path(dir) / "0.json")) {
    WARN("MNIST data not found in " << dir << "; run scripts/fetch-mnist. Skipping.");
    return;
  }
  const auto r = run(TAPEGRAD_EXAMPLE_03, "--dataset mnist --epochs 1");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("8000 training and 2000 test examples, 784 features, 10 classes"));
  CHECK(number_after(r.output, "final test accuracy: ") >= 85.0);
}

TEST_CASE("04_train_rnn beats the repeat-the-last-value baseline on sine prediction") {
  const auto r =
      run(TAPEGRAD_EXAMPLE_04, "--task sine --seq-len 10 --hidden 16 --train-size 2000 --epochs 5");
  INFO(r.output);
  CHECK(r.status == 0);
  const double baseline = number_after(r.output, "repeat the last value MSE ");
  const double mse = number_after(r.output, "final test MSE ");
  CHECK(baseline > 0.05);
  CHECK(mse < baseline / 5);

  CHECK_THAT(r.output, Contains("x lower"));

  // One step of Adam at lr 100 throws the head's weights far off: the model ends worse than
  // always answering the mean, and says so.
  const auto worse =
      run(TAPEGRAD_EXAMPLE_04, "--train-size 50 --test-size 50 --hidden 4 --epochs 1 --lr 100 --clip 0");
  INFO(worse.output);
  CHECK(worse.status == 0);
  CHECK(number_after(worse.output, "final test MSE ") > number_after(worse.output, "predict the mean MSE "));
  CHECK_THAT(worse.output, Contains("higher: worse than the baseline"));
  CHECK(worse.output.find("lower") == std::string::npos);

  const auto bad = run(TAPEGRAD_EXAMPLE_04, "--cell lstm");
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Contains("lstm not in {rnn,lnrnn,bnrnn}"));
}

TEST_CASE("05_gradcheck passes the correct gradients and shows the failing check of a wrong backward") {
  const auto r = run(TAPEGRAD_EXAMPLE_05, "");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("gradcheck_module: passed"));
  CHECK_THAT(r.output, Contains("gradcheck: FAILED, 9 Jacobian entries compared"));
  CHECK_THAT(r.output, Contains("analytic 3 vs numeric 6"));
  CHECK_THAT(r.output, Contains("NOT O(h^2)"));
  CHECK_THAT(r.output, Contains("as expected"));
}

TEST_CASE("06_save_and_resume ends bitwise identical to the uninterrupted run") {
  const fs::path ck = scratch_dir() / "ck.safetensors";
  const auto r = run(TAPEGRAD_EXAMPLE_06,
                     "--steps 80 --checkpoint-step 45 --norm batch --checkpoint '" + ck.string() + "'");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("bitwise identical: 0 of"));
  CHECK_THAT(r.output, Contains("losses of steps 46..80: 0 of 35 differ"));
  CHECK_THAT(r.output, Contains("1.running_mean"));  // BatchNorm's buffers are compared too
  CHECK(fs::exists(ck));

  const auto bad = run(TAPEGRAD_EXAMPLE_06, "--steps 10 --checkpoint-step 10");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Contains("must be less than --steps"));
  fs::remove_all(ck.parent_path());
}

namespace {

// The corpus 07_char_lm reads by default, or "" (the test then skips) when it is not there.
std::string char_lm_corpus() {
  try {
    const std::string path = tg::default_corpus_path();
    return fs::exists(path) ? path : std::string();
  } catch (const tg::Error&) {
    return std::string();
  }
}

// The output from the line of epoch 2 on, without each epoch line's wall time ("  1.2 s").
std::string from_epoch_2(const std::string& out) {
  std::istringstream in(out.substr(out.find("epoch  2/2")));
  std::string text;
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("epoch", 0) == 0) line = line.substr(0, line.rfind("  "));
    text += line + "\n";
  }
  return text;
}

}  // namespace

TEST_CASE("07_char_lm: a quick run of every cell ends well below the unigram baseline") {
  if (char_lm_corpus().empty()) {
    WARN("text corpus not found: test skipped. Run scripts/fetch-text to enable it.");
    return;
  }
  for (const std::string cell : {"lstm", "gru", "lnlstm", "rnn"}) {
    const auto r = run(TAPEGRAD_EXAMPLE_07, "--quick --cell " + cell);
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK_THAT(r.output, Contains("30000 bytes, vocabulary of 80 characters"));
    const double unigram = number_after(r.output, "unigram baseline: ");
    const double first = number_after(r.output, "epoch  1/2  train loss ");
    const double bpc = number_after(r.output, "final validation bpc ");
    CHECK(unigram > 4.5);  // the smoothed unigram model of the 27000 training bytes
    CHECK(first > 0);
    // Below the unigram model by half a bit: the network must use the context (an untrained
    // one scores ~log2(80) = 6.3 bpc, a perfect unigram model ~4.9). Measured: 3.6-3.9.
    CHECK(bpc < unigram - 0.5);
    CHECK_THAT(r.output, Contains("vs previous epoch"));
    CHECK_THAT(r.output, Contains("sample (temperature 0.7, seed 0):\nThe "));
  }
}

TEST_CASE("07_char_lm resumes from the saved epoch and ends where the uninterrupted run ends") {
  if (char_lm_corpus().empty()) {
    WARN("text corpus not found: test skipped. Run scripts/fetch-text to enable it.");
    return;
  }
  const fs::path ck = scratch_dir() / "lm.safetensors";
  const std::string quick = "--quick --cell rnn --sample-len 40";
  const auto full = run(TAPEGRAD_EXAMPLE_07, quick + " --epochs 2");
  const auto first = run(TAPEGRAD_EXAMPLE_07, quick + " --epochs 1 --save '" + ck.string() + "'");
  const auto second = run(TAPEGRAD_EXAMPLE_07, quick + " --epochs 2 --resume '" + ck.string() + "'");
  INFO(full.output << "\n---\n" << first.output << "\n---\n" << second.output);
  REQUIRE(full.status == 0);
  REQUIRE(first.status == 0);
  REQUIRE(second.status == 0);
  CHECK_THAT(second.output, Contains("after epoch 1 (validation "));
  CHECK(second.output.find("epoch  1/2") == std::string::npos);
  // Model, Adam state and the epoch's window order restored: the same numbers and the same
  // sample (same seed) as without the interruption.
  REQUIRE(full.output.find("epoch  2/2") != std::string::npos);
  REQUIRE(second.output.find("epoch  2/2") != std::string::npos);
  CHECK(from_epoch_2(second.output) == from_epoch_2(full.output));

  const auto other_cell = run(TAPEGRAD_EXAMPLE_07, "--quick --cell gru --resume '" + ck.string() + "'");
  CHECK(other_cell.status == 2);
  CHECK_THAT(other_cell.output,
             Contains("holds a model built with --cell rnn --hidden 64 --embed 16; this run "
                      "builds --cell gru --hidden 64 --embed 16"));
  const auto other_text =
      run(TAPEGRAD_EXAMPLE_07, quick + " --max-bytes 20000 --resume '" + ck.string() + "'");
  CHECK(other_text.status == 2);
  CHECK_THAT(other_text.output, Contains("another vocabulary (80 characters; this corpus slice has 77)"));
  fs::remove_all(ck.parent_path());
}

TEST_CASE("07_char_lm rejects an unknown cell and says how to get a missing corpus") {
  const auto bad = run(TAPEGRAD_EXAMPLE_07, "--cell transformer");
  CHECK(bad.status != 0);
  CHECK_THAT(bad.output, Contains("transformer not in {lstm,gru,lnlstm,rnn}"));
  const auto missing = run(TAPEGRAD_EXAMPLE_07, "--corpus /nonexistent/text/fortunes.txt");
  CHECK(missing.status == 2);
  CHECK_THAT(missing.output, Contains("the text corpus is not at /nonexistent/text/fortunes.txt"));
  CHECK_THAT(missing.output, Contains("Run scripts/fetch-text"));
}

TEST_CASE("08_custom_op: a user-defined swish matches its formula, passes gradcheck, refuses nan, trains") {
  const auto r = run(TAPEGRAD_EXAMPLE_08, "--steps 150");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("gradcheck of swish(x, 1.5) * x, x (3, 4): passed, 144 entries"));
  CHECK_THAT(r.output, Contains("swish(x, nan) throws ValueError: swish: beta must be finite"));
  CHECK_THAT(r.output, Contains("tape size before 1, after 1"));
  CHECK_THAT(r.output, Contains("(1): Swish(beta=1.5)"));
  // The moons are not linearly separable: a linear model stays near 85%; the swish MLP gets past 95%.
  CHECK(number_after(r.output, "training accuracy") > 95);
  const auto bad = run(TAPEGRAD_EXAMPLE_08, "--steps 0");
  CHECK(bad.status != 0);
}

TEST_CASE("04_train_rnn and 07_char_lm --plot write <csv stem>.png next to the CSV") {
  if (!have_gnuplot()) {
    WARN("gnuplot is not on PATH: --plot not tested. Install it with scripts/deps.");
    return;
  }
  const fs::path dir = scratch_dir();
  const auto rnn =
      run(TAPEGRAD_EXAMPLE_04, "--train-size 100 --test-size 50 --hidden 8 --epochs 2 --plot --log '" +
                                   (dir / "rnn.csv").string() + "'");
  INFO(rnn.output);
  CHECK(rnn.status == 0);
  CHECK(is_png(dir / "rnn.png"));
  if (char_lm_corpus().empty()) {
    WARN("text corpus not found: 07_char_lm --plot not tested. Run scripts/fetch-text to enable it.");
  } else {
    const auto lm = run(TAPEGRAD_EXAMPLE_07, "--quick --cell rnn --epochs 1 --sample-len 10 --plot --log '" +
                                                 (dir / "lm.csv").string() + "'");
    INFO(lm.output);
    CHECK(lm.status == 0);
    std::ifstream in(dir / "lm.csv");
    std::string header;
    std::getline(in, header);
    CHECK(header == "epoch,train_loss_nats,valid_bpc,seconds");
    CHECK(is_png(dir / "lm.png"));
  }
  fs::remove_all(dir);
}
