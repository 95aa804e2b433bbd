#include "tapegrad/train/metrics_log.hpp"

#include <cerrno>
#include <charconv>
#include <cstring>
#include <set>

#include "../io/file.hpp"
#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {

std::string join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ",") + n;
  return s;
}

std::string format_value(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);  // shortest round-trip form
  return std::string(buf, r.ptr);
}

}  // namespace

std::string format_metrics_values(const MetricsRow& row) {
  std::string s;
  for (std::size_t i = 0; i < row.size(); ++i) {
    if (i > 0) s += ',';
    s += format_value(row[i].second);
  }
  return s;
}

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  // Checked before opening: a directory would fail with a vaguer message, and opening a FIFO
  // for writing waits for a reader.
  detail::check_output_path(path, "MetricsLog");
  out_.open(path, std::ios::out | std::ios::trunc);
  if (!out_) {
    throw IoError("MetricsLog: cannot open \"" + path + "\" for writing: " + std::strerror(errno));
  }
}

void MetricsLog::write(const MetricsRow& row) {
  const std::string who = "MetricsLog(\"" + path_ + "\"): ";
  if (row.empty()) throw ValueError(who + "a row needs at least one column");
  std::vector<std::string> names;
  std::set<std::string> seen;
  for (const auto& [name, value] : row) {
    if (name.empty() || name.find_first_of(",\"\r\n") != std::string::npos) {
      throw ValueError(who + "column name \"" + name +
                       "\" must be non-empty and hold no comma, quote or line break");
    }
    if (!seen.insert(name).second) throw ValueError(who + "column \"" + name + "\" appears twice in a row");
    names.push_back(name);
  }
  if (rows_ > 0 && names != columns_) {
    throw ValueError(who + "row " + std::to_string(rows_ + 1) + " has columns (" + join(names) +
                     ") but the header is (" + join(columns_) + ")");
  }
  std::string text;
  if (rows_ == 0) text = join(names) + "\n";
  text += format_metrics_values(row) + "\n";
  out_ << text << std::flush;
  if (!out_) throw IoError(who + "writing failed");
  if (rows_ == 0) columns_ = std::move(names);
  ++rows_;
}

}  // namespace tapegrad
