#pragma once
// The text of the lab's CSV files: a header line, then one line per run, cells separated by
// commas (no quoting: no key, parameter or number the lab writes contains a comma). Header-only
// so that tests/test_lab.cpp reads the files with the same code as the lab.
#include <sstream>
#include <string>
#include <vector>

namespace lab {

// "a,,b," -> {"a", "", "b", ""}.
inline std::vector<std::string> split_csv_line(const std::string& line) {
  std::vector<std::string> cells;
  std::string cell;
  std::istringstream in(line);
  while (std::getline(in, cell, ',')) cells.push_back(cell);
  if (!line.empty() && line.back() == ',') cells.emplace_back();
  return cells;
}

// Every line of `text` that ends with its newline, split into cells; a last line without one
// was cut short by a kill and is left out.
inline std::vector<std::vector<std::string>> complete_csv_lines(const std::string& text) {
  std::vector<std::vector<std::string>> lines;
  std::size_t begin = 0;
  for (std::size_t end = text.find('\n'); end != std::string::npos;
       begin = end + 1, end = text.find('\n', begin)) {
    lines.push_back(split_csv_line(text.substr(begin, end - begin)));
  }
  return lines;
}

}  // namespace lab
