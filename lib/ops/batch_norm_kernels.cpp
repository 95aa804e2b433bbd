// The fused BatchNorm (training) kernels: forward and backward over raw buffers, declared in
// norm_kernels.hpp. Their precision analysis and the helpers shared with LayerNorm:
// norm_kernels_common.hpp; the LayerNorm math they mirror: layer_norm_kernels.cpp.
#include <algorithm>
#include <cmath>
#include <vector>

#include "norm_kernels_common.hpp"

namespace tapegrad::detail {

namespace {

using namespace norm_impl;

// ---- BatchNorm (training) ----------------------------------------------------------------
// The LayerNorm computation with the roles of the axes swapped: channel c's statistics run
// over its M = N L values x[n, c, l] (pivot: x[0, c, 0]); w and b are per channel, so
//   y = xhat w_c + b_c = (x - p_c) A_c + B_c,  A_c = rstd_c w_c,  B_c = b_c - md_c rstd_c w_c
// Loops run in memory order: for 2-D input (L = 1) a block of kRowBlock rows is swept column
// vector by column vector, the per-channel float partials over the block staying in
// registers; for L > 1 each (n, c) is a contiguous run of L values, summed as a LayerNorm row.

// For 2-D input, per-channel sums over `rows` rows, kU vectors of channels from c on:
//   forward (!kGrad):  s1 += sum d,  s2 += sum d^2,       d = x - p_c
//   backward (kGrad):  s1 += sum dy, s2 += sum dy xhat,   xhat = d rt_c - c0_c
// each in float over the block of rows, then added to the double sums.
template <bool kGrad, std::size_t kU, class T>
TAPEGRAD_ALWAYS_INLINE void column_sums_at(std::size_t c, const T* dy, const T* x, const T* p, const T* rt,
                                           const T* c0, std::size_t rows, std::size_t ch, double* s1,
                                           double* s2) {
  constexpr std::size_t W = kW<T>;
  Vec<T> a[kU] = {}, q[kU] = {};
  for (std::size_t r = 0; r < rows; ++r) {
    for (std::size_t u = 0; u < kU; ++u) {
      const std::size_t k = c + u * W;
      const Vec<T> d = load(x + r * ch + k) - load(p + k);
      if constexpr (kGrad) {
        const Vec<T> g = load(dy + r * ch + k);
        a[u] += g;
        q[u] += g * (d * load(rt + k) - load(c0 + k));
      } else {
        a[u] += d;
        q[u] += d * d;
      }
    }
  }
  for (std::size_t u = 0; u < kU; ++u) {
    add_lanes_to<T>(s1 + c + u * W, a[u]);
    add_lanes_to<T>(s2 + c + u * W, q[u]);
  }
}

// All channels: four vectors at a time (independent additions), then one, then one channel
// (the same order of additions per channel on every path).
template <bool kGrad, class T>
TAPEGRAD_ALWAYS_INLINE void column_sums(const T* dy, const T* x, const T* p, const T* rt, const T* c0,
                                        std::size_t rows, std::size_t ch, double* s1, double* s2) {
  constexpr std::size_t W = kW<T>;
  std::size_t c = 0;
  for (; c + 4 * W <= ch; c += 4 * W) column_sums_at<kGrad, 4>(c, dy, x, p, rt, c0, rows, ch, s1, s2);
  for (; c + W <= ch; c += W) column_sums_at<kGrad, 1>(c, dy, x, p, rt, c0, rows, ch, s1, s2);
  for (; c < ch; ++c) {
    T a = 0, q = 0;
    for (std::size_t r = 0; r < rows; ++r) {
      const T d = x[r * ch + c] - p[c];
      if constexpr (kGrad) {
        const T g = dy[r * ch + c];
        a += g;
        q += g * (d * rt[c] - c0[c]);
      } else {
        a += d;
        q += d * d;
      }
    }
    s1[c] += static_cast<double>(a);
    s2[c] += static_cast<double>(q);
  }
}

// A channel out of float's range in double ("range" in norm_kernels_common.hpp): its
// statistics, and y over its elements (written after the float loop, which sees A = B = 0 and
// p = 0 for it).
template <class T>
[[gnu::cold, gnu::noinline]] void bn_forward_wide(T* y, double& mean, double& var, const T* x, const T* w,
                                                  const T* b, std::size_t n, std::size_t ch, std::size_t len,
                                                  std::size_t c, double eps) {
  const WideStats s = wide_stats(x, n, ch, len, c);
  mean = s.p + s.md;
  var = s.var;
  const double r = 1.0 / std::sqrt(var + eps);
  const double wc = w ? static_cast<double>(w[c]) : 1.0, bc = b ? static_cast<double>(b[c]) : 0.0;
  for_channel(n, ch, len, c, [&](std::size_t k) {
    const double xh = s.xhat(static_cast<double>(x[k]), r);
    y[k] = static_cast<T>(w ? xh * wc + bc : xh);
  });
}

template <class T>
TAPEGRAD_ALWAYS_INLINE void bn_forward(T* y, std::vector<double>& mean, std::vector<double>& var,
                                       std::vector<std::size_t>& wide, const T* x, const T* w, const T* b,
                                       std::size_t n, std::size_t ch, std::size_t len, double eps) {
  thread_local std::vector<double> s1, s2;
  thread_local std::vector<T> p, A, B;
  p.resize(ch);
  A.resize(ch);
  B.resize(ch);
  s1.assign(ch, 0.0);
  s2.assign(ch, 0.0);
  wide.clear();
  for (std::size_t c = 0; c < ch; ++c) p[c] = x[c * len];
  if (len == 1) {
    for (std::size_t i = 0; i < n; i += kRowBlock) {
      column_sums<false>(static_cast<const T*>(nullptr), x + i * ch, p.data(), static_cast<const T*>(nullptr),
                         static_cast<const T*>(nullptr), std::min(kRowBlock, n - i), ch, s1.data(),
                         s2.data());
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < ch; ++c) {
        double a = 0, q = 0;
        shifted_sums(x + (i * ch + c) * len, len, p[c], a, q);
        s1[c] += a;
        s2[c] += q;
      }
    }
  }
  mean.assign(ch, 0.0);
  var.assign(ch, 0.0);
  const double inv_m = 1.0 / static_cast<double>(n * len);
  for (std::size_t c = 0; c < ch; ++c) {
    double md = 0;
    stats(s1[c], s2[c], inv_m, md, var[c]);
    mean[c] = static_cast<double>(p[c]) + md;
    const double a = (w ? static_cast<double>(w[c]) : 1.0) / std::sqrt(var[c] + eps);
    A[c] = static_cast<T>(a);
    B[c] = static_cast<T>((b ? static_cast<double>(b[c]) : 0.0) - md * a);
  }
  // (a loop of its own: the one above stays free of branches, and vectorizes)
  for (std::size_t c = 0; c < ch; ++c) {
    if (!needs_wide<T>(s2[c], var[c], eps)) continue;
    wide.push_back(c);
    p[c] = A[c] = B[c] = T(0);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (len == 1) {
      const T* xr = x + i * ch;
      T* yr = y + i * ch;
      for (std::size_t c = 0; c < ch; ++c) yr[c] = (xr[c] - p[c]) * A[c] + B[c];
      continue;
    }
    for (std::size_t c = 0; c < ch; ++c) {
      const T* xr = x + (i * ch + c) * len;
      T* yr = y + (i * ch + c) * len;
      const T pc = p[c], ac = A[c], bc = B[c];
      for (std::size_t l = 0; l < len; ++l) yr[l] = (xr[l] - pc) * ac + bc;
    }
  }
  for (const std::size_t c : wide) bn_forward_wide(y, mean[c], var[c], x, w, b, n, ch, len, c, eps);
}

// Training backward: as for LayerNorm with means over the M values of a channel, and
// dxhat = dy w_c. Pass 1 gathers the per-channel sums
//   S1_c = sum_{n,l} dy,   S2_c = sum_{n,l} dy xhat     (= dL/db_c and dL/dw_c)
// so that mean(dxhat) = w_c S1_c / M and mean(dxhat xhat) = w_c S2_c / M; pass 2 writes
//   dL/dx = rstd_c (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
//         = A_c dy - A_c S1_c / M - xhat A_c S2_c / M,     A_c = rstd_c w_c
// with xhat = (x - p_c) rstd_c - md_c rstd_c as in the forward.

// A wide channel (exponent e) in double: its sums S1, S2 replace the float ones (which saw
// p = rt = c0 = 0 for it), and its dx is written after the float loop (which sees A = K1 =
// K2 = 0 for it).
template <class T>
[[gnu::cold, gnu::noinline]] void bn_wide_sums(double& s1, double& s2, double& r, const T* dy, const T* x,
                                               T mean_hi, T mean_lo, T rstd, std::ptrdiff_t e, std::size_t n,
                                               std::size_t ch, std::size_t len, std::size_t c) {
  const WideStats s = saved_stats(mean_hi, mean_lo, rstd, e, r);
  double a1 = 0, a2 = 0;
  for_channel(n, ch, len, c, [&](std::size_t k) {
    const double d = static_cast<double>(dy[k]);
    a1 += d;
    a2 += d * s.xhat(static_cast<double>(x[k]), r);
  });
  s1 = a1;
  s2 = a2;
}
template <class T>
[[gnu::cold, gnu::noinline]] void bn_wide_dx(T* dx, T beta, const WideStats& s, double r, double s1,
                                             double s2, const T* dy, const T* x, const T* w, std::size_t n,
                                             std::size_t ch, std::size_t len, std::size_t c) {
  const double inv_m = 1.0 / static_cast<double>(n * len);
  const double a = r * (w ? static_cast<double>(w[c]) : 1.0);
  for_channel(n, ch, len, c, [&](std::size_t k) {
    const double xh = s.xhat(static_cast<double>(x[k]), r);
    const double v = a * (static_cast<double>(dy[k]) - s1 * inv_m - xh * s2 * inv_m);
    dx[k] = beta_add(beta, dx[k], static_cast<T>(v));
  });
}

// Pass 2: dL/dx = A_c dy - K1_c - xhat K2_c (A_c from rt_c, so 0 for a wide channel).
template <class T>
TAPEGRAD_ALWAYS_INLINE void bn_backward_dx(T* dx, T beta, const double* s1, const double* s2, const T* dy,
                                           const T* x, const T* w, const T* p, const T* rt, const T* c0,
                                           std::size_t n, std::size_t ch, std::size_t len) {
  const double inv_m = 1.0 / static_cast<double>(n * len);
  thread_local std::vector<T> A, K1, K2;
  A.resize(ch);
  K1.resize(ch);
  K2.resize(ch);
  for (std::size_t c = 0; c < ch; ++c) {
    const double a = static_cast<double>(rt[c]) * (w ? static_cast<double>(w[c]) : 1.0);
    A[c] = static_cast<T>(a);
    K1[c] = static_cast<T>(a * s1[c] * inv_m);
    K2[c] = static_cast<T>(a * s2[c] * inv_m);
  }
  for (std::size_t i = 0; i < n; ++i) {
    if (len == 1) {
      const T* xr = x + i * ch;
      const T* dyr = dy + i * ch;
      T* dxr = dx + i * ch;
      for (std::size_t c = 0; c < ch; ++c) {
        const T xh = (xr[c] - p[c]) * rt[c] - c0[c];
        dxr[c] = beta_add(beta, dxr[c], dyr[c] * A[c] - K1[c] - xh * K2[c]);
      }
      continue;
    }
    for (std::size_t c = 0; c < ch; ++c) {
      const std::size_t off = (i * ch + c) * len;
      const T pc = p[c], rc = rt[c], cc = c0[c], ac = A[c], k1 = K1[c], k2 = K2[c];
      for (std::size_t l = 0; l < len; ++l) {
        const T xh = (x[off + l] - pc) * rc - cc;
        dx[off + l] = beta_add(beta, dx[off + l], dy[off + l] * ac - k1 - xh * k2);
      }
    }
  }
}

template <class T>
TAPEGRAD_ALWAYS_INLINE void bn_backward(T* dx, T beta, double* s1, double* s2, const T* dy, const T* x,
                                        const T* w, const T* mean_hi, const T* mean_lo, const T* rstd,
                                        const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end,
                                        std::size_t n, std::size_t ch, std::size_t len) {
  thread_local std::vector<T> p, rt, c0;
  p.resize(ch);
  rt.resize(ch);
  c0.resize(ch);
  for (std::size_t c = 0; c < ch; ++c) {
    const Xhat<T> xh(nullptr, x[c * len], mean_hi[c], mean_lo[c], rstd[c]);
    p[c] = xh.p;
    rt[c] = xh.rt;
    c0[c] = xh.c;
  }
  for (const std::ptrdiff_t* e = wide; e != wide_end; e += 2) {
    const auto c = static_cast<std::size_t>(e[0]);
    p[c] = rt[c] = c0[c] = T(0);
  }
  if (len == 1) {
    for (std::size_t i = 0; i < n; i += kRowBlock) {
      column_sums<true>(dy + i * ch, x + i * ch, p.data(), rt.data(), c0.data(), std::min(kRowBlock, n - i),
                        ch, s1, s2);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < ch; ++c) {
        const std::size_t off = (i * ch + c) * len;
        Xhat<T> xh(nullptr, p[c], mean_hi[c], mean_lo[c], rstd[c]);
        xh.x = x + off;
        xh.rt = rt[c];
        xh.c = c0[c];
        double a1 = 0, a2 = 0;
        grad_sums<false, false>(dy + off, xh, static_cast<const T*>(nullptr), static_cast<T*>(nullptr),
                                static_cast<T*>(nullptr), len, a1, a2);
        s1[c] += a1;
        s2[c] += a2;
      }
    }
  }
  for (const std::ptrdiff_t* e = wide; e != wide_end; e += 2) {
    const auto c = static_cast<std::size_t>(e[0]);
    double r = 0;
    bn_wide_sums(s1[c], s2[c], r, dy, x, mean_hi[c], mean_lo[c], rstd[c], e[1], n, ch, len, c);
  }
  if (!dx) return;
  bn_backward_dx(dx, beta, s1, s2, dy, x, w, p.data(), rt.data(), c0.data(), n, ch, len);
  for (const std::ptrdiff_t* e = wide; e != wide_end; e += 2) {
    const auto c = static_cast<std::size_t>(e[0]);
    double r = 0;
    const WideStats ws = saved_stats(mean_hi[c], mean_lo[c], rstd[c], e[1], r);
    bn_wide_dx(dx, beta, ws, r, s1[c], s2[c], dy, x, w, n, ch, len, c);
  }
}

}  // namespace

