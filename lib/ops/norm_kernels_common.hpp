#pragma once
// Internal to the normalization kernels: what layer_norm_kernels.cpp and
// batch_norm_kernels.cpp share. The precision analysis below holds for both; then the 32-byte
// vector types, block sums (in T, flushed to double totals), the statistics from shifted sums,
// xhat as the forward computes it, and the gradient sums of a row (LayerNorm's backward pass 1,
// also BatchNorm's per-run sums for L > 1). The helpers that touch data are
// TAPEGRAD_ALWAYS_INLINE: the kernels are compiled once per ISA (lib/core/simd.hpp), and a
// helper must be inlined into each clone to run with its instruction set.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#include "../core/simd.hpp"
#include "norm_kernels.hpp"
#include "tapegrad/core/grad_write.hpp"

namespace tapegrad::detail::norm_impl {
// Unnamed: each kernel file gets its own internal copy of the helpers, as when the kernels
// were one file; GCC then compiles them to the same instructions (with external linkage its
// inlining choices differ, and the order of register moves and additions with them).
namespace {

// ---- precision -----------------------------------------------------------------------------
// Statistics are sums over shifted values d = x - p, where the pivot p is the group's
// (channel's) first element:
//   md = mean(d),  var = mean(d^2) - md^2,  mean = p + md,  rstd = 1 / sqrt(var + eps)
// This is E[x^2] - E[x]^2 made safe: p is one of the values, so |md| = |mean - p| is at most
// sqrt(D) std, and the cancellation in mean(d^2) - md^2 costs at most a factor 1 + md^2/var
// (~2 typically, D at worst) of the sums' relative precision. One pass over the data suffices.
// The per-element work runs in T, also with the pivot:
//   xhat = (x - mean) rstd = (x - p) rstd - md rstd
// x - p is exact in float when x and p are close (the large-offset case: 1e4 + 1e-2 z), and
// T(md rstd) is at most sqrt(D) in size, so xhat has an absolute error of a few float
// epsilons times sqrt(D) at worst, where float math on x - T(mean) would be off by
// spacing(1e4) * rstd ~ 0.1. The mean itself is saved as mean_hi + mean_lo (two T values
// whose double sum restores it to ~1e-11).
//
// Block sums. Summing millions of values one by one in float would not do (64 floats near 1e4
// sum to ~6.4e5, where float's spacing is 0.06, against a std of 0.01), and converting every
// value to double costs half the speed. So sums run in T over BLOCKS, and each block's partial
// sums are converted to double and added to double totals:
//   LayerNorm: a lane of a vector accumulator adds kBlock / (lanes) = 8 (forward) or 16
//              (backward) values of a row; dw, db: kFlushRows = 16 rows per column;
//   BatchNorm: kRowBlock = 16 rows per channel.
// A float sum of k terms is off by at most k u sum|term| (u = 2^-24; ~sqrt(k) u typically),
// so the partials carry relative errors of ~1e-6 of the sum of |d| over k <= 16 values, the
// same order as the rounding of the float inputs and outputs themselves: with d = x - p small
// there is no large offset for the partial sums to lose digits against. The totals over all
// blocks are double, so the row (column) length does not add float error. For T = double the
// partials are double too.
//
// Determinism: every sum has a fixed order of additions. Element i of a block goes to lane
// i % (lanes) of GCC vector types of a fixed width (Vec below, 32 bytes), whatever the ISA;
// the lanes are converted and added to the double totals lane-wise in a fixed order, and
// reduced in lane order at the end. Each kernel is compiled twice (TAPEGRAD_SIMD_CLONES:
// baseline x86-64 and AVX2, chosen at load time) and both give bitwise the same results:
// neither target enables FMA, so GCC cannot contract a * b + c (its default
// -ffp-contract=fast for C++ only acts where an FMA instruction exists). GCC's avx512f target
// brings FMA instructions with it, so LayerNorm's kernels, which have an AVX-512F clone as well
// (TAPEGRAD_SIMD_CLONES_512: its elementwise passes run 16 lanes wide; the sums keep the 32-byte
// Vec lanes), are compiled with -ffp-contract=off (CMakeLists.txt); the three clones then give
// bitwise the same y, dx, dw and db (checked over float and double, wide and tail cases).

// ---- range ---------------------------------------------------------------------------------
// The float sums above hold while d^2 stays inside float's normal range. It overflows for
// |d| > 1.8e19 (d itself for a spread beyond FLT_MAX), which makes var inf and the group's
// output 0; and it loses digits below FLT_MIN = 1.2e-38 (|d| < 1.1e-19), which matters only
// when var + eps is that small as well (eps = 0 and subnormal spreads: rstd then exceeds
// FLT_MAX). needs_wide catches both after the float pass: the float sum of squares is not
// finite, or var + eps < 2^-96 (above it a subnormal square's absolute error, at most 2^-150,
// is below 1e-16 of var + eps). Such a float group is then computed again in double, two-pass
// with the same pivot (a float's square, at most 1.2e77 and at least 2e-90, is in double's
// normal range), and written from double; it stays the exact formula, eps included. Its rstd,
// which float may not hold, is saved as mantissa and exponent (rstd_exponent in
// norm_kernels.hpp) and the backward pass computes it in double as well. Data in float's
// usual range never takes this path; the check costs two comparisons per group. For T =
// double the limits are double's (|d| > 1e154), and there is no wider type to fall back to.
constexpr double kTinyVarEps = 0x1p-96;
template <class T>
bool needs_wide(double s2, double var, double eps) {
  if constexpr (std::is_same_v<T, float>) {
    return !std::isfinite(s2) || var + eps < kTinyVarEps;
  } else {
    return false;
  }
}

// Calls f(k) for the M = N L elements k = (i C + c) L + l of channel c of an (N, C, L) buffer
// (a LayerNorm group: N = C = 1, c = 0, L = D).
template <class F>
void for_channel(std::size_t n, std::size_t ch, std::size_t len, std::size_t c, F&& f) {
  for (std::size_t i = 0; i < n; ++i) {
    const std::size_t off = (i * ch + c) * len;
    for (std::size_t l = 0; l < len; ++l) f(off + l);
  }
}

// A group's statistics in double, two-pass about the pivot p (its first element):
// md = mean - p, var = mean((x - p - md)^2), xhat = (x - p - md) r.
struct WideStats {
  double p = 0, md = 0, var = 0;
  double xhat(double x, double r) const { return ((x - p) - md) * r; }
};
template <class T>
WideStats wide_stats(const T* x, std::size_t n, std::size_t ch, std::size_t len, std::size_t c) {
  WideStats w;
  w.p = static_cast<double>(x[c * len]);
  const double inv_m = 1.0 / static_cast<double>(n * len);
  double s = 0, q = 0;
  for_channel(n, ch, len, c, [&](std::size_t k) { s += static_cast<double>(x[k]) - w.p; });
  w.md = s * inv_m;
  for_channel(n, ch, len, c, [&](std::size_t k) {
    const double d = (static_cast<double>(x[k]) - w.p) - w.md;
    q += d * d;
  });
  w.var = q * inv_m;
  return w;
}
// The statistics of a saved wide group in double (norm_kernels.hpp): pivot mean_hi,
// md = mean_lo / rstd, rstd = rstd_saved 2^e.
template <class T>
WideStats saved_stats(T mean_hi, T mean_lo, T rstd, std::ptrdiff_t e, double& r) {
  WideStats w;
  r = std::ldexp(static_cast<double>(rstd), static_cast<int>(e));
  w.p = static_cast<double>(mean_hi);
  w.md = static_cast<double>(mean_lo) / r;
  return w;
}

#if defined(__GNUC__) && !defined(__clang__)
// The helpers passing vectors are inlined internal functions: GCC's -Wpsabi note about
// passing such vectors between separately compiled functions does not apply to them.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float F8 __attribute__((vector_size(32)));
typedef double D4 __attribute__((vector_size(32)));
typedef double D8 __attribute__((vector_size(64)));
// Vec<T>: 32 bytes of T. Wide<T>: the same lanes in double (block partials become totals), as
// D4 quarters: lanes 0-3 in q[0], 4-7 in q[1] (a D8 total would live in memory on AVX2, its
// halves moved through general registers at every block).
template <class T>
struct Lanes;
template <>
struct Lanes<float> {
  using vec = F8;
};
template <>
struct Lanes<double> {
  using vec = D4;
};
template <class T>
using Vec = typename Lanes<T>::vec;
template <class T>
constexpr std::size_t kW = 32 / sizeof(T);  // lanes of a Vec
template <class T>
struct Wide {
  D4 q[kW<T> / 4] = {};
};

template <class T>
TAPEGRAD_ALWAYS_INLINE Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
template <class T>
TAPEGRAD_ALWAYS_INLINE void store(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof v);
}
// t += the lanes of v, in double.
template <class T>
TAPEGRAD_ALWAYS_INLINE void add_wide(Wide<T>& t, const Vec<T>& v) {
  if constexpr (std::is_same_v<T, float>) {
    const D8 d = __builtin_convertvector(v, D8);
    D4 h[2];
    std::memcpy(h, &d, sizeof h);
    t.q[0] += h[0];
    t.q[1] += h[1];
  } else {
    t.q[0] += v;
  }
}
// s[0 .. kW) += the lanes of v, in double (totals in memory: one D8 load, add and store).
template <class T>
TAPEGRAD_ALWAYS_INLINE void add_lanes_to(double* s, const Vec<T>& v) {
  using W = std::conditional_t<std::is_same_v<T, float>, D8, D4>;
  W t;
  std::memcpy(&t, s, sizeof t);
  t += __builtin_convertvector(v, W);
  std::memcpy(s, &t, sizeof t);
}
template <class T>
TAPEGRAD_ALWAYS_INLINE double lane_sum(const Wide<T>& t) {
  double s = 0;
  for (std::size_t j = 0; j < kW<T>; ++j) s += t.q[j / 4][j % 4];
  return s;
}

// Row sums in blocks: kU accumulators of kW lanes (independent additions hide the adder's
// latency); element i of a block goes to lane i % (kU kW). A block's partials are added to
// the double totals by add_block; total() reduces them in lane order.
template <class T, std::size_t kU>
struct BlockSums {
  static constexpr std::size_t kChunk = kU * kW<T>;
  Vec<T> a[kU] = {}, q[kU] = {};
  Wide<T> ta, tq;
  TAPEGRAD_ALWAYS_INLINE void add(std::size_t u, const Vec<T>& va, const Vec<T>& vq) {
    a[u] += va;
    q[u] += vq;
  }
  // The tail of a row (fewer than kChunk values) as zero-padded arrays.
  TAPEGRAD_ALWAYS_INLINE void add_padded(const T* pa, const T* pq) {
    for (std::size_t u = 0; u < kU; ++u) add(u, load(pa + u * kW<T>), load(pq + u * kW<T>));
  }
  TAPEGRAD_ALWAYS_INLINE void add_block() {
    for (std::size_t u = 0; u < kU; ++u) {
      add_wide<T>(ta, a[u]);
      add_wide<T>(tq, q[u]);
      a[u] = Vec<T>{};
      q[u] = Vec<T>{};
    }
  }
  TAPEGRAD_ALWAYS_INLINE double total_a() const { return lane_sum<T>(ta); }
  TAPEGRAD_ALWAYS_INLINE double total_q() const { return lane_sum<T>(tq); }
};

// From the shifted sums of 1 / inv_m values: md = mean - p and var (clamped at 0 against
// rounding). Multiplications, not divisions: BatchNorm does this per channel, and divisions
// and square roots share one slow unit.
inline void stats(double s1, double s2, double inv_m, double& md, double& var) {
  md = s1 * inv_m;
  var = std::max(s2 * inv_m - md * md, 0.0);
}

template <class T>
inline void save_mean(T* hi, T* lo, double mean) {
  *hi = static_cast<T>(mean);
  *lo = static_cast<T>(mean - static_cast<double>(*hi));
}

constexpr std::size_t kBlock = 256;     // values of a row per block (a multiple of kChunk)
constexpr std::size_t kFlushRows = 16;  // LayerNorm rows per float dw, db partial
constexpr std::size_t kRowBlock = 16;   // BatchNorm rows per float partial of a channel

// s1 = sum d, s2 = sum d^2 over n values d = x[i] - p (x - p in T, see above).
template <class T>
TAPEGRAD_ALWAYS_INLINE void shifted_sums(const T* x, std::size_t n, T p, double& s1, double& s2) {
  using S = BlockSums<T, 4>;
  S s;
  std::size_t i = 0;
  while (i < n) {
    const std::size_t end = std::min(n, i + kBlock);
    for (; i + S::kChunk <= end; i += S::kChunk) {
      for (std::size_t u = 0; u < 4; ++u) {
        const Vec<T> d = load(x + i + u * kW<T>) - p;
        s.add(u, d, d * d);
      }
    }
    if (i < end) {
      T pa[S::kChunk] = {}, pq[S::kChunk] = {};
      for (std::size_t j = 0; i < end; ++i, ++j) {
        pa[j] = x[i] - p;
        pq[j] = pa[j] * pa[j];
      }
      s.add_padded(pa, pq);
    }
    s.add_block();
  }
  s1 = s.total_a();
  s2 = s.total_q();
}

// xhat of a group (channel) as in the forward: xhat = (x - p) rt - c, with p its first value,
// rt = T(rstd) and c = T((mean - p) rstd); x points at the values to normalize.
template <class T>
struct Xhat {
  const T* x;
  T p, rt, c;
  Xhat(const T* xs, T pivot, T mean_hi, T mean_lo, T rstd) : x(xs), p(pivot), rt(rstd) {
    const double md = (static_cast<double>(mean_hi) - static_cast<double>(p)) + mean_lo;
    c = static_cast<T>(md * static_cast<double>(rstd));
  }
  TAPEGRAD_ALWAYS_INLINE T operator()(std::size_t i) const { return (x[i] - p) * rt - c; }
  TAPEGRAD_ALWAYS_INLINE Vec<T> vec(std::size_t i) const { return (load(x + i) - p) * rt - c; }
};

// From LayerNorm's backward (its math: layer_norm_kernels.cpp).
// Pass 1 over n values (kAffine: dxhat = dy w, else dy). Also BatchNorm's per-run sums (L > 1).
template <bool kAffine, bool kParams, class T>
TAPEGRAD_ALWAYS_INLINE void grad_sums(const T* dy, const Xhat<T>& xh, const T* w, T* dwf, T* dbf,
                                      std::size_t n, double& a1, double& a2) {
  using S = BlockSums<T, 2>;
  S s;
  std::size_t i = 0;
  while (i < n) {
    const std::size_t end = std::min(n, i + kBlock);
    for (; i + S::kChunk <= end; i += S::kChunk) {
      for (std::size_t u = 0; u < 2; ++u) {
        const std::size_t k = i + u * kW<T>;
        const Vec<T> d = load(dy + k), xv = xh.vec(k);
        Vec<T> g = d;
        if constexpr (kAffine) g *= load(w + k);
        s.add(u, g, g * xv);
        if constexpr (kParams) {
          store(dwf + k, load(dwf + k) + d * xv);
          store(dbf + k, load(dbf + k) + d);
        }
      }
    }
    if (i < end) {
      T pa[S::kChunk] = {}, pq[S::kChunk] = {};
      for (std::size_t j = 0; i < end; ++i, ++j) {
        const T d = dy[i], xv = xh(i);
        T g = d;
        if constexpr (kAffine) g *= w[i];
        pa[j] = g;
        pq[j] = g * xv;
        if constexpr (kParams) {
          dwf[i] += d * xv;
          dbf[i] += d;
        }
      }
      s.add_padded(pa, pq);
    }
    s.add_block();
  }
  a1 = s.total_a();
  a2 = s.total_q();
}

}  // namespace
}  // namespace tapegrad::detail::norm_impl
