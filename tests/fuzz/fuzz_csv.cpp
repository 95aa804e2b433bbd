// libFuzzer target: parse_csv<float> on arbitrary text.
//
// The first byte picks the options (so one corpus explores all of them), the rest is the file:
//   bit 0: header on/off; bit 1: label column "label" (only with a header);
//   bits 2-3: delimiter ',' ';' '\t' '|'.
// A finding is a sanitizer report, any exception other than tapegrad::Error, a hang, or a
// broken property of an accepted file: inputs are (rows >= 1, features >= 1) and finite; with
// a label column there is one non-negative label per row; without one there are none.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tapegrad/core/error.hpp"
#include "tapegrad/data/csv.hpp"

namespace tg = tapegrad;

namespace {
[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_csv: property broken: %s\n", what);
  std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  tg::CsvOptions opt;
  opt.header = (data[0] & 1) != 0;
  if (opt.header && (data[0] & 2) != 0) opt.label_column = "label";
  static const char kDelims[] = {',', ';', '\t', '|'};
  opt.delimiter = kDelims[(data[0] >> 2) & 3];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);

  tg::Dataset<float> ds;
  try {
    ds = tg::parse_csv<float>(text, opt, "fuzz");
  } catch (const tg::Error&) {
    return 0;
  }
  const auto& x = ds.inputs();
  if (x.dimension() != 2) fail("inputs are not 2-d");
  if (x.shape()[0] == 0 || x.shape()[1] == 0) fail("an accepted file has no rows or no features");
  for (std::size_t i = 0; i < x.size(); ++i) {
    if (!std::isfinite(x.data()[i])) fail("a feature is not finite");
  }
  if (opt.label_column.empty()) {
    if (ds.has_labels()) fail("labels without a label column");
  } else {
    if (!ds.has_labels()) fail("no labels with a label column");
    if (ds.labels().size() != x.shape()[0]) fail("label count differs from row count");
    for (auto l : ds.labels()) {
      if (l < 0) fail("negative label");
    }
  }
  return 0;
}
