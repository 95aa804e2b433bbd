#pragma once
// Curves of a training run: a MetricsLog CSV drawn by gnuplot into a PNG or SVG.
//
//   tg::MetricsLog log("run.csv");
//   ... log.write({{"epoch", e}, {"train_loss", loss}, {"test_accuracy", acc}}) every epoch ...
//   tg::plot_metrics("run.csv", "run.png");  // loss on the left axis, accuracy on the right
//
// By default the x axis is the "epoch" column (the row number 1, 2, ... if there is none) and
// every other numeric column is a curve, except "seconds" (wall time is not a metric). Columns
// whose name contains "acc" (accuracy) are drawn against the right-hand axis, so a loss of 2.3
// and an accuracy of 0.9 both stay readable. The output's format follows its extension: .png
// (cairo, anti-aliased) or .svg.
//
// gnuplot runs as a separate process (posix_spawnp, no shell): the script goes to a temporary
// file and the CSV and output paths reach it as arguments (`gnuplot -c script csv out`, read as
// ARG1 and ARG2), made absolute first, so no path is ever parsed as gnuplot or shell syntax
// (gnuplot treats a file name starting with '<' or '|' as a command). Install gnuplot with
// scripts/deps (Debian package gnuplot-nox). metrics_plot_script returns the script, which runs
// by hand the same way: `gnuplot -c metrics.gp run.csv run.png`.
#include <optional>
#include <string>
#include <vector>

namespace tapegrad {

struct PlotOptions {
  // The curves; empty: every numeric column except x and "seconds".
  std::vector<std::string> columns;
  // The x column; if the CSV has no column of this name (and it is the default), the row number.
  std::string x = "epoch";
  // Columns drawn against the right-hand axis; nullopt: those whose name contains "acc".
  std::optional<std::vector<std::string>> right_axis;
  std::string title;  // "" = the CSV's file name
  std::string ylabel, y2label;
  bool log_y = false;             // logarithmic left axis (losses spanning decades)
  int width = 900, height = 540;  // pixels (PNG) or points (SVG); each in [100, 10000]
};

enum class PlotFormat { Png, Svg };

// The format an output path asks for: ".png" or ".svg" (any case); ValueError otherwise.
PlotFormat plot_format_of(const std::string& out_path);

// The gnuplot script plot_metrics runs for this CSV: reads the CSV to choose the columns, and
// throws what plot_metrics throws for the CSV and the options. The script reads the CSV from
// ARG1 and writes ARG2.
std::string metrics_plot_script(const std::string& csv_path, PlotFormat format,
                                const PlotOptions& options = {});

// Draws the CSV's curves into out_path (created or replaced).
//   IoError:    the CSV cannot be read, is not a CSV with a header and at least one row of the
//               header's width, or has no numeric column to draw; out_path cannot be written
//               (its folder is missing, it is a directory); gnuplot failed (its message is included).
//   ValueError: out_path's extension is not .png or .svg; an option names a column that is not
//               in the CSV or is not numeric; a size out of range; a title with a line break.
//   StateError: gnuplot is not installed (the message says how to install it).
// Nothing is written to out_path unless gnuplot runs.
void plot_metrics(const std::string& csv_path, const std::string& out_path, const PlotOptions& options = {});

}  // namespace tapegrad
