// plot_metrics: a MetricsLog CSV drawn by gnuplot into a PNG or SVG, and its bad inputs.
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "expect_error.hpp"

namespace tg = tapegrad;
namespace fs = std::filesystem;
using Catch::Contains;
using tgtest::expect_error;
using tgtest::have_gnuplot;

namespace {

fs::path scratch(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("tapegrad_test_plot_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir / name;
}

fs::path write_file(const std::string& name, const std::string& text) {
  const fs::path p = scratch(name);
  std::ofstream(p) << text;
  return p;
}

// A training run's log, written by MetricsLog as the examples write it.
fs::path run_log() {
  const fs::path p = scratch("run.csv");
  tg::MetricsLog log(p.string());
  for (int e = 1; e <= 6; ++e) {
    log.write({{"epoch", e}, {"train_loss", 2.0 / e}, {"test_accuracy", 1 - 0.5 / e}, {"seconds", 0.1 * e}});
  }
  return p;
}

std::string head(const fs::path& p, std::size_t n) {
  std::ifstream in(p, std::ios::binary);
  std::string s(n, '\0');
  in.read(&s[0], static_cast<std::streamsize>(n));
  s.resize(static_cast<std::size_t>(in.gcount()));
  return s;
}

// Sets PATH for the lifetime of the object.
struct PathOverride {
  std::string saved;
  explicit PathOverride(const std::string& value) : saved(std::getenv("PATH") ? std::getenv("PATH") : "") {
    ::setenv("PATH", value.c_str(), 1);
  }
  ~PathOverride() { ::setenv("PATH", saved.c_str(), 1); }
};

}  // namespace

TEST_CASE("plot_metrics draws a MetricsLog CSV into a PNG and an SVG") {
  if (!have_gnuplot()) {
    WARN("gnuplot is not on PATH: rendering not tested. Install it with scripts/deps.");
    return;
  }
  const fs::path csv = run_log();
  const fs::path png = scratch("run.png"), svg = scratch("run.SVG");
  tg::plot_metrics(csv.string(), png.string());
  tg::plot_metrics(csv.string(), svg.string());
  CHECK(head(png, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK(fs::file_size(png) > 5000);  // two curves, axes and a key: measured ~30 KB
  CHECK_THAT(head(svg, 200), Contains("<svg"));
  std::ifstream in(svg);
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  CHECK(text.size() > 5000);
  CHECK_THAT(text, Contains("train_loss"));  // the key, not "train" with a subscript "loss"
  CHECK_THAT(text, Contains("test_accuracy"));
  CHECK(text.find("seconds") == std::string::npos);
  fs::remove_all(csv.parent_path());
}

TEST_CASE("plot_metrics takes paths gnuplot would run as commands as plain file names") {
  if (!have_gnuplot()) {
    WARN("gnuplot is not on PATH: rendering not tested. Install it with scripts/deps.");
    return;
  }
  const fs::path csv = run_log();
  const fs::path dir = csv.parent_path();
  const fs::path cwd = fs::current_path();
  fs::current_path(dir);
  // gnuplot reads "<cmd" as "run cmd" and "|cmd" as "pipe to cmd"; a quote ends a string.
  fs::copy_file("run.csv", "<touch injected.csv");
  CHECK_NOTHROW(tg::plot_metrics("<touch injected.csv", "|touch injected.png"));
  CHECK_NOTHROW(tg::plot_metrics("run.csv", "it's \"quoted\" $(touch injected).png"));
  fs::current_path(cwd);
  CHECK(fs::file_size(dir / "|touch injected.png") > 5000);
  CHECK(fs::file_size(dir / "it's \"quoted\" $(touch injected).png") > 5000);
  CHECK_FALSE(fs::exists(dir / "injected.csv"));
  CHECK_FALSE(fs::exists(dir / "injected.png"));
  CHECK_FALSE(fs::exists(dir / "injected"));
  fs::remove_all(dir);
}

TEST_CASE("the plot script draws each metric once, accuracy on the right axis, without seconds") {
  const fs::path csv = run_log();
  const std::string s = tg::metrics_plot_script(csv.string(), tg::PlotFormat::Png);
  INFO(s);
  CHECK_THAT(s, Contains("set terminal pngcairo size 900,540 noenhanced"));
  CHECK_THAT(s, Contains("set output ARG2"));
  CHECK_THAT(s, Contains("set xlabel 'epoch'"));
  CHECK_THAT(s, Contains("using 1:2 with linespoints"));
  CHECK_THAT(s, Contains("title 'train_loss'"));
  CHECK_THAT(s, Contains("using 1:3 axes x1y2"));
  CHECK_THAT(s, Contains("title 'test_accuracy (right axis)'"));
  CHECK(s.find("using 1:4") == std::string::npos);   // seconds
  CHECK(s.find(csv.string()) == std::string::npos);  // the CSV arrives as ARG1, never as text

  tg::PlotOptions o;
  o.columns = {"seconds"};
  o.right_axis = std::vector<std::string>{};
  o.title = "it's slow";
  o.log_y = true;
  o.width = 400;
  const std::string t = tg::metrics_plot_script(csv.string(), tg::PlotFormat::Svg, o);
  INFO(t);
  CHECK_THAT(t, Contains("set terminal svg size 400,540"));
  CHECK_THAT(t, Contains("set title 'it''s slow'"));
  CHECK_THAT(t, Contains("set logscale y"));
  CHECK_THAT(t, Contains("using 1:4 with"));
  CHECK(t.find("using 1:2") == std::string::npos);
  CHECK(t.find("x1y2") == std::string::npos);

  // No epoch column: the row number is the x axis; a text column is left out.
  const fs::path plain = write_file("plain.csv", "loss,note\n0.5,a\n0.25,b\n");
  const std::string u = tg::metrics_plot_script(plain.string(), tg::PlotFormat::Png);
  CHECK_THAT(u, Contains("using ($0+1):1 with"));
  CHECK_THAT(u, Contains("set xlabel 'row'"));
  CHECK(u.find(":2 ") == std::string::npos);
  fs::remove_all(csv.parent_path());
}

TEST_CASE(
    "plot_metrics of a missing, empty, header-only or ragged CSV or one without numbers is an IoError") {
  const std::string out = scratch("out.png").string();
  const std::string missing = scratch("missing.csv").string();
  expect_error<tg::IoError>([&] { tg::plot_metrics(missing, out); },
                            {"plot_metrics", missing, "cannot open"});
  const std::string empty = write_file("empty.csv", "").string();
  expect_error<tg::IoError>([&] { tg::plot_metrics(empty, out); }, {empty, "is empty"});
  const std::string header = write_file("header.csv", "epoch,loss\n").string();
  expect_error<tg::IoError>([&] { tg::plot_metrics(header, out); }, {header, "no rows"});
  const std::string ragged = write_file("ragged.csv", "epoch,loss\n1,0.5\n2\n").string();
  expect_error<tg::IoError>([&] { tg::plot_metrics(ragged, out); },
                            {ragged, "line 3 has 1 values but the header has 2 columns"});
  const std::string text = write_file("text.csv", "epoch,loss\n1,low\n2,lower\n").string();
  expect_error<tg::IoError>([&] { tg::plot_metrics(text, out); }, {text, "no numeric column"});
  const std::string dir = scratch("dir.csv").string();
  fs::create_directories(dir);
  expect_error<tg::IoError>([&] { tg::plot_metrics(dir, out); }, {dir, "is a directory"});
  // An output that cannot be written is refused before gnuplot runs.
  const std::string csv = run_log().string();
  const std::string nowhere = scratch("no/such/folder/out.png").string();
  expect_error<tg::IoError>([&] { tg::plot_metrics(csv, nowhere); }, {nowhere, "does not exist"});
  const std::string out_dir = scratch("out_dir.png").string();
  fs::create_directories(out_dir);
  expect_error<tg::IoError>([&] { tg::plot_metrics(csv, out_dir); }, {out_dir, "is a directory"});
  CHECK_FALSE(fs::exists(out));
  fs::remove_all(fs::path(out).parent_path());
}

TEST_CASE("plot_metrics with a bad extension, an unknown or text column or a bad size is a ValueError") {
  const std::string csv = run_log().string();
  const std::string out = scratch("out.png").string();
  expect_error<tg::ValueError>([&] { tg::plot_metrics(csv, scratch("out.pdf").string()); },
                               {"out.pdf", "must end in .png or .svg"});
  tg::PlotOptions o;
  o.columns = {"train_loss", "valid_loss"};
  expect_error<tg::ValueError>(
      [&] { tg::plot_metrics(csv, out, o); },
      {"PlotOptions::columns", "\"valid_loss\"", "epoch, train_loss, test_accuracy, seconds"});
  tg::PlotOptions x;
  x.x = "step";
  expect_error<tg::ValueError>([&] { tg::plot_metrics(csv, out, x); }, {"PlotOptions::x", "\"step\""});
  tg::PlotOptions r;
  r.right_axis = std::vector<std::string>{"acc"};
  expect_error<tg::ValueError>([&] { tg::plot_metrics(csv, out, r); },
                               {"PlotOptions::right_axis", "\"acc\""});
  const std::string text = write_file("text.csv", "epoch,loss,note\n1,0.5,a\n").string();
  tg::PlotOptions n;
  n.columns = {"note"};
  expect_error<tg::ValueError>([&] { tg::plot_metrics(text, out, n); }, {"\"note\"", "not numbers"});
  tg::PlotOptions w;
  w.height = 50;
  expect_error<tg::ValueError>([&] { tg::plot_metrics(csv, out, w); },
                               {"PlotOptions::height is 50", "[100, 10000]"});
  tg::PlotOptions t;
  t.title = "two\nlines";
  expect_error<tg::ValueError>([&] { tg::plot_metrics(csv, out, t); }, {"line break"});
  CHECK_FALSE(fs::exists(out));
  fs::remove_all(fs::path(out).parent_path());
}

TEST_CASE("plot_metrics without gnuplot on PATH is a StateError saying how to install it") {
  const std::string csv = run_log().string();
  const std::string out = scratch("out.png").string();
  const fs::path empty_dir = scratch("empty_bin");
  fs::create_directories(empty_dir);
  {
    PathOverride path(empty_dir.string());
    expect_error<tg::StateError>([&] { tg::plot_metrics(csv, out); },
                                 {"gnuplot is not installed", "scripts/deps", "gnuplot-nox", csv});
  }
  CHECK_FALSE(fs::exists(out));
  fs::remove_all(empty_dir.parent_path());
}
