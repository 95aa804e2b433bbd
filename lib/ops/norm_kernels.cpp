#include "norm_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "fast_math.hpp"

namespace tapegrad::detail {

// ---- precision -----------------------------------------------------------------------------
// Sums are accumulated in double, also for float data, over shifted values d = x - p, where
// the pivot p is the group's (channel's) first element:
//   md = mean(d),  var = mean(d^2) - md^2,  mean = p + md,  rstd = 1 / sqrt(var + eps)
// This is E[x^2] - E[x]^2 made safe: p is one of the values, so |md| = |mean - p| is at most
// sqrt(D) std, and the cancellation in mean(d^2) - md^2 costs at most a factor D (~1e3) of
// double's 1e-16: var keeps ~13 digits, and one pass over the data suffices.
//
// Why double: 64 floats near 1e4 sum to ~6.4e5, where float's spacing is 0.06, against a
// standard deviation of 0.01. Why the pivot also for the per-element work, which runs in T:
//   xhat = (x - mean) rstd = (x - p) rstd - md rstd
// x - p is exact in float when x and p are close (the large-offset case: 1e4 + 1e-2 z), and
// T(md rstd) is at most sqrt(D) in size, so xhat has an absolute error of a few float
// epsilons times sqrt(D) at worst, where float math on x - T(mean) would be off by
// spacing(1e4) * rstd ~ 0.1. The mean itself is saved as mean_hi + mean_lo (two T values
// whose double sum restores it to ~1e-11).
//
// Speed: the per-element loops are branch-free and in T, so GCC vectorizes them; sums run in
// 8 interleaved partial sums (blocks of 8 below), a fixed order of additions, so the result is
// the same with any vector width. Each kernel is compiled twice (TAPEGRAD_SIMD_CLONES: baseline x86-64 and
// AVX2, chosen at load time); both give bitwise the same results (no FMA contraction).

namespace {

// ---- blocks of 8 ---------------------------------------------------------------------------
// Sums run over blocks of 8 elements held in GCC/Clang vector types: element i of a row always
// goes to lane i % 8 of 8 double partial sums (two vectors of 4), which are added up in lane
// order at the end. A fixed order of additions (the same bits from the SSE2 and the AVX2
// clone), and SIMD in both, which GCC does not do for a plain floating-point sum loop (it may
// not reassociate it). Vectors of 4: wider ones compile to poor code without AVX-512.
// (The helpers returning vectors are inlined internal functions: GCC's -Wpsabi note about
// passing such vectors between separately compiled functions does not apply to them.)
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float F4 __attribute__((vector_size(16)));
typedef double D4 __attribute__((vector_size(32)));
template <class T>
struct Quad;
template <>
struct Quad<float> {
  using type = F4;
};
template <>
struct Quad<double> {
  using type = D4;
};
template <class T>
using quad_t = typename Quad<T>::type;
constexpr std::size_t kLanes = 8;

// Eight double partial sums; add(lo, hi) adds elements i..i+3 and i+4..i+7 of a block.
struct Sum8 {
  D4 lo = {}, hi = {};
  template <class V>
  TAPEGRAD_ALWAYS_INLINE void add(V a, V b) {
    lo += __builtin_convertvector(a, D4);
    hi += __builtin_convertvector(b, D4);
  }
  TAPEGRAD_ALWAYS_INLINE void add_lane(std::size_t j, double v) {
    if (j < 4) lo[j] += v; else hi[j - 4] += v;
  }
  TAPEGRAD_ALWAYS_INLINE double total() const {
    double s = 0;
    for (std::size_t j = 0; j < 4; ++j) s += lo[j];
    for (std::size_t j = 0; j < 4; ++j) s += hi[j];
    return s;
  }
};

template <class T>
TAPEGRAD_ALWAYS_INLINE quad_t<T> load4(const T* p) {
  quad_t<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Adds sum d and sum d^2, d = x[i] - p over n values (x - p in T, see above), into s1 and s2.
template <class T>
TAPEGRAD_ALWAYS_INLINE void add_shifted_sums(const T* x, std::size_t n, T p, double& s1, double& s2) {
  Sum8 a, q;
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const D4 d0 = __builtin_convertvector(load4(x + i) - p, D4);
    const D4 d1 = __builtin_convertvector(load4(x + i + 4) - p, D4);
    a.add(d0, d1);
    q.add(d0 * d0, d1 * d1);
  }
  for (std::size_t j = 0; i < n; ++i, ++j) {
    const double d = static_cast<double>(x[i] - p);
    a.add_lane(j, d);
    q.add_lane(j, d * d);
  }
  s1 += a.total();
  s2 += q.total();
}

// From the shifted sums of m values: md = mean - p and var (clamped at 0 against rounding).
inline void stats(double s1, double s2, double m, double& md, double& var) {
  md = s1 / m;
  var = std::max(s2 / m - md * md, 0.0);
}

template <class T>
void save_mean(T* hi, T* lo, double mean) {
  *hi = static_cast<T>(mean);
  *lo = static_cast<T>(mean - static_cast<double>(*hi));
}

// ---- LayerNorm -----------------------------------------------------------------------------
// Forward, per group of D values:
//   mean = (1/D) sum_i x_i,  var = (1/D) sum_i (x_i - mean)^2,  rstd = 1 / sqrt(var + eps)
//   xhat_i = (x_i - mean) rstd,  y_i = xhat_i w_i + b_i          (w = 1, b = 0 without affine)
template <class T>
TAPEGRAD_ALWAYS_INLINE void ln_forward(T* y, T* mean_hi, T* mean_lo, T* rstd, const T* x, const T* w,
                                       const T* b, std::size_t groups, std::size_t dim, double eps) {
  for (std::size_t g = 0; g < groups; ++g) {
    const T* xg = x + g * dim;
    T* yg = y + g * dim;
    const T p = xg[0];
    double s1 = 0, s2 = 0, md = 0, var = 0;
    add_shifted_sums(xg, dim, p, s1, s2);
    stats(s1, s2, static_cast<double>(dim), md, var);
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
// exact for any eps. kAffine: w is given; dw and db are both given or both null.
// A group's xhat as in the forward: xhat = (x - p) rt - c, with p = x[0], rt = T(rstd) and
// c = T((mean - p) rstd).
template <class T>
struct GroupXhat {
  const T* x;
  T p, rt, c;
  GroupXhat(const T* xg, const T* mean_hi, const T* mean_lo, const T* rstd, std::size_t g)
      : x(xg), p(xg[0]) {
    const double md = (static_cast<double>(mean_hi[g]) - static_cast<double>(p)) + mean_lo[g];
    rt = rstd[g];
    c = static_cast<T>(md * static_cast<double>(rstd[g]));
  }
  TAPEGRAD_ALWAYS_INLINE T operator()(std::size_t i) const { return (x[i] - p) * rt - c; }
  TAPEGRAD_ALWAYS_INLINE quad_t<T> quad(std::size_t i) const { return (load4(x + i) - p) * rt - c; }
};

// dw_i += sum over kRows groups of dy_i xhat_i, db_i += sum of dy_i, adding the groups in
// order (the same sums as one group at a time), with one pass over dw and db per kRows groups.
template <std::size_t kRows, class T>
TAPEGRAD_ALWAYS_INLINE void add_param_grads(double* dw, double* db, const T* dy, const GroupXhat<T>* xh,
                                            std::size_t dim) {
  for (std::size_t i = 0; i < dim; ++i) {
    double w = dw[i], b = db[i];
    for (std::size_t r = 0; r < kRows; ++r) {
      const T d = dy[r * dim + i];
      w += static_cast<double>(d * xh[r](i));
      b += static_cast<double>(d);
    }
    dw[i] = w;
    db[i] = b;
  }
}

template <bool kAffine, bool kAssign, class T>
TAPEGRAD_ALWAYS_INLINE void ln_backward(T* dx, double* dw, double* db, const T* dy, const T* x,
                                        const T* w, const T* mean_hi, const T* mean_lo,
                                        const T* rstd, std::size_t groups, std::size_t dim) {
  constexpr std::size_t kRows = 4;
  const double inv_d = 1.0 / static_cast<double>(dim);
  for (std::size_t g = 0; g < groups; ++g) {
    const GroupXhat<T> xhat(x + g * dim, mean_hi, mean_lo, rstd, g);
    const T* dyg = dy + g * dim;
    const auto dxhat = [&](std::size_t i) { return kAffine ? dyg[i] * w[i] : dyg[i]; };
    if (kAffine && dw && g % kRows == kRows - 1) {  // the parameter grads of the last kRows groups
      GroupXhat<T> xhs[kRows] = {
          {x + (g - 3) * dim, mean_hi, mean_lo, rstd, g - 3},
          {x + (g - 2) * dim, mean_hi, mean_lo, rstd, g - 2},
          {x + (g - 1) * dim, mean_hi, mean_lo, rstd, g - 1}, xhat};
      add_param_grads<kRows>(dw, db, dy + (g - 3) * dim, xhs, dim);
    } else if (kAffine && dw && g >= groups - groups % kRows) {  // the last few, one at a time
      add_param_grads<1>(dw, db, dyg, &xhat, dim);
    }
    if (!dx) continue;
    // mean(dxhat) and mean(dxhat xhat), in blocks of 8
    Sum8 a1, a2;
    std::size_t i = 0;
    for (; i + kLanes <= dim; i += kLanes) {
      const auto dxh0 = kAffine ? load4(dyg + i) * load4(w + i) : load4(dyg + i);
      const auto dxh1 = kAffine ? load4(dyg + i + 4) * load4(w + i + 4) : load4(dyg + i + 4);
      a1.add(dxh0, dxh1);
      a2.add(dxh0 * xhat.quad(i), dxh1 * xhat.quad(i + 4));
    }
    for (std::size_t j = 0; i < dim; ++i, ++j) {
      a1.add_lane(j, static_cast<double>(dxhat(i)));
      a2.add_lane(j, static_cast<double>(dxhat(i) * xhat(i)));
    }
    // dL/dx = dxhat rstd - rstd mean(dxhat) - xhat rstd mean(dxhat xhat)
    const double r = static_cast<double>(xhat.rt);
    const T k1 = static_cast<T>(r * a1.total() * inv_d), k2 = static_cast<T>(r * a2.total() * inv_d);
    T* dxg = dx + g * dim;
    for (std::size_t k = 0; k < dim; ++k) {
      dxg[k] = (kAssign ? T(0) : dxg[k]) + (dxhat(k) * xhat.rt - k1 - xhat(k) * k2);
    }
  }
}

// ---- BatchNorm (training) ----------------------------------------------------------------
// Calls f(i, rows) for rows i, i + 1, ... of n in blocks of 4 (then single rows), with
// rows.value a compile-time constant: per-channel sums over 4 rows stay in registers between
// one load and one store of the sum, and are still added row after row, in order.
template <class F>
TAPEGRAD_ALWAYS_INLINE void for_row_blocks(std::size_t n, F&& f) {
  std::size_t i = 0;
  for (; i + 4 <= n; i += 4) f(i, std::integral_constant<std::size_t, 4>());
  for (; i < n; ++i) f(i, std::integral_constant<std::size_t, 1>());
}

// The LayerNorm computation with the roles of the axes swapped: channel c's statistics run
// over its M = N L values x[n, c, l] (pivot: x[0, c, 0]); w and b are per channel, so
//   y = xhat w_c + b_c = (x - p_c) A_c + B_c,  A_c = rstd_c w_c,  B_c = b_c - md_c rstd_c w_c
// Loops run in memory order: for 2-D input (L = 1) the channel loop is the inner one and the
// per-channel sums are arrays; for L > 1 each (n, c) is a contiguous run of L values.
template <class T>
TAPEGRAD_ALWAYS_INLINE void bn_forward(T* y, std::vector<double>& mean, std::vector<double>& var,
                                       const T* x, const T* w, const T* b, std::size_t n,
                                       std::size_t ch, std::size_t len, double eps) {
  std::vector<double> s1(ch, 0.0), s2(ch, 0.0);
  std::vector<T> p(ch), A(ch), B(ch);
  for (std::size_t c = 0; c < ch; ++c) p[c] = x[c * len];
  if (len == 1) {
    for_row_blocks(n, [&](std::size_t i, auto rows) {
      for (std::size_t c = 0; c < ch; ++c) {
        double a = s1[c], q = s2[c];
        for (std::size_t r = 0; r < rows.value; ++r) {
          const double d = static_cast<double>(x[(i + r) * ch + c] - p[c]);
          a += d;
          q += d * d;
        }
        s1[c] = a;
        s2[c] = q;
      }
    });
  } else {
    for (std::size_t i = 0; i < n; ++i)
      for (std::size_t c = 0; c < ch; ++c) add_shifted_sums(x + (i * ch + c) * len, len, p[c], s1[c], s2[c]);
  }
  mean.assign(ch, 0.0);
  var.assign(ch, 0.0);
  for (std::size_t c = 0; c < ch; ++c) {
    double md = 0;
    stats(s1[c], s2[c], static_cast<double>(n * len), md, var[c]);
    mean[c] = static_cast<double>(p[c]) + md;
    const double a = (w ? static_cast<double>(w[c]) : 1.0) / std::sqrt(var[c] + eps);
    A[c] = static_cast<T>(a);
    B[c] = static_cast<T>((b ? static_cast<double>(b[c]) : 0.0) - md * a);
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
}

// Training backward: as for LayerNorm with means over the M values of a channel, and
// dxhat = dy w_c. Pass 1 gathers the per-channel sums
//   S1_c = sum_{n,l} dy,   S2_c = sum_{n,l} dy xhat     (= dL/db_c and dL/dw_c)
// so that mean(dxhat) = w_c S1_c / M and mean(dxhat xhat) = w_c S2_c / M; pass 2 writes
//   dL/dx = rstd_c (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
//         = A_c dy - A_c S1_c / M - xhat A_c S2_c / M,     A_c = rstd_c w_c
// with xhat = (x - p_c) rstd_c - md_c rstd_c as in the forward.
template <bool kAssign, class T>
TAPEGRAD_ALWAYS_INLINE void bn_backward(T* dx, double* s1, double* s2, const T* dy, const T* x,
                                        const T* w, const T* mean_hi, const T* mean_lo,
                                        const T* rstd, std::size_t n, std::size_t ch,
                                        std::size_t len) {
  std::vector<T> p(ch), rt(ch), c0(ch);
  for (std::size_t c = 0; c < ch; ++c) {
    p[c] = x[c * len];
    const double md = (static_cast<double>(mean_hi[c]) - static_cast<double>(p[c])) + mean_lo[c];
    rt[c] = rstd[c];
    c0[c] = static_cast<T>(md * static_cast<double>(rstd[c]));
  }
  if (len == 1) {
    for_row_blocks(n, [&](std::size_t i, auto rows) {
      for (std::size_t c = 0; c < ch; ++c) {
        double a = s1[c], q = s2[c];
        for (std::size_t r = 0; r < rows.value; ++r) {
          const std::size_t k = (i + r) * ch + c;
          a += static_cast<double>(dy[k]);
          q += static_cast<double>(dy[k] * ((x[k] - p[c]) * rt[c] - c0[c]));
        }
        s1[c] = a;
        s2[c] = q;
      }
    });
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < ch; ++c) {
        const T* xr = x + (i * ch + c) * len;
        const T* dyr = dy + (i * ch + c) * len;
        const T pc = p[c], rc = rt[c], cc = c0[c];
        Sum8 a1, a2;
        const auto xhat4 = [&](std::size_t l) { return (load4(xr + l) - pc) * rc - cc; };
        std::size_t l = 0;
        for (; l + kLanes <= len; l += kLanes) {
          const auto d0 = load4(dyr + l), d1 = load4(dyr + l + 4);
          a1.add(d0, d1);
          a2.add(d0 * xhat4(l), d1 * xhat4(l + 4));
        }
        for (std::size_t j = 0; l < len; ++l, ++j) {
          a1.add_lane(j, static_cast<double>(dyr[l]));
          a2.add_lane(j, static_cast<double>(dyr[l] * ((xr[l] - pc) * rc - cc)));
        }
        s1[c] += a1.total();
        s2[c] += a2.total();
      }
    }
  }
  if (!dx) return;
  const double inv_m = 1.0 / static_cast<double>(n * len);
  std::vector<T> A(ch), K1(ch), K2(ch);
  for (std::size_t c = 0; c < ch; ++c) {
    const double a = static_cast<double>(rstd[c]) * (w ? static_cast<double>(w[c]) : 1.0);
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
        dxr[c] = (kAssign ? T(0) : dxr[c]) + (dyr[c] * A[c] - K1[c] - xh * K2[c]);
      }
      continue;
    }
    for (std::size_t c = 0; c < ch; ++c) {
      const std::size_t off = (i * ch + c) * len;
      const T pc = p[c], rc = rt[c], cc = c0[c], ac = A[c], k1 = K1[c], k2 = K2[c];
      for (std::size_t l = 0; l < len; ++l) {
        const T xh = (x[off + l] - pc) * rc - cc;
        dx[off + l] = (kAssign ? T(0) : dx[off + l]) + (dy[off + l] * ac - k1 - xh * k2);
      }
    }
  }
}

}  // namespace

