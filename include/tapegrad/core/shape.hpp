#pragma once
// Shapes and the small helpers every op uses to check and describe them.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

namespace tapegrad {

// The shape type of xt::xarray: a small vector that keeps up to 4 dims without heap allocation.
using Shape = xt::xarray<float>::shape_type;
using Axes = std::vector<std::ptrdiff_t>;

// "(2, 3)"; "()" for a 0-d scalar.
std::string shape_str(const Shape& s);
// "[0, 2]"
std::string axes_str(const Axes& a);

// ---- checked size arithmetic ----
// A product or sum of size_t values that does not fit wraps around silently: reshape to
// (4, 2^62 + 1) would pass as 4 elements, Linear(2^32, 2^32) would get a 0-element weight.
// Every size computed from sizes a caller gave goes through these helpers instead, which throw
// a tapegrad error naming the values rather than wrap.
//
// The largest size (a dim, a count, a number of elements) tapegrad accepts is PTRDIFF_MAX =
// 2^63 - 1, like PyTorch's int64 sizes (xtensor's strides are ptrdiff_t too). A larger size_t
// is what a negative int becomes when passed where a size is expected, so it is rejected as
// such: -1 arrives as 18446744073709551615.
constexpr std::size_t kMaxSize = static_cast<std::size_t>(PTRDIFF_MAX);

// n, or ValueError "<what> is 18446744073709551615 (-1 as a signed integer) ..." if n > kMaxSize.
std::size_t checked_size(const char* what, std::size_t n);
// a * b and a + b, or ValueError naming `what` and both operands when the result (or an
// operand) exceeds kMaxSize.
std::size_t checked_mul(const char* what, std::size_t a, std::size_t b);
std::size_t checked_add(const char* what, std::size_t a, std::size_t b);
// The number of elements of shape s, or ShapeError naming `op` and s when a dim or the product
// of the non-zero dims exceeds kMaxSize. Requiring the non-zero dims to fit even when another
// dim is 0 (PyTorch allows (0, 2^62, 2^62)) keeps every partial product of a valid shape, such
// as a stride or the rows before an axis, below kMaxSize.
std::size_t checked_numel(const char* op, const Shape& s);
// checked_numel over dims [from, to) of s.
std::size_t checked_numel(const char* op, const Shape& s, std::size_t from, std::size_t to);
// checked_numel("numel", s).
std::size_t numel(const Shape& s);

// NumPy broadcasting of two shapes; throws ShapeError naming `op` and both shapes.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// Turns a possibly negative axis into 0..ndim-1; throws ValueError naming `op` otherwise.
std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim);
// Normalizes, sorts and de-duplicates a list of axes (empty list = all axes).
std::vector<std::size_t> normalize_axes(const char* op, const Axes& axes, std::size_t ndim);

}  // namespace tapegrad
