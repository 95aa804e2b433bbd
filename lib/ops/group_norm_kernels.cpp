// The fused GroupNorm kernels: forward and backward over raw buffers, declared in
// group_norm_kernels.hpp. They are LayerNorm's kernels (layer_norm_kernels.cpp) over the
// groups of D = (C / G) L contiguous values, with the affine weight and bias per channel
// instead of per element; the precision analysis and the helpers are norm_kernels_common.hpp's.
#include <cmath>
#include <vector>

#include "group_norm_kernels.hpp"
#include "norm_kernels_common.hpp"

namespace tapegrad::detail {

namespace {

using namespace norm_impl;

// ---- forward -------------------------------------------------------------------------------
// Per group (n, g) of D values x_i, channel c(i) = g C/G + i / L:
//   mean = (1/D) sum_i x_i,  var = (1/D) sum_i (x_i - mean)^2,  rstd = 1 / sqrt(var + eps)
//   xhat_i = (x_i - mean) rstd,  y_i = xhat_i w_c(i) + b_c(i)       (w = 1, b = 0 without affine)
// A float group out of float's range is computed in double (gn_forward_wide).
template <class T>
[[gnu::cold, gnu::noinline]] void gn_forward_wide(T* y, T* mean_hi, T* mean_lo, T* rstd,
                                                  std::vector<std::ptrdiff_t>* wide, double* sm, double* sv,
                                                  const T* x, const T* w, const T* b, std::size_t gi,
                                                  std::size_t c0, std::size_t len, std::size_t dim,
                                                  double eps) {
  const WideStats s = wide_stats(x, 1, 1, dim, 0);
  const double r = 1.0 / std::sqrt(s.var + eps);
  for (std::size_t i = 0; i < dim; ++i) {
    const double xh = s.xhat(static_cast<double>(x[i]), r);
    const std::size_t c = c0 + i / len;
    y[i] = static_cast<T>(w ? xh * static_cast<double>(w[c]) + static_cast<double>(b[c]) : xh);
  }
  if (sm) {
    sm[gi] = s.p + s.md;
    sv[gi] = s.var;
  }
  if (!rstd) return;
  const int e = save_wide_stats(mean_hi[gi], mean_lo[gi], rstd[gi], s.p + s.md, r);
  if (e != 0 && wide) wide->insert(wide->end(), {static_cast<std::ptrdiff_t>(gi), e});
}

// y of one group from its statistics: xhat = (x - p) rt - c, per channel's weight and bias.
template <class T>
TAPEGRAD_ALWAYS_INLINE void gn_write(T* y, const T* x, const T* w, const T* b, T p, T rt, T c, std::size_t c0,
                                     std::size_t cpg, std::size_t len) {
  const std::size_t dim = cpg * len;
  if (!w) {
    for (std::size_t i = 0; i < dim; ++i) y[i] = (x[i] - p) * rt - c;
  } else if (len == 1) {  // (N, C): the channels of a group are contiguous, as LayerNorm's weight
    const T* wg = w + c0;
    const T* bg = b + c0;
    for (std::size_t i = 0; i < dim; ++i) y[i] = ((x[i] - p) * rt - c) * wg[i] + bg[i];
  } else {
    for (std::size_t j = 0; j < cpg; ++j) {
      const T wc = w[c0 + j], bc = b[c0 + j];
      const T* xr = x + j * len;
      T* yr = y + j * len;
      for (std::size_t l = 0; l < len; ++l) yr[l] = ((xr[l] - p) * rt - c) * wc + bc;
    }
  }
}

template <class T>
TAPEGRAD_ALWAYS_INLINE void gn_forward(T* y, T* mean_hi, T* mean_lo, T* rstd,
                                       std::vector<std::ptrdiff_t>* wide, double* sm, double* sv, const T* x,
                                       const T* w, const T* b, const GroupDims& d, double eps) {
  const std::size_t cpg = d.ch / d.groups, dim = cpg * d.len, total = d.n * d.groups;
  for (std::size_t gi = 0; gi < total; ++gi) {
    const T* xg = x + gi * dim;
    T* yg = y + gi * dim;
    const std::size_t c0 = (gi % d.groups) * cpg;
    const T p = xg[0];
    double s1 = 0, s2 = 0, md = 0, var = 0;
    shifted_sums(xg, dim, p, s1, s2);
    stats(s1, s2, 1.0 / static_cast<double>(dim), md, var);
    if (needs_wide<T>(s2, var, eps)) {
      gn_forward_wide(yg, mean_hi, mean_lo, rstd, wide, sm, sv, xg, w, b, gi, c0, d.len, dim, eps);
      continue;
    }
    const double r = 1.0 / std::sqrt(var + eps);
    gn_write(yg, xg, w, b, p, static_cast<T>(r), static_cast<T>(md * r), c0, cpg, d.len);
    if (sm) {
      sm[gi] = static_cast<double>(p) + md;
      sv[gi] = var;
    }
    if (rstd) {
      save_mean(mean_hi + gi, mean_lo + gi, static_cast<double>(p) + md);
      rstd[gi] = static_cast<T>(r);
    }
  }
}

// ---- backward ------------------------------------------------------------------------------
// LayerNorm's backward within a group, with dxhat_i = dy_i w_c(i):
//   dL/dx_i = rstd (dxhat_i - mean_j(dxhat_j) - xhat_i mean_j(dxhat_j xhat_j))
//   dL/dw_c = sum over n and the channel's L values of dy xhat,  dL/db_c = the same of dy
// (N, C) input: a group's channels are contiguous, so pass 1 is LayerNorm's grad_sums with the
// group's slice of w (float partials of dw, db flushed to double every kFlushRows examples).
// (N, C, L): pass 1 sums dy and dy xhat per channel run of L values (double totals), which
// are dL/db_c and dL/dw_c, and a1 = sum_c w_c s1_c, a2 = sum_c w_c s2_c.

template <bool kAffine, bool kParams, class T>
[[gnu::cold, gnu::noinline]] void gn_backward_wide(T* dx, T beta, double* dw, double* db, const T* dy,
                                                   const T* x, const T* w, T mean_hi, T mean_lo, T rstd,
                                                   std::ptrdiff_t e, std::size_t c0, std::size_t len,
                                                   std::size_t dim) {
  double r = 0, a1 = 0, a2 = 0;
  const WideStats s = saved_stats(mean_hi, mean_lo, rstd, e, r);
  for (std::size_t i = 0; i < dim; ++i) {
    const std::size_t c = c0 + i / len;
    const double d = static_cast<double>(dy[i]), xh = s.xhat(static_cast<double>(x[i]), r);
    const double g = kAffine ? d * static_cast<double>(w[c]) : d;
    a1 += g;
    a2 += g * xh;
    if constexpr (kParams) {
      dw[c] += d * xh;
      db[c] += d;
    }
  }
  if (!dx) return;
  const double inv_d = 1.0 / static_cast<double>(dim);
  for (std::size_t i = 0; i < dim; ++i) {
    const std::size_t c = c0 + i / len;
    const double d = static_cast<double>(dy[i]), xh = s.xhat(static_cast<double>(x[i]), r);
    const double g = kAffine ? d * static_cast<double>(w[c]) : d;
    dx[i] = beta_add(beta, dx[i], static_cast<T>(r * (g - a1 * inv_d - xh * a2 * inv_d)));
  }
}

// Pass 1 for (N, C, L): per channel run, s1 = sum dy, s2 = sum dy xhat.
template <bool kAffine, bool kParams, class T>
TAPEGRAD_ALWAYS_INLINE void gn_channel_sums(const T* dy, Xhat<T> xh, const T* w, double* dw, double* db,
                                            std::size_t c0, std::size_t cpg, std::size_t len, double& a1,
                                            double& a2) {
  const T* x0 = xh.x;
  for (std::size_t j = 0; j < cpg; ++j) {
    xh.x = x0 + j * len;
    double s1 = 0, s2 = 0;
    grad_sums<false, false>(dy + j * len, xh, static_cast<const T*>(nullptr), static_cast<T*>(nullptr),
                            static_cast<T*>(nullptr), len, s1, s2);
    const double wc = kAffine ? static_cast<double>(w[c0 + j]) : 1.0;
    a1 += wc * s1;
    a2 += wc * s2;
    if constexpr (kParams) {
      dw[c0 + j] += s2;
      db[c0 + j] += s1;
    }
  }
}

// Pass 2: dx of one group from a1, a2.
template <bool kAffine, class T>
TAPEGRAD_ALWAYS_INLINE void gn_write_dx(T* dx, T beta, const T* dy, const Xhat<T>& xh, const T* w, double a1,
                                        double a2, std::size_t c0, std::size_t cpg, std::size_t len) {
  const std::size_t dim = cpg * len;
  const T rt = xh.rt, p = xh.p, c = xh.c;
  const double r = static_cast<double>(rt), inv_d = 1.0 / static_cast<double>(dim);
  const T k1 = static_cast<T>(r * a1 * inv_d), k2 = static_cast<T>(r * a2 * inv_d);
  const T* x = xh.x;
  if (!kAffine || len == 1) {
    for (std::size_t k = 0; k < dim; ++k) {
      const T dxh = kAffine ? dy[k] * w[c0 + k] : dy[k];
      dx[k] = beta_add(beta, dx[k], dxh * rt - k1 - ((x[k] - p) * rt - c) * k2);
    }
    return;
  }
  for (std::size_t j = 0; j < cpg; ++j) {
    const T wc = w[c0 + j];
    for (std::size_t k = j * len; k < (j + 1) * len; ++k) {
      dx[k] = beta_add(beta, dx[k], dy[k] * wc * rt - k1 - ((x[k] - p) * rt - c) * k2);
    }
  }
}

template <class T>
TAPEGRAD_ALWAYS_INLINE void gn_flush(double* dw, double* db, T* dwf, T* dbf, std::size_t ch) {
  for (std::size_t i = 0; i < ch; ++i) {
    dw[i] += static_cast<double>(dwf[i]);
    db[i] += static_cast<double>(dbf[i]);
    dwf[i] = 0;
    dbf[i] = 0;
  }
}

template <bool kAffine, bool kParams, class T>
TAPEGRAD_ALWAYS_INLINE void gn_backward(T* dx, T beta, double* dw, double* db, const T* dy, const T* x,
                                        const T* w, const T* mean_hi, const T* mean_lo, const T* rstd,
                                        const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end,
                                        const GroupDims& d) {
  const std::size_t cpg = d.ch / d.groups, dim = cpg * d.len, total = d.n * d.groups;
  const bool rows = d.len == 1;
  thread_local std::vector<T> dwf, dbf;
  dwf.assign(kParams && rows ? d.ch : 0, T(0));
  dbf.assign(kParams && rows ? d.ch : 0, T(0));
  for (std::size_t gi = 0; gi < total; ++gi) {
    const T* xg = x + gi * dim;
    const T* dyg = dy + gi * dim;
    T* dxg = dx ? dx + gi * dim : nullptr;
    const std::size_t c0 = (gi % d.groups) * cpg;
    if (wide != wide_end && static_cast<std::size_t>(wide[0]) == gi) {
      gn_backward_wide<kAffine, kParams>(dxg, beta, dw, db, dyg, xg, w, mean_hi[gi], mean_lo[gi], rstd[gi],
                                         wide[1], c0, d.len, dim);
      wide += 2;
    } else {
      const Xhat<T> xh(xg, xg[0], mean_hi[gi], mean_lo[gi], rstd[gi]);
      double a1 = 0, a2 = 0;
      if (rows) {
        grad_sums<kAffine, kParams>(dyg, xh, kAffine ? w + c0 : nullptr, kParams ? dwf.data() + c0 : nullptr,
                                    kParams ? dbf.data() + c0 : nullptr, dim, a1, a2);
      } else {
        gn_channel_sums<kAffine, kParams>(dyg, xh, w, dw, db, c0, cpg, d.len, a1, a2);
      }
      if (dxg) gn_write_dx<kAffine>(dxg, beta, dyg, xh, w, a1, a2, c0, cpg, d.len);
    }
    const std::size_t example_end = (gi + 1) % d.groups == 0 ? (gi + 1) / d.groups : 0;
    if (kParams && rows && example_end && (example_end % kFlushRows == 0 || gi + 1 == total)) {
      gn_flush(dw, db, dwf.data(), dbf.data(), d.ch);
    }
  }
}

}  // namespace

// ---- the entry points: one clone set per scalar type ---------------------------------------

#define TAPEGRAD_GROUP_NORM_KERNELS(T)                                                                      \
  TAPEGRAD_SIMD_CLONES void group_norm_forward(                                                             \
      T* y, T* mean_hi, T* mean_lo, T* rstd, std::vector<std::ptrdiff_t>* wide, double* stat_mean,          \
      double* stat_var, const T* x, const T* w, const T* b, const GroupDims& d, double eps) {               \
    gn_forward<T>(y, mean_hi, mean_lo, rstd, wide, stat_mean, stat_var, x, w, b, d, eps);                   \
  }                                                                                                         \
  TAPEGRAD_SIMD_CLONES void group_norm_backward(T* dx, T beta, double* dw, double* db, const T* dy,         \
                                                const T* x, const T* w, const T* mean_hi, const T* mean_lo, \
                                                const T* rstd, const std::ptrdiff_t* wide,                  \
                                                const std::ptrdiff_t* wide_end, const GroupDims& d) {       \
    if (w && dw) {                                                                                          \
      gn_backward<true, true, T>(dx, beta, dw, db, dy, x, w, mean_hi, mean_lo, rstd, wide, wide_end, d);    \
    } else if (w) {                                                                                         \
      gn_backward<true, false, T>(dx, beta, dw, db, dy, x, w, mean_hi, mean_lo, rstd, wide, wide_end, d);   \
    } else {                                                                                                \
      gn_backward<false, false, T>(dx, beta, nullptr, nullptr, dy, x, w, mean_hi, mean_lo, rstd, wide,      \
                                   wide_end, d);                                                            \
    }                                                                                                       \
  }
TAPEGRAD_GROUP_NORM_KERNELS(float)
TAPEGRAD_GROUP_NORM_KERNELS(double)
#undef TAPEGRAD_GROUP_NORM_KERNELS

}  // namespace tapegrad::detail
