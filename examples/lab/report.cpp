#include "report.hpp"

#include "sweep.hpp"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace lab {

void Report::heading(int level, const std::string& text) {
  md_ += std::string(static_cast<std::size_t>(level), '#') + " " + text + "\n\n";
}

void Report::paragraph(const std::string& text) { md_ += text + "\n\n"; }

void Report::table(const std::vector<std::string>& header,
                   const std::vector<std::vector<std::string>>& rows) {
  auto line = [&](const std::vector<std::string>& cells) {
    std::string s = "|";
    for (const auto& c : cells) s += " " + c + " |";
    md_ += s + "\n";
  };
  line(header);
  md_ += "|" + [&] {
    std::string s;
    for (std::size_t i = 0; i < header.size(); ++i) s += "---|";
    return s;
  }() + "\n";
  for (const auto& r : rows) line(r);
  md_ += "\n";
}

void Report::image(const std::string& file, const std::string& alt) {
  md_ += "![" + alt + "](" + file + ")\n\n";
}

void Report::write() const {
  if (!writes_report()) return;  // under mpirun: rank 0 writes
  std::ofstream out(dir_ + "/report.md");
  if (!out) throw std::runtime_error("cannot write " + dir_ + "/report.md");
  out << md_;
}

namespace {

std::string printf_num(const char* format, int precision, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, precision, v);
  return buf;
}

}  // namespace

std::string fixed(double v, int decimals) { return printf_num("%.*f", decimals, v); }
std::string signed_fixed(double v, int decimals) { return printf_num("%+.*f", decimals, v); }
std::string general(double v, int digits) { return printf_num("%.*g", digits, v); }

std::string short_num(double v, int digits) {
  if (std::isnan(v)) return "—";
  const double a = std::abs(v);
  if (v == 0) return "0";
  if (a < 1e-3 || a >= 1e5) return printf_num("%.*e", digits - 1, v);
  return general(v, digits);
}

namespace {

bool have_gnuplot() {
  static const bool ok = std::system("command -v gnuplot >/dev/null 2>&1") == 0;
  return ok;
}

std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

// Runs the script once per terminal: PNG for the report, SVG for print.
bool render(const std::string& dir, const std::string& stem, const std::string& body,
            const std::string& size_png, const std::string& size_svg) {
  const std::string gp = dir + "/" + stem + ".gp";
  {
    std::ofstream out(gp);
    out << "# Rendered by tapegrad-lab; edit and run `gnuplot " << stem << ".gp` in this folder.\n"
        << "if (!exists(\"term\")) term = \"png\"\n"
        << "if (term eq \"svg\") { set terminal svg size " << size_svg
        << " font \"Sans,12\" background \"white\"; set output \"" << stem << ".svg\" } "
        << "else { set terminal pngcairo size " << size_png
        << " font \"Sans,11\" background \"white\"; set output \"" << stem << ".png\" }\n"
        << body;
  }
  if (!have_gnuplot()) return false;
  const std::string cmd = "cd " + quote(dir) + " && gnuplot -e 'term=\"png\"' " + stem +
                          ".gp 2>>gnuplot.log && gnuplot -e 'term=\"svg\"' " + stem + ".gp 2>>gnuplot.log";
  return std::system(cmd.c_str()) == 0;
}

const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                         "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};

}  // namespace

