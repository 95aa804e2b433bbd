#pragma once
// Internal to the shape ops (shape.cpp, shape_join.cpp): the helpers both use. The size of a
// range of axes, inserting an axis into a shape, and gather along one axis, which records
// slice / select / index_select (shape.cpp) and the pieces of split (shape_join.cpp).
// In an unnamed namespace, as when the ops were one file: each file keeps internal copies
// (hence [[maybe_unused]]: a file that does not call one would otherwise get a warning).
#include <algorithm>
#include <cstddef>

#include "tapegrad/core/tape.hpp"

namespace tapegrad {

namespace {

// The product of dims [from, to). The ops check their input shapes with checked_numel on
// entry, after which no partial product can overflow; the check here is a second line.
[[maybe_unused]] std::size_t dims_product(const Shape& s, std::size_t from, std::size_t to) {
  return checked_numel("shape op", s, from, to);
}

// s with a new axis of `size` at position a (svector::insert trips -Warray-bounds in GCC).
[[maybe_unused]] Shape insert_axis(const Shape& s, std::size_t a, std::size_t size) {
  Shape out;
  for (std::size_t d = 0; d <= s.size(); ++d) {
    if (d == a) out.push_back(size);
    if (d < s.size()) out.push_back(s[d]);
  }
  return out;
}

// ---- gather along one axis ----
// With x's shape split around `axis` as (outer, n, inner):
//   y[o, k, i] = x[o, idx[k], i],   dL/dx[o, idx[k], i] += dL/dy[o, k, i]
// (a repeated index receives the sum of its gradients). ints: GatherInt::axis, then the indices.
enum class GatherInt : std::size_t { axis, count };

template <class T>
void gather_backward(BackwardCtx<T>& c) {
  // An empty output has no gradient to scatter (and stored no indices); its outer dims may
  // still be huge, so return before looping over them.
  if (!c.needs_grad(0)) return;
  if (c.grad().size() == 0) {
    c.input_grad(0);  // the input's (zero) gradient exists, as for any other output
    return;
  }
  const Shape& in = c.input(0).shape();
  const IntSpan idx = c.template int_list<GatherInt>();
  const auto axis = static_cast<std::size_t>(c.int_at(GatherInt::axis));
  const std::size_t outer = dims_product(in, 0, axis), n = in[axis],
                    inner = dims_product(in, axis + 1, in.size());
  const std::size_t count = idx.size();
  const T* g = c.grad().data();
  T* gx = c.input_grad(0).data();
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t k = 0; k < count; ++k) {
      const T* src = g + (o * count + k) * inner;
      T* dst = gx + (o * n + static_cast<std::size_t>(idx[k])) * inner;
      for (std::size_t i = 0; i < inner; ++i) dst[i] += src[i];
    }
  }
}

// Records the gather of `count` entries index(0..count-1) along `axis`, output shaped
// `out_shape`. The caller has validated axis and indices.
template <class T, class Index>
Var<T> gather(const char* op, const Var<T>& x, std::size_t axis, std::size_t count, Index index,
              const Shape& out_shape) {
  Tape<T>& t = x.tape();
  auto r = t.record(op, {x});
  const xt::xarray<T>& xv = t.value(x);
  const Shape& in = xv.shape();
  const std::size_t outer = dims_product(in, 0, axis), n = in[axis],
                    inner = dims_product(in, axis + 1, in.size());
  r.set_int(GatherInt::axis, static_cast<std::ptrdiff_t>(axis));
  std::vector<std::ptrdiff_t>& idx = r.template int_list<GatherInt>();
  const std::size_t first = idx.size();  // the indices follow the named ints
  // Nothing to copy: `count` (an axis of an empty input) may be as large as kMaxSize, so do
  // not store its indices either.
  if (numel(out_shape) == 0) {
    r.out(out_shape);
    return r.finish(&gather_backward<T>);
  }
  for (std::size_t k = 0; k < count; ++k) idx.push_back(static_cast<std::ptrdiff_t>(index(k)));
  const T* px = xv.data();
  T* po = r.out(out_shape).data();
  for (std::size_t o = 0; o < outer; ++o) {
    for (std::size_t k = 0; k < count; ++k) {
      const T* src = px + (o * n + static_cast<std::size_t>(idx[first + k])) * inner;
      std::copy(src, src + inner, po + (o * count + k) * inner);
    }
  }
  return r.finish(&gather_backward<T>);
}

}  // namespace

}  // namespace tapegrad
