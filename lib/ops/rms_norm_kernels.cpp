// The fused RMSNorm kernels, declared in group_norm_kernels.hpp. LayerNorm's kernels without
// the mean: the sums of squares run in T over blocks flushed to double totals
// (norm_kernels_common.hpp), with pivot 0.
#include <cmath>
#include <vector>

#include "group_norm_kernels.hpp"
#include "norm_kernels_common.hpp"

namespace tapegrad::detail {

namespace {

using namespace norm_impl;

// ---- forward -------------------------------------------------------------------------------
// Per group of D values: ms = (1/D) sum_i x_i^2,  rstd = 1 / sqrt(ms + eps),
//   xhat_i = x_i rstd,  y_i = xhat_i w_i                                (w = 1 without affine)
// A float group whose sum of squares is not finite in float, or whose ms + eps is below 2^-96,
// is computed in double (as LayerNorm's wide groups).
template <class T>
[[gnu::cold, gnu::noinline]] void rms_forward_wide(T* y, T* rstd, std::vector<std::ptrdiff_t>* wide,
                                                   const T* x, const T* w, std::size_t g, std::size_t dim,
                                                   double eps) {
  double q = 0;
  for (std::size_t i = 0; i < dim; ++i) q += static_cast<double>(x[i]) * static_cast<double>(x[i]);
  const double r = 1.0 / std::sqrt(q / static_cast<double>(dim) + eps);
  for (std::size_t i = 0; i < dim; ++i) {
    const double xh = static_cast<double>(x[i]) * r;
    y[i] = static_cast<T>(w ? xh * static_cast<double>(w[i]) : xh);
  }
  if (!rstd) return;
  const int e = rstd_exponent(r);
  rstd[g] = static_cast<T>(std::ldexp(r, -e));
  if (e != 0 && wide) wide->insert(wide->end(), {static_cast<std::ptrdiff_t>(g), e});
}

template <class T>
TAPEGRAD_ALWAYS_INLINE void rms_forward(T* y, T* rstd, std::vector<std::ptrdiff_t>* wide, const T* x,
                                        const T* w, std::size_t groups, std::size_t dim, double eps) {
  for (std::size_t g = 0; g < groups; ++g) {
    const T* xg = x + g * dim;
    T* yg = y + g * dim;
    double s1 = 0, s2 = 0;
    shifted_sums(xg, dim, T(0), s1, s2);
    const double ms = s2 / static_cast<double>(dim);
    if (needs_wide<T>(s2, ms, eps)) {
      rms_forward_wide(yg, rstd, wide, xg, w, g, dim, eps);
      continue;
    }
    const double r = 1.0 / std::sqrt(ms + eps);
    const T rt = static_cast<T>(r);
    if (w) {
      for (std::size_t i = 0; i < dim; ++i) yg[i] = xg[i] * rt * w[i];
    } else {
      for (std::size_t i = 0; i < dim; ++i) yg[i] = xg[i] * rt;
    }
    if (rstd) rstd[g] = rt;
  }
}

// ---- backward ------------------------------------------------------------------------------
// With dxhat_i = dy_i w_i and d rstd / d x_i = -rstd^3 x_i / D = -rstd^2 xhat_i / D:
//   dL/dx_i = rstd (dxhat_i - xhat_i mean_j(dxhat_j xhat_j)),   dL/dw_i = sum over groups dy_i xhat_i
// Pass 1 is grad_sums with pivot 0 (xhat = x rstd), pass 2 writes dx.
template <bool kAffine, bool kParams, class T>
[[gnu::cold, gnu::noinline]] void rms_backward_wide(T* dx, T beta, double* dw, const T* dy, const T* x,
                                                    const T* w, T rstd, std::ptrdiff_t e, std::size_t dim) {
  const double r = std::ldexp(static_cast<double>(rstd), static_cast<int>(e));
  double a2 = 0;
  for (std::size_t i = 0; i < dim; ++i) {
    const double d = static_cast<double>(dy[i]), xh = static_cast<double>(x[i]) * r;
    a2 += (kAffine ? d * static_cast<double>(w[i]) : d) * xh;
    if constexpr (kParams) dw[i] += d * xh;
  }
  if (!dx) return;
  const double k = a2 / static_cast<double>(dim);
  for (std::size_t i = 0; i < dim; ++i) {
    const double d = static_cast<double>(dy[i]), xh = static_cast<double>(x[i]) * r;
    const double g = kAffine ? d * static_cast<double>(w[i]) : d;
    dx[i] = beta_add(beta, dx[i], static_cast<T>(r * (g - xh * k)));
  }
}

template <bool kAffine, bool kParams, class T>
TAPEGRAD_ALWAYS_INLINE void rms_backward(T* dx, T beta, double* dw, const T* dy, const T* x, const T* w,
                                         const T* rstd, const std::ptrdiff_t* wide,
                                         const std::ptrdiff_t* wide_end, std::size_t groups,
                                         std::size_t dim) {
  thread_local std::vector<T> dwf, dbf;
  dwf.assign(kParams ? dim : 0, T(0));
  dbf.assign(kParams ? dim : 0, T(0));
  for (std::size_t g = 0; g < groups; ++g) {
    const T* xg = x + g * dim;
    const T* dyg = dy + g * dim;
    T* dxg = dx ? dx + g * dim : nullptr;
    if (wide != wide_end && static_cast<std::size_t>(wide[0]) == g) {
      rms_backward_wide<kAffine, kParams>(dxg, beta, dw, dyg, xg, w, rstd[g], wide[1], dim);
      wide += 2;
    } else {
      const Xhat<T> xh(xg, T(0), T(0), T(0), rstd[g]);  // xhat = x rstd
      double a1 = 0, a2 = 0;
      grad_sums<kAffine, kParams>(dyg, xh, w, dwf.data(), dbf.data(), dim, a1, a2);
      if (dxg) {
        const T rt = xh.rt;
        const T k2 = static_cast<T>(static_cast<double>(rt) * a2 / static_cast<double>(dim));
        for (std::size_t k = 0; k < dim; ++k) {
          const T dxh = kAffine ? dyg[k] * w[k] : dyg[k];
          dxg[k] = beta_add(beta, dxg[k], dxh * rt - xg[k] * rt * k2);
        }
      }
    }
    if (kParams && (g % kFlushRows == kFlushRows - 1 || g + 1 == groups)) {
      for (std::size_t i = 0; i < dim; ++i) {
        dw[i] += static_cast<double>(dwf[i]);
        dwf[i] = 0;
      }
    }
  }
}

}  // namespace

#define TAPEGRAD_RMS_NORM_KERNELS(T)                                                                        \
  TAPEGRAD_SIMD_CLONES void rms_norm_forward(T* y, T* rstd, std::vector<std::ptrdiff_t>* wide, const T* x,  \
                                             const T* w, std::size_t groups, std::size_t dim, double eps) { \
    rms_forward<T>(y, rstd, wide, x, w, groups, dim, eps);                                                  \
  }                                                                                                         \
  TAPEGRAD_SIMD_CLONES void rms_norm_backward(                                                              \
      T* dx, T beta, double* dw, const T* dy, const T* x, const T* w, const T* rstd,                        \
      const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end, std::size_t groups, std::size_t dim) {    \
    if (w && dw) {                                                                                          \
      rms_backward<true, true, T>(dx, beta, dw, dy, x, w, rstd, wide, wide_end, groups, dim);               \
    } else if (w) {                                                                                         \
      rms_backward<true, false, T>(dx, beta, dw, dy, x, w, rstd, wide, wide_end, groups, dim);              \
    } else {                                                                                                \
      rms_backward<false, false, T>(dx, beta, nullptr, dy, x, w, rstd, wide, wide_end, groups, dim);        \
    }                                                                                                       \
  }
TAPEGRAD_RMS_NORM_KERNELS(float)
TAPEGRAD_RMS_NORM_KERNELS(double)
#undef TAPEGRAD_RMS_NORM_KERNELS

}  // namespace tapegrad::detail
