#include "tapegrad/core/print.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace tapegrad {

namespace {

// torch's PRINT_OPTS defaults.
constexpr std::size_t kThreshold = 1000;
constexpr std::size_t kEdge = 3;
constexpr std::ptrdiff_t kLineWidth = 80;

std::string printf_double(const char* fmt, double x) {
  if (std::isnan(x)) return "nan";  // printf may write "-nan"; Python writes "nan"
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, x);
  return buf;
}

// torch._tensor_str._Formatter for a floating dtype, fed the (summarized) values.
struct Formatter {
  bool int_mode = true;
  bool sci_mode = false;
  std::size_t width = 1;

  explicit Formatter(const std::vector<double>& values) {
    std::vector<double> nz;
    for (double x : values) {
      if (std::isfinite(x) && x != 0) nz.push_back(x);
    }
    if (nz.empty()) return;
    double lo = std::abs(nz[0]), hi = lo;
    for (double x : nz) {
      lo = std::min(lo, std::abs(x));
      hi = std::max(hi, std::abs(x));
      if (x != std::ceil(x)) int_mode = false;
    }
    sci_mode = hi / lo > 1000. || hi > 1.e8 || (!int_mode && lo < 1.e-4);
    for (double x : nz) {
      const std::size_t len = sci_mode   ? printf_double("%.4e", x).size()
                              : int_mode ? printf_double("%.0f", x).size() + 1
                                         : printf_double("%.4f", x).size();
      width = std::max(width, len);
    }
  }

  std::string format(double x) const {
    std::string s;
    if (sci_mode) {
      s = printf_double("%.4e", x);
    } else if (int_mode) {
      s = printf_double("%.0f", x);
      if (std::isfinite(x)) s += '.';
    } else {
      s = printf_double("%.4f", x);
    }
    if (s.size() < width) s.insert(0, width - s.size(), ' ');
    return s;
  }
};

// Indices 0..n-1 of one dimension, or its kEdge first and last when summarized; -1 marks "...".
std::vector<std::ptrdiff_t> dim_indices(std::size_t n, bool summarize) {
  std::vector<std::ptrdiff_t> idx;
  const bool cut = summarize && n > 2 * kEdge;
  for (std::size_t i = 0; i < n; ++i) {
    if (cut && i == kEdge) {
      idx.push_back(-1);
      i = n - kEdge - 1;
      continue;
    }
    idx.push_back(static_cast<std::ptrdiff_t>(i));
  }
  return idx;
}

template <class T>
struct Printer {
  const xt::xarray<T>& a;
  bool summarize;
  std::vector<std::size_t> strides;  // row-major, in elements

  Printer(const xt::xarray<T>& arr, bool summarize_)
      : a(arr), summarize(summarize_), strides(arr.dimension()) {
    std::size_t s = 1;
    for (std::size_t d = a.dimension(); d-- > 0;) {
      strides[d] = s;
      s *= a.shape()[d];
    }
  }

  // The values shown (torch's get_summarized_data), for the Formatter.
  void shown(std::size_t d, std::size_t offset, std::vector<double>& out) const {
    if (d == a.dimension()) {
      out.push_back(static_cast<double>(a.data()[offset]));
      return;
    }
    for (std::ptrdiff_t i : dim_indices(a.shape()[d], summarize)) {
      if (i >= 0) shown(d + 1, offset + static_cast<std::size_t>(i) * strides[d], out);
    }
  }

  std::string vector_str(std::size_t offset, std::size_t indent, const Formatter& f) const {
    const auto element = static_cast<std::ptrdiff_t>(f.width + 2);
    const std::ptrdiff_t room = kLineWidth - static_cast<std::ptrdiff_t>(indent);
    const std::ptrdiff_t per_line = std::max<std::ptrdiff_t>(1, room >= 0 ? room / element : -1);
    std::string s = "[";
    std::ptrdiff_t on_line = 0;
    for (std::ptrdiff_t i : dim_indices(a.shape().back(), summarize)) {
      if (on_line == per_line) {
        s += ",\n" + std::string(indent + 1, ' ');
        on_line = 0;
      } else if (on_line > 0) {
        s += ", ";
      }
      s += i < 0 ? std::string(" ...")
                 : f.format(
                       static_cast<double>(a.data()[offset + static_cast<std::size_t>(i) * strides.back()]));
      ++on_line;
    }
    return s + "]";
  }

