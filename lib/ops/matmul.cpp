#include "tapegrad/ops/matmul.hpp"

#include "../core/packed_gemm.hpp"
#include "../core/parallel.hpp"

#include <algorithm>
#include <string>

#include "tapegrad/core/batch_invariant.hpp"
#include "tapegrad/core/blas.hpp"

namespace tapegrad {

namespace {

// matmul's sizes (see MatmulDims) and linear's (X as rows x in, W as out x in).
enum class MatmulInt : std::size_t { ba, bb, bo, m, k, n, count };
enum class LinearInt : std::size_t { rows, in, out, count };

// A matmul seen as a batch of (M, K) @ (K, N) products. A 1-D a is one row (M = 1), a 1-D b
// one column (N = 1): the data layout is the same, so only the sizes change. An operand
// without a batch dim has batch size 1 and is shared by every product.
struct MatmulDims {
  std::size_t ba = 1, bb = 1, bo = 1;  // batch sizes of a, b and the output
  std::size_t m = 1, k = 1, n = 1;
};

// Validates the shapes (before anything is recorded) and returns the output shape.
Shape matmul_shape(const Shape& sa, const Shape& sb, MatmulDims& d) {
  const auto both = [&] { return shape_str(sa) + " @ " + shape_str(sb); };
  if (sa.empty() || sb.empty()) {
    throw ShapeError("matmul: both arguments need at least 1 dimension; got " + both());
  }
  if (sa.size() > 3 || sb.size() > 3) {
    throw ShapeError("matmul: inputs of rank > 3 are not supported; got " + both() +
                     ". Reshape the leading dims into one batch dim");
  }
  const std::size_t na = sa.size(), nb = sb.size();
  d.m = na == 1 ? 1 : sa[na - 2];
  d.k = sa[na - 1];
  const std::size_t kb = nb == 1 ? sb[0] : sb[nb - 2];
  d.n = nb == 1 ? 1 : sb[nb - 1];
  if (d.k != kb) {
    throw ShapeError("matmul: inner dimensions differ: " + both() + " (" + std::to_string(d.k) + " vs " +
                     std::to_string(kb) + ")");
  }
  d.ba = na == 3 ? sa[0] : 1;
  d.bb = nb == 3 ? sb[0] : 1;
  if (d.ba != d.bb && d.ba != 1 && d.bb != 1) {
    throw ShapeError("matmul: batch dimensions differ: " + both() + " (" + std::to_string(d.ba) + " vs " +
                     std::to_string(d.bb) + "; only a batch of 1 broadcasts)");
  }
  d.bo = d.ba == 1 ? d.bb : d.ba;
  Shape out;
  if (na == 3 || nb == 3) out.push_back(d.bo);
  if (na >= 2) out.push_back(d.m);
  if (nb >= 2) out.push_back(d.n);
  return out;
}

// C (M, N) = A (M, K) @ B (K, N), overwriting C.
template <class T>
void product(std::size_t M, std::size_t N, std::size_t K, const T* A, const T* B, T* C) {
  if (batch_invariant()) {
    detail::own_gemm(false, false, M, N, K, T(1), A, K, B, N, T(0), C, N);
  } else {
    gemm<T>(false, false, M, N, K, T(1), A, K, B, N, T(0), C, N);
  }
}

}  // namespace

// matmul: C = A B, per batch:  c[i][j] = sum_k a[i][k] b[k][j]
//   dL/dA = dL/dC B^T      dL/dB = A^T dL/dC
// An operand shared by all batches (batch size 1) receives the sum over the batches. When
// b is shared, the whole batch is one GEMM over B*M rows, forward and backward:
//   dL/dB = A_flat^T dC_flat, with A_flat (B*M, K) and dC_flat (B*M, N).
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b) {
  Tape<T>& t = Tape<T>::of("matmul", {a, b});
  MatmulDims d;
  const Shape out_shape = matmul_shape(t.shape(a), t.shape(b), d);
  auto r = t.record("matmul", {a, b});
  r.set_int(MatmulInt::ba, std::ptrdiff_t(d.ba));
  r.set_int(MatmulInt::bb, std::ptrdiff_t(d.bb));
  r.set_int(MatmulInt::bo, std::ptrdiff_t(d.bo));
  r.set_int(MatmulInt::m, std::ptrdiff_t(d.m));
  r.set_int(MatmulInt::k, std::ptrdiff_t(d.k));
  r.set_int(MatmulInt::n, std::ptrdiff_t(d.n));
  const T* A = t.value(a).data();
  const T* B = t.value(b).data();
  T* C = r.out(out_shape).data();
  if (d.bb == 1) {
    product(d.ba * d.m, d.n, d.k, A, B, C);
  } else {
    for (std::size_t i = 0; i < d.bo; ++i) {
      product(d.m, d.n, d.k, A + (d.ba == 1 ? 0 : i) * d.m * d.k, B + i * d.k * d.n, C + i * d.m * d.n);
    }
  }
  return r.finish([](BackwardCtx<T>& c) {
    const std::size_t ba = c.int_at(MatmulInt::ba), bb = c.int_at(MatmulInt::bb),
                      bo = c.int_at(MatmulInt::bo), m = c.int_at(MatmulInt::m), k = c.int_at(MatmulInt::k),
                      n = c.int_at(MatmulInt::n);
    const T* Av = c.input(0).data();
    const T* Bv = c.input(1).data();
    const T* G = c.grad().data();
    if (c.needs_grad(0)) {  // dA += G B^T
      T* gA = c.input_grad(0).data();
      if (bb == 1) {
        gemm<T>(false, true, ba * m, k, n, T(1), G, n, Bv, n, T(1), gA, k);
      } else {
        for (std::size_t i = 0; i < bo; ++i) {
          gemm<T>(false, true, m, k, n, T(1), G + i * m * n, n, Bv + i * k * n, n, T(1),
                  gA + (ba == 1 ? 0 : i) * m * k, k);
        }
      }
    }
    if (c.needs_grad(1)) {  // dB += A^T G
      T* gB = c.input_grad(1).data();
      if (bb == 1) {
        gemm<T>(true, false, k, n, ba * m, T(1), Av, k, G, n, T(1), gB, n);
      } else {
        for (std::size_t i = 0; i < bo; ++i) {
          gemm<T>(true, false, k, n, m, T(1), Av + (ba == 1 ? 0 : i) * m * k, k, G + i * m * n, n, T(1),
                  gB + i * k * n, n);
        }
      }
    }
  });
}

