#pragma once
// Internal to lib/ops: the shared shape of elementwise unary ops, so each op is just its
// forward formula and its derivative.
#include "../core/parallel.hpp"
#include "tapegrad/core/tape.hpp"

namespace tapegrad::detail {

// Elements per block when an elementwise loop is split over threads (set_num_threads): 16K
// values, several microseconds of work. Each element is computed alone, so a split changes no bit.
constexpr std::size_t kElementwiseBlock = std::size_t(1) << 14;

// Records a unary op: out[i] = fwd(x[i]); save(r) keeps what backward needs beyond x and y
// (the op's parameters, as scalars named by the op's slot enum).
template <class T, class Fwd, class Save>
Var<T> unary(const char* name, const Var<T>& x, Fwd fwd, typename Node<T>::BackwardFn backward, Save save) {
  Tape<T>& t = Tape<T>::of(name, {x});
  auto r = t.record(name, {x});
  save(r);
  const xt::xarray<T>& xv = t.value(x);
  T* po = r.out(xv.shape()).data();
  const T* px = xv.data();
  parallel_for(xv.size(), kElementwiseBlock, 16, [&](std::size_t b, std::size_t e) {
    for (std::size_t i = b; i < e; ++i) po[i] = fwd(px[i]);
  });
  return r.finish(backward);
}
template <class T, class Fwd>
Var<T> unary(const char* name, const Var<T>& x, Fwd fwd, typename Node<T>::BackwardFn backward) {
  return unary<T>(name, x, fwd, backward, [](Recorder<T>&) {});
}

// Backward of a unary op: gx[i] += g[i] * dydx(x[i], y[i]) (assigned, =, when beta = 0: gx is
// touched first, no zero-fill pass, see GradWrite).
template <class T, class D>
void unary_backward(BackwardCtx<T>& c, D dydx) {
  if (!c.needs_grad(0)) return;
  const T* x = c.input(0).data();
  const T* y = c.output().data();
  const T* g = c.grad().data();
  const GradWrite<T> out = c.input_grad_write(0);
  T* gx = out.data;
  const std::size_t n = c.grad().size();
  const bool add = out.beta != T(0);
  parallel_for(n, kElementwiseBlock, 16, [&](std::size_t b, std::size_t e) {
    if (add) {
      for (std::size_t i = b; i < e; ++i) gx[i] += g[i] * dydx(x[i], y[i]);
    } else {
      for (std::size_t i = b; i < e; ++i) gx[i] = g[i] * dydx(x[i], y[i]);
    }
  });
}

}  // namespace tapegrad::detail
