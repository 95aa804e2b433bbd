#pragma once
// The lab's report: report.md assembled section by section, and plots rendered by gnuplot
// from generated data + script files (kept next to the PNG/SVG, so every plot can be
// re-rendered or inspected by hand).
#include <string>
#include <vector>

namespace lab {

class Report {
 public:
  explicit Report(std::string dir) : dir_(std::move(dir)) {}
  const std::string& dir() const { return dir_; }
  void heading(int level, const std::string& text);
  void paragraph(const std::string& text);
  void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
  void image(const std::string& file, const std::string& alt);
  void raw(const std::string& markdown) { md_ += markdown; }
  // Writes report.md (on rank 0 of an mpirun job; nothing on the other ranks).
  void write() const;

 private:
  std::string dir_;
  std::string md_;
};

struct Series {
  std::string title;
  std::vector<double> x, y;
  std::vector<double> lo, hi;  // optional band (same length as x)
  bool dashed = false;         // for a line drawn over another that it may hide
};

struct LinePlot {
  std::string stem;  // file name without extension
  std::string title, xlabel, ylabel;
  bool logx = false, logy = false;
  bool integer_x = false;                 // ticks at whole numbers only (epochs)
  std::string key = "outside right top";  // gnuplot's `set key` position
  std::vector<Series> series;
};

struct Heatmap {
  std::string title, xlabel, ylabel, cblabel;
  std::vector<std::string> xticks, yticks;
  std::vector<std::vector<double>> z;  // z[row = y index][col = x index]; NaN = blank
  double zmin = 0, zmax = 1;
  bool show_values = true;
  bool log_color = false;
};

// Renders <dir>/<stem>.png and .svg; returns false (and writes nothing but the script) when
// gnuplot is not installed. On ranks other than 0 of an mpirun job: nothing, false.
bool plot_lines(const std::string& dir, const LinePlot& p);
// Several heatmaps side by side in one picture.
bool plot_heatmaps(const std::string& dir, const std::string& stem, const std::vector<Heatmap>& panels);

// "1.2e-07", "0.953", "12.4": compact numbers for tables.
std::string short_num(double v, int digits = 3);

// One number as printf's %.*f ("0.03"), %+.*f ("+1.5") and %.*g ("2.5") write it: for the
// report's sentences, and (general) the CSV's values.
std::string fixed(double v, int decimals);
std::string signed_fixed(double v, int decimals);
std::string general(double v, int digits);

}  // namespace lab
