// The fused LayerNorm kernels: forward and backward over raw buffers, declared in
// norm_kernels.hpp. Their precision analysis and shared helpers: norm_kernels_common.hpp.
#include <cmath>
#include <vector>

#include "norm_kernels_common.hpp"

namespace tapegrad::detail {

namespace {

using namespace norm_impl;

// ---- LayerNorm -----------------------------------------------------------------------------
// Forward, per group of D values:
//   mean = (1/D) sum_i x_i,  var = (1/D) sum_i (x_i - mean)^2,  rstd = 1 / sqrt(var + eps)
//   xhat_i = (x_i - mean) rstd,  y_i = xhat_i w_i + b_i          (w = 1, b = 0 without affine)
// One pass for the shifted sums, one (from L1) writing y. A float group out of float's range
// is computed in double (ln_forward_wide; see "range" in norm_kernels_common.hpp). The wide
// paths are cold and not inlined: their calls cost the hot loops nothing but the branch.
template <class T>
[[gnu::cold, gnu::noinline]] void ln_forward_wide(T* y, T* mean_hi, T* mean_lo, T* rstd,
                                                  std::vector<std::ptrdiff_t>* wide, const T* x, const T* w,
                                                  const T* b, std::size_t g, std::size_t dim, double eps) {
  const WideStats s = wide_stats(x, 1, 1, dim, 0);
  const double r = 1.0 / std::sqrt(s.var + eps);
  for (std::size_t i = 0; i < dim; ++i) {
    const double xh = s.xhat(static_cast<double>(x[i]), r);
    y[i] = static_cast<T>(w ? xh * static_cast<double>(w[i]) + static_cast<double>(b[i]) : xh);
  }
  if (!rstd) return;
  const int e = save_wide_stats(mean_hi[g], mean_lo[g], rstd[g], s.p + s.md, r);
  if (e != 0 && wide) wide->insert(wide->end(), {static_cast<std::ptrdiff_t>(g), e});
}

template <class T>
TAPEGRAD_ALWAYS_INLINE void ln_forward(T* y, T* mean_hi, T* mean_lo, T* rstd,
                                       std::vector<std::ptrdiff_t>* wide, const T* x, const T* w, const T* b,
                                       std::size_t groups, std::size_t dim, double eps) {
  for (std::size_t g = 0; g < groups; ++g) {
    const T* xg = x + g * dim;
    T* yg = y + g * dim;
    const T p = xg[0];
    double s1 = 0, s2 = 0, md = 0, var = 0;
    shifted_sums(xg, dim, p, s1, s2);
    stats(s1, s2, 1.0 / static_cast<double>(dim), md, var);
    if (needs_wide<T>(s2, var, eps)) {
      ln_forward_wide(yg, mean_hi, mean_lo, rstd, wide, xg, w, b, g, dim, eps);
      continue;
    }
    const double r = 1.0 / std::sqrt(var + eps);
    const T rt = static_cast<T>(r), c = static_cast<T>(md * r);  // xhat = (x - p) rt - c
    if (w) {
      for (std::size_t i = 0; i < dim; ++i) yg[i] = ((xg[i] - p) * rt - c) * w[i] + b[i];
    } else {
      for (std::size_t i = 0; i < dim; ++i) yg[i] = (xg[i] - p) * rt - c;
    }
    if (rstd) {
      save_mean(mean_hi + g, mean_lo + g, static_cast<double>(p) + md);
      rstd[g] = static_cast<T>(r);
    }
  }
}

// Backward. With dy = dL/dy and dxhat_i = dy_i w_i:
//   dL/db_i = sum over groups of dy_i,   dL/dw_i = sum over groups of dy_i xhat_i
// and for x, differentiate xhat_j = (x_j - mean) rstd inside one group:
//   d mean / d x_i = 1/D,   d var / d x_i = (2/D)(x_i - mean)   (as sum_j (x_j - mean) = 0)
//   d rstd / d x_i = -1/2 (var + eps)^(-3/2) (2/D)(x_i - mean) = -rstd^2 xhat_i / D
//   d xhat_j / d x_i = rstd (delta_ij - 1/D) + (x_j - mean) d rstd / d x_i
//                    = rstd (delta_ij - 1/D - xhat_j xhat_i / D)
//   dL/dx_i = sum_j dxhat_j d xhat_j / d x_i
//           = rstd (dxhat_i - mean_j(dxhat_j) - xhat_i mean_j(dxhat_j xhat_j))
// exact for any eps. Per row: pass 1 reads dy, x (and w) once for a1 = sum dxhat and
// a2 = sum dxhat xhat, and (kParams) adds dy xhat and dy into float partials of dw and db;
// pass 2 writes dx from L1.
// Pass 1 is grad_sums (norm_kernels_common.hpp: BatchNorm uses it too).

// dw += dwf, db += dbf in double; the float partials restart at 0.
template <class T>
TAPEGRAD_ALWAYS_INLINE void flush_params(double* dw, double* db, T* dwf, T* dbf, std::size_t dim) {
  for (std::size_t i = 0; i < dim; ++i) {
    dw[i] += static_cast<double>(dwf[i]);
    db[i] += static_cast<double>(dbf[i]);
    dwf[i] = 0;
    dbf[i] = 0;
  }
}

// A wide group (listed by the forward, exponent e) in double, the same formulas.
template <bool kAffine, bool kParams, class T>
[[gnu::cold, gnu::noinline]] void ln_backward_wide(T* dx, T beta, double* dw, double* db, const T* dy,
                                                   const T* x, const T* w, T mean_hi, T mean_lo, T rstd,
                                                   std::ptrdiff_t e, std::size_t dim) {
  double r = 0, a1 = 0, a2 = 0;
  const WideStats s = saved_stats(mean_hi, mean_lo, rstd, e, r);
  for (std::size_t i = 0; i < dim; ++i) {
    const double d = static_cast<double>(dy[i]), xh = s.xhat(static_cast<double>(x[i]), r);
    const double g = kAffine ? d * static_cast<double>(w[i]) : d;
    a1 += g;
    a2 += g * xh;
    if constexpr (kParams) {
      dw[i] += d * xh;
      db[i] += d;
    }
  }
  if (!dx) return;
  const double inv_d = 1.0 / static_cast<double>(dim);
  for (std::size_t i = 0; i < dim; ++i) {
    const double d = static_cast<double>(dy[i]), xh = s.xhat(static_cast<double>(x[i]), r);
    const double g = kAffine ? d * static_cast<double>(w[i]) : d;
    dx[i] = beta_add(beta, dx[i], static_cast<T>(r * (g - a1 * inv_d - xh * a2 * inv_d)));
  }
}

template <bool kAffine, bool kParams, class T>
TAPEGRAD_ALWAYS_INLINE void ln_backward(T* dx, T beta, double* dw, double* db, const T* dy, const T* x,
                                        const T* w, const T* mean_hi, const T* mean_lo, const T* rstd,
                                        const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end,
                                        std::size_t groups, std::size_t dim) {
  thread_local std::vector<T> dwf, dbf;
  dwf.assign(kParams ? dim : 0, T(0));
  dbf.assign(kParams ? dim : 0, T(0));
  const double inv_d = 1.0 / static_cast<double>(dim);
  for (std::size_t g = 0; g < groups; ++g) {
    const T* xg = x + g * dim;
    const T* dyg = dy + g * dim;
    T* dxg = dx ? dx + g * dim : nullptr;
    if (wide != wide_end && static_cast<std::size_t>(wide[0]) == g) {
      ln_backward_wide<kAffine, kParams>(dxg, beta, dw, db, dyg, xg, w, mean_hi[g], mean_lo[g], rstd[g],
                                         wide[1], dim);
      wide += 2;
    } else {
      const Xhat<T> xh(xg, xg[0], mean_hi[g], mean_lo[g], rstd[g]);
      double a1 = 0, a2 = 0;
      grad_sums<kAffine, kParams>(dyg, xh, w, dwf.data(), dbf.data(), dim, a1, a2);
      if (dxg) {
        // dL/dx = dxhat rstd - rstd mean(dxhat) - xhat rstd mean(dxhat xhat)
        const T rt = xh.rt, p = xh.p, c = xh.c;
        const double r = static_cast<double>(rt);
        const T k1 = static_cast<T>(r * a1 * inv_d), k2 = static_cast<T>(r * a2 * inv_d);
        for (std::size_t k = 0; k < dim; ++k) {
          const T dxh = kAffine ? dyg[k] * w[k] : dyg[k];
          const T xv = (xg[k] - p) * rt - c;
          dxg[k] = beta_add(beta, dxg[k], dxh * rt - k1 - xv * k2);
        }
      }
    }
    if (kParams && (g % kFlushRows == kFlushRows - 1 || g + 1 == groups)) {
      flush_params(dw, db, dwf.data(), dbf.data(), dim);
    }
  }
}

}  // namespace

// ---- the entry points: one clone set per scalar type ---------------------------------------
// (if-else dispatch to the template instances, not lambdas: a lambda would not be compiled
// for the clone's ISA)

#define TAPEGRAD_LAYER_NORM_KERNELS(T)                                                                       \
  TAPEGRAD_SIMD_CLONES void layer_norm_forward(                                                              \
      T* y, T* mean_hi, T* mean_lo, T* rstd, std::vector<std::ptrdiff_t>* wide, const T* x, const T* w,      \
      const T* b, std::size_t groups, std::size_t dim, double eps) {                                         \
    ln_forward<T>(y, mean_hi, mean_lo, rstd, wide, x, w, b, groups, dim, eps);                               \
  }                                                                                                          \
  TAPEGRAD_SIMD_CLONES void layer_norm_backward(                                                             \
      T* dx, T beta, double* dw, double* db, const T* dy, const T* x, const T* w, const T* mean_hi,          \
      const T* mean_lo, const T* rstd, const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end,           \
      std::size_t groups, std::size_t dim) {                                                                 \
    if (w && dw) {                                                                                           \
      ln_backward<true, true, T>(dx, beta, dw, db, dy, x, w, mean_hi, mean_lo, rstd, wide, wide_end, groups, \
                                 dim);                                                                       \
    } else if (w) {                                                                                          \
      ln_backward<true, false, T>(dx, beta, dw, db, dy, x, w, mean_hi, mean_lo, rstd, wide, wide_end,        \
                                  groups, dim);                                                              \
    } else {                                                                                                 \
      ln_backward<false, false, T>(dx, beta, nullptr, nullptr, dy, x, w, mean_hi, mean_lo, rstd, wide,       \
                                   wide_end, groups, dim);                                                   \
    }                                                                                                        \
  }
TAPEGRAD_LAYER_NORM_KERNELS(float)
TAPEGRAD_LAYER_NORM_KERNELS(double)
#undef TAPEGRAD_LAYER_NORM_KERNELS

}  // namespace tapegrad::detail
