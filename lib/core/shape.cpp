#include "tapegrad/core/shape.hpp"

#include <algorithm>
#include <sstream>

#include "tapegrad/core/error.hpp"
#include "strided.hpp"

namespace tapegrad {

std::string shape_str(const Shape& s) {
  std::ostringstream os;
  os << '(';
  for (std::size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  os << ')';
  return os.str();
}

std::string axes_str(const Axes& a) {
  std::ostringstream os;
  os << '[';
  for (std::size_t i = 0; i < a.size(); ++i) os << (i ? ", " : "") << a[i];
  os << ']';
  return os.str();
}

namespace {

std::string too_large(std::size_t n) {
  return std::to_string(n) + " (" + std::to_string(static_cast<std::int64_t>(n)) +
         " as a signed 64-bit integer), larger than the largest size " + std::to_string(kMaxSize);
}

}  // namespace

std::size_t checked_size(const char* what, std::size_t n) {
  if (n > kMaxSize) {
    throw ValueError(std::string(what) + " is " + too_large(n) + "; sizes must be >= 0");
  }
  return n;
}

std::size_t checked_mul(const char* what, std::size_t a, std::size_t b) {
  checked_size(what, a);
  checked_size(what, b);
  std::size_t r = 0;
  if (__builtin_mul_overflow(a, b, &r) || r > kMaxSize) {
    throw ValueError(std::string(what) + ": " + std::to_string(a) + " * " + std::to_string(b) +
                     " overflows: the result would be larger than the largest size " +
                     std::to_string(kMaxSize));
  }
  return r;
}

std::size_t checked_add(const char* what, std::size_t a, std::size_t b) {
  checked_size(what, a);
  checked_size(what, b);
  if (a > kMaxSize - b) {
    throw ValueError(std::string(what) + ": " + std::to_string(a) + " + " + std::to_string(b) +
                     " overflows: the result would be larger than the largest size " +
                     std::to_string(kMaxSize));
  }
  return a + b;
}

std::size_t checked_numel(const char* op, const Shape& s, std::size_t from, std::size_t to) {
  std::size_t nonzero = 1;
  bool empty = false;
  for (std::size_t d = from; d < to; ++d) {
    if (s[d] == 0) {
      empty = true;
    } else if (s[d] > kMaxSize || __builtin_mul_overflow(nonzero, s[d], &nonzero) || nonzero > kMaxSize) {
      throw ShapeError(std::string(op) + ": shape " + shape_str(s) + " is too large: " +
                       (s[d] > kMaxSize ? "dim " + std::to_string(d) + " is " + too_large(s[d])
                                        : "its number of elements overflows the largest size " +
                                              std::to_string(kMaxSize)));
    }
  }
  return empty ? 0 : nonzero;
}

std::size_t checked_numel(const char* op, const Shape& s) { return checked_numel(op, s, 0, s.size()); }

std::size_t numel(const Shape& s) { return checked_numel("numel", s); }

Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b) {
  const std::size_t nd = std::max(a.size(), b.size());
  if (nd > detail::kMaxDims) {
    throw ShapeError(std::string(op) + ": at most " + std::to_string(detail::kMaxDims) +
                     " dims are supported; got shapes " + shape_str(a) + " and " + shape_str(b));
  }
  Shape out(nd);
  for (std::size_t i = 0; i < nd; ++i) {
    const std::size_t da = i < nd - a.size() ? 1 : a[i - (nd - a.size())];
    const std::size_t db = i < nd - b.size() ? 1 : b[i - (nd - b.size())];
    if (da != db && da != 1 && db != 1) {
      throw ShapeError(std::string(op) + ": shapes " + shape_str(a) + " and " + shape_str(b) +
                       " cannot be broadcast together (dim " + std::to_string(i) + ": " + std::to_string(da) +
                       " vs " + std::to_string(db) + ")");
    }
    out[i] = da == 1 ? db : da;
  }
  checked_numel(op, out);
  return out;
}

std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim) {
  const auto nd = static_cast<std::ptrdiff_t>(ndim);
  if (axis < -nd || axis >= nd) {
    throw ValueError(std::string(op) + ": axis " + std::to_string(axis) +
                     " is out of range for a tensor with " + std::to_string(ndim) + " dims (expected -" +
                     std::to_string(ndim) + " <= axis < " + std::to_string(ndim) + ")");
  }
  return static_cast<std::size_t>(axis < 0 ? axis + nd : axis);
}

std::vector<std::size_t> normalize_axes(const char* op, const Axes& axes, std::size_t ndim) {
  std::vector<std::size_t> out;
  if (axes.empty()) {
    for (std::size_t i = 0; i < ndim; ++i) out.push_back(i);
    return out;
  }
  for (auto a : axes) out.push_back(normalize_axis(op, a, ndim));
  std::sort(out.begin(), out.end());
  if (std::adjacent_find(out.begin(), out.end()) != out.end()) {
    throw ValueError(std::string(op) + ": axis list " + axes_str(axes) + " repeats an axis");
  }
  return out;
}

}  // namespace tapegrad