namespace {

// db += the column sums of G (rows x out), in double.
template <class T>
void bias_grad(const T* G, std::size_t n_rows, std::size_t n_out, GradWrite<T> gb) {
  constexpr std::size_t kBlock = 64;
  for (std::size_t j0 = 0; j0 < n_out; j0 += kBlock) {
    const std::size_t nb = std::min(kBlock, n_out - j0);
    double acc[kBlock] = {};
    for (std::size_t i = 0; i < n_rows; ++i) {
      const T* g = G + i * n_out + j0;
      for (std::size_t j = 0; j < nb; ++j) acc[j] += static_cast<double>(g[j]);
    }
    for (std::size_t j = 0; j < nb; ++j)
      gb.data[j0 + j] = beta_add(gb.beta, gb.data[j0 + j], static_cast<T>(acc[j]));
  }
}

// linear's backward: dX += G W, dW += G^T X (each = on its first write after zero_grad()), db +=
// the column sums of G. With set_num_threads(n > 1) and both dX and dW wanted (distinct buffers,
// each product a quarter of a million multiply-adds or more), the two products run side by side,
// dX (then db) on one thread and dW on another, each as one whole call: one hand-over instead
// of splitting each product in turn, and whole products run faster than halves. Each product's
// bits are those of the same call made alone (the batch-invariant kernels give the same bits
// for any split; the BLAS's may differ from a split call within float rounding).
template <class T>
void linear_backward(BackwardCtx<T>& c) {
  const std::size_t n_rows = c.int_at(LinearInt::rows), n_in = c.int_at(LinearInt::in),
                    n_out = c.int_at(LinearInt::out);
  const T* G = c.grad().data();
  const bool want_x = c.needs_grad(0), want_w = c.needs_grad(1);
  const bool want_b = c.num_inputs() == 3 && c.needs_grad(2);
  // The gradient buffers are taken here, on the calling thread (the tape's bookkeeping).
  const GradWrite<T> gX = want_x ? c.input_grad_write(0) : GradWrite<T>{nullptr, T(0)};
  const GradWrite<T> gW = want_w ? c.input_grad_write(1) : GradWrite<T>{nullptr, T(0)};
  const GradWrite<T> gb = want_b ? c.input_grad_write(2) : GradWrite<T>{nullptr, T(0)};
  const T* X = c.input(0).data();
  const T* W = c.input(1).data();
  auto dx_db = [&] {
    if (want_x) gemm<T>(false, false, n_rows, n_in, n_out, T(1), G, n_out, W, n_in, gX.beta, gX.data, n_in);
    if (want_b) bias_grad(G, n_rows, n_out, gb);
  };
  auto dw = [&] {
    if (want_w) gemm<T>(true, false, n_out, n_in, n_rows, T(1), G, n_out, X, n_in, gW.beta, gW.data, n_in);
  };
  const bool distinct = gW.data != gX.data && gW.data != gb.data;  // the two threads write apart
  const bool side_by_side = want_x && want_w && distinct && n_rows * n_in * n_out >= (std::size_t(1) << 18) &&
                            detail::parallel_blocks(2, 1) == 2;
  if (!side_by_side) {
    dx_db();
    dw();
    return;
  }
  detail::parallel_for(2, 1, 1, [&](std::size_t b, std::size_t e) {
    for (std::size_t task = b; task < e; ++task) task == 0 ? dx_db() : dw();
  });
}

}  // namespace