// ---- the entry points: one clone set per scalar type ---------------------------------------
// (if-else dispatch to the template instances, not lambdas: a lambda would not be compiled
// for the clone's ISA)

#define TAPEGRAD_BATCH_NORM_KERNELS(T)                                                                       \
  TAPEGRAD_SIMD_CLONES void batch_norm_forward(                                                              \
      T* y, std::vector<double>& mean, std::vector<double>& var, std::vector<std::size_t>& wide, const T* x, \
      const T* w, const T* b, std::size_t n, std::size_t ch, std::size_t len, double eps) {                  \
    bn_forward<T>(y, mean, var, wide, x, w, b, n, ch, len, eps);                                             \
  }                                                                                                          \
  TAPEGRAD_SIMD_CLONES void batch_norm_backward(                                                             \
      T* dx, T beta, double* s1, double* s2, const T* dy, const T* x, const T* w, const T* mean_hi,          \
      const T* mean_lo, const T* rstd, const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end,           \
      std::size_t n, std::size_t ch, std::size_t len) {                                                      \
    bn_backward<T>(dx, beta, s1, s2, dy, x, w, mean_hi, mean_lo, rstd, wide, wide_end, n, ch, len);          \
  }
TAPEGRAD_BATCH_NORM_KERNELS(float)
TAPEGRAD_BATCH_NORM_KERNELS(double)
#undef TAPEGRAD_BATCH_NORM_KERNELS

}  // namespace tapegrad::detail
