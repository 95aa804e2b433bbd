#include "tapegrad/data/csv.hpp"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>
#include <vector>

#include "../io/file.hpp"
#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {

std::string trim(const std::string& s) {
  const char* ws = " \t";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& line, char delim) {
  std::vector<std::string> cells;
  std::size_t start = 0;
  for (;;) {
    const auto pos = line.find(delim, start);
    cells.push_back(trim(line.substr(start, pos == std::string::npos ? std::string::npos : pos - start)));
    if (pos == std::string::npos) return cells;
    start = pos + 1;
  }
}

std::string unquote(const std::string& s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// A decimal number; std::from_chars does not depend on the C locale (strtod does).
std::optional<double> parse_number(const std::string& cell) {
  const char* b = cell.data();
  const char* e = b + cell.size();
  if (b != e && *b == '+') {  // from_chars accepts a leading '-' but not '+'
    ++b;
    if (b != e && *b == '-') return std::nullopt;  // "+-1"
  }
  double v = 0;
  const auto r = std::from_chars(b, e, v, std::chars_format::general);
  if (r.ec != std::errc() || r.ptr != e) return std::nullopt;
  return v;
}

// Reads lines and numbers them (1-based, counting blank lines too).
class Lines {
 public:
  explicit Lines(std::istream& in) : in_(in) {}
  // The next non-blank line, without its '\r'; false at the end.
  bool next(std::string& line) {
    while (std::getline(in_, line)) {
      ++number_;
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!trim(line).empty()) return true;
    }
    return false;
  }
  std::size_t number() const { return number_; }

 private:
  std::istream& in_;
  std::size_t number_ = 0;
};

struct Parser {
  const CsvOptions& opt;
  const std::string& source;
  std::vector<std::string> names;  // empty without a header

  std::string where(std::size_t line, std::size_t col) const {
    std::string s =
        "load_csv: " + source + " line " + std::to_string(line) + ", column " + std::to_string(col + 1);
    if (col < names.size()) s += " (\"" + names[col] + "\")";
    return s;
  }
};

void check_options(const CsvOptions& opt) {
  const char d = opt.delimiter;
  if (d == ' ' || d == '"' || d == '\r' || d == '\n' || d == '\0') {
    throw ValueError("load_csv: delimiter " + std::to_string(static_cast<int>(d)) +
                     " cannot be used (not a space, quote, NUL or line break)");
  }
  if (!opt.header && !opt.label_column.empty()) {
    throw ValueError("load_csv: label_column \"" + opt.label_column +
                     "\" names a header column, but header = false");
  }
}

// The header column named opt.label_column, or -1 without one: an IoError names a label
// column that is missing (listing the header's columns) or appears twice.
std::ptrdiff_t find_label_column(const Parser& p, std::size_t header_line) {
  const std::string& label = p.opt.label_column;
  std::ptrdiff_t label_col = -1;
  if (label.empty()) return label_col;
  for (std::size_t c = 0; c < p.names.size(); ++c) {
    if (p.names[c] != label) continue;
    if (label_col >= 0) {
      throw IoError("load_csv: " + p.source + ": label column \"" + label +
                    "\" appears twice in the header (columns " + std::to_string(label_col + 1) + " and " +
                    std::to_string(c + 1) + ")");
    }
    label_col = static_cast<std::ptrdiff_t>(c);
  }
  if (label_col < 0) {
    std::string all;
    for (std::size_t c = 0; c < p.names.size(); ++c) all += (c ? ", " : "") + ("\"" + p.names[c] + "\"");
    throw IoError("load_csv: " + p.source + ": label column \"" + label + "\" is not in the header on line " +
                  std::to_string(header_line) + " (columns: " + all + ")");
  }
  return label_col;
}

