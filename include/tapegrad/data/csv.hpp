#pragma once
// A loader for numeric CSV files: every column is a feature except an optional integer label
// column, chosen by its header name.
//
// The format read: lines separated by '\n' (a trailing '\r' is dropped, so CRLF files work);
// cells separated by `delimiter`, surrounding spaces/tabs trimmed; no quoting (a header name may
// be wrapped in double quotes, which are removed). Blank lines are skipped. Feature cells are
// finite decimal numbers ("1", "-2.5e-3"; not "nan", "inf" or ""), parsed independently of the
// C locale. Label cells are non-negative integers ("3", or "3.0" as pandas writes them).
//
// Every problem is an IoError naming the source, the 1-based line and column, the column's
// name and the offending text, e.g.
//   load_csv: iris.csv line 7, column 3 ("petal_len"): cannot parse "abc" as a number
// An empty file, a file with no data rows, rows with a different number of cells than the
// first row, an unknown label column and a file whose only column is the label are errors.
#include <istream>
#include <string>

#include "tapegrad/data/dataset.hpp"

namespace tapegrad {

struct CsvOptions {
  bool header = true;        // the first non-blank line names the columns
  std::string label_column;  // a header name; empty = no labels (an unlabelled dataset)
  char delimiter = ',';
};

// Reads the file at `path`: inputs (rows, feature columns), plus labels if label_column is set.
// IoError if the file cannot be opened or is malformed; ValueError if a label_column is asked
// for without a header, or the delimiter is a space, a quote, '\r' or '\n'.
template <class T>
Dataset<T> load_csv(const std::string& path, const CsvOptions& options = {});
// The same from a stream; `source` names it in error messages.
template <class T>
Dataset<T> load_csv(std::istream& in, const CsvOptions& options = {}, const std::string& source = "<stream>");
// The same from the text itself (what a fuzzer calls).
template <class T>
Dataset<T> parse_csv(const std::string& text, const CsvOptions& options = {},
                     const std::string& source = "<string>");

}  // namespace tapegrad
