#pragma once
// How a backward writes an input's gradient buffer that it fills whole: the buffer and BLAS's
// beta for it. BackwardCtx::input_grad_write (core/tape.hpp) hands one out; a kernel over raw
// buffers takes (data, beta) and passes beta on to gemm or writes each element with beta_add.
// No dependencies, so that kernels apart from the tape can include it.

namespace tapegrad {

// An input gradient buffer that a backward writes whole (BackwardCtx::input_grad_write), with
// the one number that says how: `beta` as in BLAS's C = A B + beta C. beta = 0 when this
// backward pass touches the buffer first, or it is a Parameter's first write after zero_grad():
// its contents are garbage, overwrite them and never read them (as BLAS does not read C). beta
// = 1 when it already holds other consumers' gradients or a Parameter's accumulated grad: add.
// A kernel takes (data, beta) and hands beta on to gemm or writes through beta_add.
template <class T>
struct GradWrite {
  T* data;
  T beta;
};

// v + beta dst for beta 0 or 1, without reading dst when beta = 0: the value adding v into a
// zero-filled buffer gives (0 + v, so a -0 becomes +0 as it would there).
template <class T>
[[gnu::always_inline]] inline T beta_add(T beta, const T& dst, T v) {
  return (beta == T(0) ? T(0) : dst) + v;
}

}  // namespace tapegrad