bool plot_lines(const std::string& dir, const LinePlot& p) {
  if (!writes_report()) return false;  // under mpirun: rank 0 draws
  std::ostringstream body;
  body << "set title " << quote(p.title) << "\nset xlabel " << quote(p.xlabel) << "\nset ylabel "
       << quote(p.ylabel) << "\nset grid\nset key " << p.key << "\n";
  if (p.logx) body << "set logscale x 2\n";
  if (p.integer_x) body << "set xtics 1\nset mxtics 1\n";
  if (p.logy) body << "set logscale y\nset format y \"10^{%L}\"\n";
  std::string plots;
  for (std::size_t i = 0; i < p.series.size(); ++i) {
    const Series& s = p.series[i];
    const std::string dat = p.stem + "_" + std::to_string(i) + ".dat";
    std::ofstream out(dir + "/" + dat);
    out << "# x y" << (s.lo.empty() ? "" : " lo hi") << "  (" << s.title << ")\n";
    out.precision(10);
    for (std::size_t k = 0; k < s.x.size(); ++k) {
      out << s.x[k] << ' ' << s.y[k];
      if (!s.lo.empty()) out << ' ' << s.lo[k] << ' ' << s.hi[k];
      out << '\n';
    }
    const char* color = kColors[i % 8];
    if (!s.lo.empty()) {
      plots += std::string(plots.empty() ? "" : ", ") + quote(dat) +
               " using 1:3:4 with filledcurves lc rgb " + quote(color) + " fs transparent solid 0.18 notitle";
    }
    plots += std::string(plots.empty() ? "" : ", ") + quote(dat) +
             " using 1:2 with linespoints lw 2 pt 7 ps 0.6 lc rgb " + quote(color) +
             (s.dashed ? " dt 2" : "") + " title " + quote(s.title);
  }
  body << "plot " << plots << "\n";
  return render(dir, p.stem, body.str(), "900,540", "900,540");
}

bool plot_heatmaps(const std::string& dir, const std::string& stem, const std::vector<Heatmap>& panels) {
  if (!writes_report()) return false;  // under mpirun: rank 0 draws
  std::ostringstream body;
  const std::size_t n = panels.size();
  body << "set multiplot layout 1," << n
       << "\nunset key\nset palette defined (0 \"#f7fbff\", 0.5 \"#6baed6\", 1 \"#08306b\")\n";
  for (std::size_t i = 0; i < n; ++i) {
    const Heatmap& h = panels[i];
    const std::string dat = stem + "_" + std::to_string(i) + ".dat";
    std::ofstream out(dir + "/" + dat);
    out.precision(10);
    for (std::size_t r = 0; r < h.z.size(); ++r) {
      for (std::size_t c = 0; c < h.z[r].size(); ++c) {
        const double v = h.z[r][c];
        out << c << ' ' << r << ' ' << (std::isnan(v) ? std::string("NaN") : std::to_string(v)) << '\n';
      }
      out << '\n';
    }
    body << "set title " << quote(h.title) << "\nset xlabel " << quote(h.xlabel) << "\nset ylabel "
         << quote(h.ylabel) << "\nset cblabel " << quote(h.cblabel)
         << "\nset xrange [-0.5:" << (h.z.empty() ? 0 : h.z[0].size()) - 0.5
         << "]\nset yrange [-0.5:" << h.z.size() - 0.5 << "]\n";
    if (h.log_color)
      body << "set logscale cb\n";
    else
      body << "unset logscale cb\n";
    body << "set cbrange [" << h.zmin << ":" << h.zmax << "]\nset xtics (";
    for (std::size_t k = 0; k < h.xticks.size(); ++k)
      body << (k ? ", " : "") << quote(h.xticks[k]) << " " << k;
    body << ") rotate by -45\nset ytics (";
    for (std::size_t k = 0; k < h.yticks.size(); ++k)
      body << (k ? ", " : "") << quote(h.yticks[k]) << " " << k;
    body << ")\n";
    body << "plot " << quote(dat) << " using 1:2:3 with image";
    if (h.show_values) {
      // white text on the dark upper half of the colour range, dark grey on the light half
      const double mid = h.log_color ? std::sqrt(h.zmin * h.zmax) : (h.zmin + h.zmax) / 2;
      body << ", " << quote(dat) << " using 1:2:(sprintf(\"%.2g\", $3)):($3 > " << mid
           << " ? 0xffffff : 0x333333) with labels font \",8\" textcolor rgb variable";
    }
    body << "\n";
  }
  body << "unset multiplot\n";
  const std::string w = std::to_string(420 * n + 80);
  return render(dir, stem, body.str(), w + ",440", w + ",440");
}

}  // namespace lab