  std::string str(std::size_t d, std::size_t offset, std::size_t indent, const Formatter& f) const {
    if (d + 1 == a.dimension()) return vector_str(offset, indent, f);
    const std::string sep = "," + std::string(a.dimension() - d - 1, '\n') + std::string(indent + 1, ' ');
    std::string s = "[";
    bool first = true;
    for (std::ptrdiff_t i : dim_indices(a.shape()[d], summarize)) {
      if (!first) s += sep;
      first = false;
      s += i < 0 ? std::string("...")
                 : str(d + 1, offset + static_cast<std::size_t>(i) * strides[d], indent + 1, f);
    }
    return s + "]";
  }
};

std::string tuple_str(const Shape& shape) {
  std::string s = "(";
  for (std::size_t d = 0; d < shape.size(); ++d) s += (d ? ", " : "") + std::to_string(shape[d]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

// torch._tensor_str._add_suffixes (force_newline false), including its line-length arithmetic.
std::string add_suffixes(std::string s, const std::vector<std::string>& suffixes, std::size_t indent) {
  const std::size_t nl = s.rfind('\n');
  std::ptrdiff_t last = static_cast<std::ptrdiff_t>(s.size()) -
                        (nl == std::string::npos ? -1 : static_cast<std::ptrdiff_t>(nl)) + 1;
  for (const std::string& suffix : suffixes) {
    const auto len = static_cast<std::ptrdiff_t>(suffix.size());
    if (last + len + 2 > kLineWidth) {
      s += ",\n" + std::string(indent, ' ') + suffix;
      last = static_cast<std::ptrdiff_t>(indent) + len;
    } else {
      s += ", " + suffix;
      last += len + 2;
    }
  }
  return s + ")";
}

template <class T>
const char* dtype_name() {
  return std::is_same<T, float>::value ? "float32" : "float64";
}

}  // namespace

template <class T>
std::string format_values(const xt::xarray<T>& a, std::size_t indent) {
  if (a.size() == 0) return "[]";
  const Printer<T> p(a, a.size() > kThreshold);
  std::vector<double> shown;
  p.shown(0, 0, shown);
  const Formatter f(shown);
  if (a.dimension() == 0) return f.format(static_cast<double>(a.data()[0]));
  return p.str(0, 0, indent, f);
}

template <class T>
std::string format_tensor(const xt::xarray<T>& a, const std::string& prefix,
                          const std::vector<std::string>& extra_suffixes) {
  std::vector<std::string> suffixes = {"shape=" + tuple_str(a.shape()),
                                       std::string("dtype=") + dtype_name<T>()};
  suffixes.insert(suffixes.end(), extra_suffixes.begin(), extra_suffixes.end());
  return add_suffixes(prefix + format_values(a, prefix.size()), suffixes, prefix.size());
}

template <class T>
std::string to_string(const Var<T>& v) {
  if (!v.defined()) return "<empty Var>";
  const Tape<T>& t = v.tape();
  try {
    t.check(v, "print");
  } catch (const StateError&) {
    return "<stale Var (index " + std::to_string(v.index()) +
           "): recorded before tape.reset() or dropped by tape.truncate(); its value is gone>";
  }
  const Node<T>& n = t.node(v.index());
  std::vector<std::string> extra;
  if (n.requires_grad)
    extra.push_back(n.is_leaf() ? std::string("requires_grad=True") : "grad_fn=<" + std::string(n.op) + ">");
  return format_tensor(n.val(), "tensor(", extra);
}

template <class T>
std::string to_string(const Parameter<T>& p) {
  std::vector<std::string> extra;
  if (p.requires_grad) extra.push_back("requires_grad=True");
  return "Parameter containing:\n" + format_tensor(p.value, "tensor(", extra);
}

template std::string format_values<float>(const xt::xarray<float>&, std::size_t);
template std::string format_values<double>(const xt::xarray<double>&, std::size_t);
template std::string format_tensor<float>(const xt::xarray<float>&, const std::string&,
                                          const std::vector<std::string>&);
template std::string format_tensor<double>(const xt::xarray<double>&, const std::string&,
                                           const std::vector<std::string>&);
template std::string to_string<float>(const Var<float>&);
template std::string to_string<double>(const Var<double>&);
template std::string to_string<float>(const Parameter<float>&);
template std::string to_string<double>(const Parameter<double>&);

}  // namespace tapegrad
