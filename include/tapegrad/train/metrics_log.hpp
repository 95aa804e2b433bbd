#pragma once
// A CSV file of training metrics, one row per call (typically per epoch):
//
//   tg::MetricsLog log("metrics.csv");
//   log.write({{"epoch", 1}, {"train_loss", 0.52}, {"test_accuracy", 0.91}});
//
// writes
//   epoch,train_loss,test_accuracy
//   1,0.52,0.91
//
// The first row's column names become the header; every later row must have the same columns in
// the same order. Values are written in the shortest form that reads back to the same double
// (std::to_chars: locale-independent, "nan"/"inf" for non-finite values). Each row is flushed
// at once, so an interrupted run keeps every finished epoch.
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace tapegrad {

using MetricsRow = std::vector<std::pair<std::string, double>>;

// The text of one CSV row of values (no newline), as MetricsLog writes it.
std::string format_metrics_values(const MetricsRow& row);

class MetricsLog {
 public:
  // Creates (or truncates) the file; IoError naming the path if it cannot be opened.
  explicit MetricsLog(const std::string& path);

  // Appends one row; the first call writes the header. ValueError, with nothing written, for an
  // empty row, a column name that is empty, repeated or holds ',', '"', '\r' or '\n', or columns
  // that differ from the header's (both lists are shown). IoError if the write fails.
  void write(const MetricsRow& row);

  const std::vector<std::string>& columns() const { return columns_; }
  std::size_t rows() const { return rows_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  std::ofstream out_;
  std::vector<std::string> columns_;
  std::size_t rows_ = 0;
};

}  // namespace tapegrad