// The cells of data line `ln`: the label (an integer in [0, 2^53]) appended to labels, every
// other cell (a number finite in T) to features.
template <class T>
void parse_row(const Parser& p, const std::vector<std::string>& cells, std::size_t ln,
               std::ptrdiff_t label_col, std::vector<double>& features, std::vector<std::int64_t>& labels) {
  for (std::size_t c = 0; c < cells.size(); ++c) {
    const auto v = parse_number(cells[c]);
    if (static_cast<std::ptrdiff_t>(c) == label_col) {
      if (!v || !(*v >= 0.0) || *v > 9007199254740992.0 || std::floor(*v) != *v) {
        throw IoError(p.where(ln, c) + ": label \"" + cells[c] + "\" is not a non-negative integer");
      }
      labels.push_back(static_cast<std::int64_t>(*v));
      continue;
    }
    if (!v) throw IoError(p.where(ln, c) + ": cannot parse \"" + cells[c] + "\" as a number");
    if (!std::isfinite(*v) || std::abs(*v) > static_cast<double>(std::numeric_limits<T>::max())) {
      throw IoError(p.where(ln, c) + ": \"" + cells[c] + "\" is not a finite " +
                    (sizeof(T) == 4 ? "float" : "double"));
    }
    features.push_back(*v);
  }
}

template <class T>
Dataset<T> parse_csv_stream(std::istream& in, const CsvOptions& opt, const std::string& source) {
  check_options(opt);
  Parser p{opt, source, {}};
  Lines lines(in);
  std::string line;
  if (!lines.next(line)) {
    throw IoError("load_csv: " + source + " is empty (no " + std::string(opt.header ? "header" : "data") +
                  " line)");
  }
  std::size_t ncols = 0;
  std::size_t first_line = lines.number();
  bool have_row = false;
  if (opt.header) {
    for (const auto& c : split(line, opt.delimiter)) p.names.push_back(unquote(c));
    ncols = p.names.size();
  } else {
    ncols = split(line, opt.delimiter).size();
    have_row = true;
  }

  const std::ptrdiff_t label_col = find_label_column(p, first_line);
  const std::size_t nfeat = ncols - (label_col >= 0 ? 1 : 0);
  if (nfeat == 0) {
    throw IoError("load_csv: " + source + " has no feature columns (only the label column \"" +
                  opt.label_column + "\")");
  }

  std::vector<double> features;
  std::vector<std::int64_t> labels;
  std::size_t rows = 0;
  while (have_row || lines.next(line)) {
    have_row = false;
    const std::size_t ln = lines.number();
    const auto cells = split(line, opt.delimiter);
    if (cells.size() != ncols) {
      throw IoError("load_csv: " + source + " line " + std::to_string(ln) + " has " +
                    std::to_string(cells.size()) + " cells but line " + std::to_string(first_line) +
                    (opt.header ? " (the header)" : "") + " has " + std::to_string(ncols));
    }
    parse_row<T>(p, cells, ln, label_col, features, labels);
    ++rows;
  }
  if (in.bad()) throw IoError("load_csv: reading " + source + " failed");
  if (rows == 0) {
    throw IoError("load_csv: " + source + " has a header on line " + std::to_string(first_line) +
                  " but no data rows");
  }
  xt::xarray<T> x = xt::xarray<T>::from_shape({rows, nfeat});
  for (std::size_t i = 0; i < features.size(); ++i) x.data()[i] = static_cast<T>(features[i]);
  if (label_col >= 0) return Dataset<T>(std::move(x), std::move(labels));
  return Dataset<T>(std::move(x));
}

}  // namespace

template <class T>
Dataset<T> load_csv(std::istream& in, const CsvOptions& options, const std::string& source) {
  return parse_csv_stream<T>(in, options, source);
}

template <class T>
Dataset<T> parse_csv(const std::string& text, const CsvOptions& options, const std::string& source) {
  std::istringstream in(text);
  return parse_csv_stream<T>(in, options, source);
}

template <class T>
Dataset<T> load_csv(const std::string& path, const CsvOptions& options) {
  detail::InputFile file(path, "load_csv");
  return parse_csv_stream<T>(file.stream(), options, path);
}

#define TAPEGRAD_INSTANTIATE(T)                                                          \
  template Dataset<T> load_csv<T>(const std::string&, const CsvOptions&);                \
  template Dataset<T> load_csv<T>(std::istream&, const CsvOptions&, const std::string&); \
  template Dataset<T> parse_csv<T>(const std::string&, const CsvOptions&, const std::string&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
