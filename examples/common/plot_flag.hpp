#pragma once
// The chapters' --plot flag: the per-epoch metrics CSV (--log FILE, or <program>_metrics.csv in
// the current folder when --log is not given) drawn by tapegrad::plot_metrics into a PNG next
// to it (run.csv -> run.png). Needs gnuplot (scripts/deps installs gnuplot-nox).
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>
#include <tapegrad/tapegrad.hpp>

namespace examples {

struct PlotFlag {
  bool enabled = false;

  void add_to(CLI::App& app) {
    app.add_flag("--plot", enabled,
                 "draw the per-epoch metrics (the --log CSV, or <program>_metrics.csv) into a PNG next to "
                 "the CSV (needs gnuplot)");
  }

  // The CSV the run logs to: log_path, or <program>_metrics.csv when --plot asks for one.
  std::string csv_path(const std::string& log_path, const std::string& program) const {
    if (!log_path.empty() || !enabled) return log_path;
    return program + "_metrics.csv";
  }

  // run.csv -> run.png (run.png.png if the CSV itself ends in .png).
  static std::string png_path(const std::string& csv) {
    std::filesystem::path p(csv);
    if (p.extension() == ".png") return csv + ".png";
    return p.replace_extension(".png").string();
  }

  // Draws the CSV if --plot was given; tapegrad errors (no gnuplot, ...) propagate.
  void draw(const std::string& csv, const tapegrad::PlotOptions& options) const {
    if (!enabled) return;
    const std::string png = png_path(csv);
    tapegrad::plot_metrics(csv, png, options);
    std::printf("plot of the metrics written to %s\n", png.c_str());
  }
};

}  // namespace examples