// ---- the entry points: one clone set per scalar type ---------------------------------------

#define TAPEGRAD_NORM_KERNELS(T)                                                                   \
  TAPEGRAD_SIMD_CLONES void layer_norm_forward(T* y, T* mean_hi, T* mean_lo, T* rstd, const T* x,   \
                                               const T* w, const T* b, std::size_t groups,          \
                                               std::size_t dim, double eps) {                       \
    ln_forward<T>(y, mean_hi, mean_lo, rstd, x, w, b, groups, dim, eps);                            \
  }                                                                                                 \
  TAPEGRAD_SIMD_CLONES void layer_norm_backward(T* dx, bool assign_dx, double* dw, double* db,     \
                                                const T* dy, const T* x, const T* w,                \
                                                const T* mean_hi, const T* mean_lo, const T* rstd,  \
                                                std::size_t groups, std::size_t dim) {              \
    /* (if-else, not a lambda: a lambda would not be compiled for the clone's ISA) */            \
    if (w && assign_dx) {                                                                           \
      ln_backward<true, true, T>(dx, dw, db, dy, x, w, mean_hi, mean_lo, rstd, groups, dim);       \
    } else if (w) {                                                                                 \
      ln_backward<true, false, T>(dx, dw, db, dy, x, w, mean_hi, mean_lo, rstd, groups, dim);      \
    } else if (assign_dx) {                                                                         \
      ln_backward<false, true, T>(dx, nullptr, nullptr, dy, x, w, mean_hi, mean_lo, rstd, groups,  \
                                  dim);                                                             \
    } else {                                                                                        \
      ln_backward<false, false, T>(dx, nullptr, nullptr, dy, x, w, mean_hi, mean_lo, rstd, groups, \
                                   dim);                                                            \
    }                                                                                               \
  }                                                                                                 \
  TAPEGRAD_SIMD_CLONES void batch_norm_forward(T* y, std::vector<double>& mean,                     \
                                               std::vector<double>& var, const T* x, const T* w,    \
                                               const T* b, std::size_t n, std::size_t ch,           \
                                               std::size_t len, double eps) {                       \
    bn_forward<T>(y, mean, var, x, w, b, n, ch, len, eps);                                          \
  }                                                                                                 \
  TAPEGRAD_SIMD_CLONES void batch_norm_backward(T* dx, bool assign_dx, double* s1, double* s2,     \
                                                const T* dy, const T* x, const T* w,                \
                                                const T* mean_hi, const T* mean_lo, const T* rstd,  \
                                                std::size_t n, std::size_t ch, std::size_t len) {   \
    if (assign_dx) {                                                                                \
      bn_backward<true, T>(dx, s1, s2, dy, x, w, mean_hi, mean_lo, rstd, n, ch, len);               \
    } else {                                                                                        \
      bn_backward<false, T>(dx, s1, s2, dy, x, w, mean_hi, mean_lo, rstd, n, ch, len);              \
    }                                                                                               \
  }
TAPEGRAD_NORM_KERNELS(float)
TAPEGRAD_NORM_KERNELS(double)
#undef TAPEGRAD_NORM_KERNELS

}  // namespace tapegrad::detail
