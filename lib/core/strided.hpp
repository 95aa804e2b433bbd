#pragma once
// Internal to lib/: iteration over a row-major output shape with operands that broadcast into it.
// Each operand is described by element strides aligned to the output's dims, 0 on a dim it is
// broadcast along. The innermost dim is a plain loop, so same-shape and row-broadcast cases
// run at memory speed.
#include <array>
#include <cstddef>
#include <vector>

#include "tapegrad/core/shape.hpp"

namespace tapegrad::detail {

constexpr std::size_t kMaxDims = 16;

// Strides of a row-major array of shape `s`, right-aligned to `ndim` output dims; 0 on dims
// where `s` has size 1 or no dim at all.
inline std::array<std::ptrdiff_t, kMaxDims> broadcast_strides(const Shape& s, std::size_t ndim) {
  std::array<std::ptrdiff_t, kMaxDims> st{};
  std::ptrdiff_t stride = 1;
  const std::size_t offset = ndim - s.size();
  for (std::size_t d = s.size(); d-- > 0;) {
    st[d + offset] = s[d] == 1 ? 0 : stride;
    stride *= static_cast<std::ptrdiff_t>(s[d]);
  }
  return st;
}

// Calls f(out_index, offset_a, offset_b) for every element of `out_shape`, in row-major order.
template <class F>
void for_each_broadcast2(const Shape& out_shape, const std::array<std::ptrdiff_t, kMaxDims>& sa,
                         const std::array<std::ptrdiff_t, kMaxDims>& sb, F&& f) {
  const std::size_t nd = out_shape.size();
  if (nd == 0) {
    f(std::size_t(0), std::ptrdiff_t(0), std::ptrdiff_t(0));
    return;
  }
  const std::size_t inner = out_shape[nd - 1];
  const std::ptrdiff_t ia = sa[nd - 1], ib = sb[nd - 1];
  std::size_t outer = 1;
  for (std::size_t d = 0; d + 1 < nd; ++d) outer *= out_shape[d];
  std::array<std::size_t, kMaxDims> counter{};
  std::ptrdiff_t oa = 0, ob = 0;
  std::size_t o = 0;
  for (std::size_t r = 0; r < outer; ++r) {
    for (std::size_t j = 0; j < inner; ++j) {
      f(o + j, oa + static_cast<std::ptrdiff_t>(j) * ia, ob + static_cast<std::ptrdiff_t>(j) * ib);
    }
    o += inner;
    // advance the counter over the outer dims
    for (std::size_t d = nd - 1; d-- > 0;) {
      oa += sa[d];
      ob += sb[d];
      if (++counter[d] < out_shape[d]) break;
      oa -= sa[d] * static_cast<std::ptrdiff_t>(out_shape[d]);
      ob -= sb[d] * static_cast<std::ptrdiff_t>(out_shape[d]);
      counter[d] = 0;
    }
  }
}

}  // namespace tapegrad::detail
