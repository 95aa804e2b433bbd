#include "tapegrad/core/shape.hpp"

#include <algorithm>
#include <sstream>

#include "tapegrad/core/error.hpp"
#include "tapegrad/core/strided.hpp"

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

std::size_t numel(const Shape& s) {
  std::size_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

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
                       " cannot be broadcast together (dim " + std::to_string(i) + ": " +
                       std::to_string(da) + " vs " + std::to_string(db) + ")");
    }
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim) {
  const auto nd = static_cast<std::ptrdiff_t>(ndim);
  if (axis < -nd || axis >= nd) {
    throw ValueError(std::string(op) + ": axis " + std::to_string(axis) +
                     " is out of range for a tensor with " + std::to_string(ndim) +
                     " dims (expected -" + std::to_string(ndim) + " <= axis < " +
                     std::to_string(ndim) + ")");
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
