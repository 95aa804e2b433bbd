#pragma once
// Shapes and the small helpers every op uses to check and describe them.
#include <cstddef>
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
std::size_t numel(const Shape& s);

// NumPy broadcasting of two shapes; throws ShapeError naming `op` and both shapes.
Shape broadcast_shapes(const char* op, const Shape& a, const Shape& b);

// Turns a possibly negative axis into 0..ndim-1; throws ValueError naming `op` otherwise.
std::size_t normalize_axis(const char* op, std::ptrdiff_t axis, std::size_t ndim);
// Normalizes, sorts and de-duplicates a list of axes (empty list = all axes).
std::vector<std::size_t> normalize_axes(const char* op, const Axes& axes, std::size_t ndim);

}  // namespace tapegrad