// linear: Y = X W^T + b over the rows of X (all leading dims flattened):
//   y[i][o] = b[o] + sum_j x[i][j] w[o][j]
//   dL/dX = dL/dY W      dL/dW = dL/dY^T X      dL/db[o] = sum_i dL/dy[i][o]
// One node: the GEMM reads W in place with a transpose flag and adds onto Y pre-filled with
// the bias rows (beta = 1), so the bias costs no separate pass over Y.
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& W, const Var<T>& b) {
  Tape<T>& t = Tape<T>::of("linear", {x, W});
  const bool has_bias = b.defined();
  if (has_bias) t.check_input("linear", 2, b);
  const Shape& sx = t.shape(x);
  const Shape& sw = t.shape(W);
  if (sw.size() != 2) {
    throw ShapeError("linear: the weight must be 2-D (out_features, in_features); got W " + shape_str(sw));
  }
  if (sx.empty() || sx.back() != sw[1]) {
    throw ShapeError("linear: the last dim of x must equal W's in_features: x " + shape_str(sx) + ", W " +
                     shape_str(sw) + " (expected x of shape (..., " + std::to_string(sw[1]) + "))");
  }
  const std::size_t in = sw[1], out = sw[0];
  if (has_bias && (t.shape(b).size() != 1 || t.shape(b)[0] != out)) {
    throw ShapeError("linear: the bias must have shape (" + std::to_string(out) + ") for W " + shape_str(sw) +
                     "; got " + shape_str(t.shape(b)));
  }
  std::size_t rows = 1;
  for (std::size_t d = 0; d + 1 < sx.size(); ++d) rows *= sx[d];
  Shape out_shape = sx;
  out_shape.back() = out;

  auto r = has_bias ? t.record("linear", {x, W, b}) : t.record("linear", {x, W});
  r.set_int(LinearInt::rows, std::ptrdiff_t(rows));
  r.set_int(LinearInt::in, std::ptrdiff_t(in));
  r.set_int(LinearInt::out, std::ptrdiff_t(out));
  const T* X = t.value(x).data();
  const T* Wd = t.value(W).data();
  const T* bd = has_bias ? t.value(b).data() : nullptr;
  T* Y = r.out(out_shape).data();
  // Rows [i0, i1) of Y: the bias rows, then the product added onto them. With set_num_threads(n
  // > 1) and a large product, each thread fills and multiplies its own block of rows (the
  // bias copy is split too; the GEMM call inside a block runs on its thread alone).
  const bool invariant = batch_invariant();
  detail::parallel_for(
      rows, detail::gemm_min_rows(out, in), detail::kGemmRowAlign, [&](std::size_t i0, std::size_t i1) {
        T* y = Y + i0 * out;
        if (bd) {
          for (std::size_t i = i0; i < i1; ++i) std::copy(bd, bd + out, Y + i * out);
        }
        const T beta = bd ? T(1) : T(0);
        if (invariant) {
          detail::own_gemm(false, true, i1 - i0, out, in, T(1), X + i0 * in, in, Wd, in, beta, y, out);
        } else {
          gemm<T>(false, true, i1 - i0, out, in, T(1), X + i0 * in, in, Wd, in, beta, y, out);
        }
      });
  return r.finish([](BackwardCtx<T>& c) { linear_backward(c); });
}

#define TAPEGRAD_INSTANTIATE(T)                         \
  template Var<T> matmul(const Var<T>&, const Var<T>&); \
  template Var<T> linear(const Var<T>&, const Var<T>&, const Var<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
