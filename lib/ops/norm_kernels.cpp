#include "norm_kernels.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "../core/simd.hpp"

namespace tapegrad::detail {

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
// partials are double, as before.
//
// Determinism: every sum has a fixed order of additions. Element i of a block goes to lane
// i % (lanes) of GCC vector types of a fixed width (Vec below, 32 bytes), whatever the ISA;
// the lanes are converted and added to the double totals lane-wise in a fixed order, and
// reduced in lane order at the end. Each kernel is compiled twice (TAPEGRAD_SIMD_CLONES:
// baseline x86-64 and AVX2, chosen at load time) and both give bitwise the same results:
// neither target enables FMA, so GCC cannot contract a * b + c (its default
// -ffp-contract=fast for C++ only acts where an FMA instruction exists). Not an AVX-512F clone:
// GCC's avx512f target brings FMA instructions with it and contracts, changing the last bits.

namespace {

#if defined(__GNUC__) && !defined(__clang__)
// The helpers passing vectors are inlined internal functions: GCC's -Wpsabi note about
// passing such vectors between separately compiled functions does not apply to them.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif
typedef float F8 __attribute__((vector_size(32)));
typedef double D4 __attribute__((vector_size(32)));
typedef double D8 __attribute__((vector_size(64)));
// Vec<T>: 32 bytes of T; Wide<T>: the same lanes in double (block partials become totals).
template <class T>
struct Lanes;
template <>
struct Lanes<float> {
  using vec = F8;
  using wide = D8;
};
template <>
struct Lanes<double> {
  using vec = D4;
  using wide = D4;
};
template <class T>
using Vec = typename Lanes<T>::vec;
template <class T>
using Wide = typename Lanes<T>::wide;
template <class T>
constexpr std::size_t kW = 32 / sizeof(T);  // lanes of a Vec

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
template <class T>
TAPEGRAD_ALWAYS_INLINE Wide<T> widen(const Vec<T>& v) {
  return __builtin_convertvector(v, Wide<T>);
}
// s[0 .. kW) += the lanes of v, in double.
template <class T>
TAPEGRAD_ALWAYS_INLINE void add_lanes_to(double* s, const Vec<T>& v) {
  Wide<T> t;
  std::memcpy(&t, s, sizeof t);
  t += widen<T>(v);
  std::memcpy(s, &t, sizeof t);
}
template <class T>
TAPEGRAD_ALWAYS_INLINE double lane_sum(const Wide<T>& t) {
  double s = 0;
  for (std::size_t j = 0; j < kW<T>; ++j) s += t[j];
  return s;
}

// Row sums in blocks: kU accumulators of kW lanes (independent additions hide the adder's
// latency); element i of a block goes to lane i % (kU kW). A block's partials are added to
// the double totals by add_block; total() reduces them in lane order.
template <class T, std::size_t kU>
struct BlockSums {
  static constexpr std::size_t kChunk = kU * kW<T>;
  Vec<T> a[kU] = {}, q[kU] = {};
  Wide<T> ta = {}, tq = {};
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
      ta += widen<T>(a[u]);
      tq += widen<T>(q[u]);
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
void save_mean(T* hi, T* lo, double mean) {
  *hi = static_cast<T>(mean);
  *lo = static_cast<T>(mean - static_cast<double>(*hi));
}

constexpr std::size_t kBlock = 256;      // values of a row per block (a multiple of kChunk)
constexpr std::size_t kFlushRows = 16;   // LayerNorm rows per float dw, db partial
constexpr std::size_t kRowBlock = 16;    // BatchNorm rows per float partial of a channel

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

// ---- LayerNorm -----------------------------------------------------------------------------
// Forward, per group of D values:
//   mean = (1/D) sum_i x_i,  var = (1/D) sum_i (x_i - mean)^2,  rstd = 1 / sqrt(var + eps)
//   xhat_i = (x_i - mean) rstd,  y_i = xhat_i w_i + b_i          (w = 1, b = 0 without affine)
// One pass for the shifted sums, one (from L1) writing y.
template <class T>
TAPEGRAD_ALWAYS_INLINE void ln_forward(T* y, T* mean_hi, T* mean_lo, T* rstd, const T* x, const T* w,
                                       const T* b, std::size_t groups, std::size_t dim, double eps) {
  for (std::size_t g = 0; g < groups; ++g) {
    const T* xg = x + g * dim;
    T* yg = y + g * dim;
    const T p = xg[0];
    double s1 = 0, s2 = 0, md = 0, var = 0;
    shifted_sums(xg, dim, p, s1, s2);
    stats(s1, s2, 1.0 / static_cast<double>(dim), md, var);
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

template <bool kAffine, bool kParams, bool kAssign, class T>
TAPEGRAD_ALWAYS_INLINE void ln_backward(T* dx, double* dw, double* db, const T* dy, const T* x,
                                        const T* w, const T* mean_hi, const T* mean_lo,
                                        const T* rstd, std::size_t groups, std::size_t dim) {
  std::vector<T>& dwf = scratch<T>(8);
  std::vector<T>& dbf = scratch<T>(9);
  dwf.assign(kParams ? dim : 0, T(0));
  dbf.assign(kParams ? dim : 0, T(0));
  const double inv_d = 1.0 / static_cast<double>(dim);
  for (std::size_t g = 0; g < groups; ++g) {
    const T* xg = x + g * dim;
    const T* dyg = dy + g * dim;
    const Xhat<T> xh(xg, xg[0], mean_hi[g], mean_lo[g], rstd[g]);
    double a1 = 0, a2 = 0;
    grad_sums<kAffine, kParams>(dyg, xh, w, dwf.data(), dbf.data(), dim, a1, a2);
    if (kParams && (g % kFlushRows == kFlushRows - 1 || g + 1 == groups)) {
      flush_params(dw, db, dwf.data(), dbf.data(), dim);
    }
    if (!dx) continue;
    // dL/dx = dxhat rstd - rstd mean(dxhat) - xhat rstd mean(dxhat xhat)
    const T rt = xh.rt, p = xh.p, c = xh.c;
    const double r = static_cast<double>(rt);
    const T k1 = static_cast<T>(r * a1 * inv_d), k2 = static_cast<T>(r * a2 * inv_d);
    T* dxg = dx + g * dim;
    for (std::size_t k = 0; k < dim; ++k) {
      const T dxh = kAffine ? dyg[k] * w[k] : dyg[k];
      const T xv = (xg[k] - p) * rt - c;
      dxg[k] = (kAssign ? T(0) : dxg[k]) + (dxh * rt - k1 - xv * k2);
    }
  }
}

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
TAPEGRAD_ALWAYS_INLINE void column_sums_at(std::size_t c, const T* dy, const T* x, const T* p,
                                           const T* rt, const T* c0, std::size_t rows,
                                           std::size_t ch, double* s1, double* s2) {
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
TAPEGRAD_ALWAYS_INLINE void column_sums(const T* dy, const T* x, const T* p, const T* rt,
                                        const T* c0, std::size_t rows, std::size_t ch,
                                        double* s1, double* s2) {
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

template <class T>
TAPEGRAD_ALWAYS_INLINE void bn_forward(T* y, std::vector<double>& mean, std::vector<double>& var,
                                       const T* x, const T* w, const T* b, std::size_t n,
                                       std::size_t ch, std::size_t len, double eps) {
  std::vector<double>& s1 = scratch<double>(4);
  std::vector<double>& s2 = scratch<double>(5);
  std::vector<T>& p = scratch<T>(8);
  std::vector<T>& A = scratch<T>(9);
  std::vector<T>& B = scratch<T>(10);
  s1.assign(ch, 0.0);
  s2.assign(ch, 0.0);
  A.resize(ch);
  B.resize(ch);
  p.resize(ch);
  for (std::size_t c = 0; c < ch; ++c) p[c] = x[c * len];
  if (len == 1) {
    for (std::size_t i = 0; i < n; i += kRowBlock) {
      column_sums<false>(static_cast<const T*>(nullptr), x + i * ch, p.data(), static_cast<const T*>(nullptr),
                         static_cast<const T*>(nullptr), std::min(kRowBlock, n - i), ch, s1.data(), s2.data());
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
  std::vector<T>& p = scratch<T>(8);
  std::vector<T>& rt = scratch<T>(9);
  std::vector<T>& c0 = scratch<T>(10);
  p.resize(ch);
  rt.resize(ch);
  c0.resize(ch);
  for (std::size_t c = 0; c < ch; ++c) {
    const Xhat<T> xh(nullptr, x[c * len], mean_hi[c], mean_lo[c], rstd[c]);
    p[c] = xh.p;
    rt[c] = xh.rt;
    c0[c] = xh.c;
  }
  if (len == 1) {
    for (std::size_t i = 0; i < n; i += kRowBlock) {
      column_sums<true>(dy + i * ch, x + i * ch, p.data(), rt.data(), c0.data(),
                        std::min(kRowBlock, n - i), ch, s1, s2);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) {
      for (std::size_t c = 0; c < ch; ++c) {
        const std::size_t off = (i * ch + c) * len;
        Xhat<T> xh(nullptr, p[c], mean_hi[c], mean_lo[c], rstd[c]);
        xh.x = x + off;
        double a1 = 0, a2 = 0;
        grad_sums<false, false>(dy + off, xh, static_cast<const T*>(nullptr), static_cast<T*>(nullptr),
                                static_cast<T*>(nullptr), len, a1, a2);
        s1[c] += a1;
        s2[c] += a2;
      }
    }
  }
  if (!dx) return;
  const double inv_m = 1.0 / static_cast<double>(n * len);
  std::vector<T>& A = scratch<T>(11);
  std::vector<T>& K1 = scratch<T>(12);
  std::vector<T>& K2 = scratch<T>(13);
  A.resize(ch);
  K1.resize(ch);
  K2.resize(ch);
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
// (if-else dispatch to the template instances, not lambdas: a lambda would not be compiled
// for the clone's ISA)

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
    if (w && dw && assign_dx) {                                                                     \
      ln_backward<true, true, true, T>(dx, dw, db, dy, x, w, mean_hi, mean_lo, rstd, groups, dim); \
    } else if (w && dw) {                                                                           \
      ln_backward<true, true, false, T>(dx, dw, db, dy, x, w, mean_hi, mean_lo, rstd, groups, dim);\
    } else if (w && assign_dx) {                                                                    \
      ln_backward<true, false, true, T>(dx, dw, db, dy, x, w, mean_hi, mean_lo, rstd, groups, dim);\
    } else if (w) {                                                                                 \
      ln_backward<true, false, false, T>(dx, dw, db, dy, x, w, mean_hi, mean_lo, rstd, groups,     \
                                         dim);                                                      \
    } else if (assign_dx) {                                                                         \
      ln_backward<false, false, true, T>(dx, nullptr, nullptr, dy, x, w, mean_hi, mean_lo, rstd,   \
                                         groups, dim);                                              \
    } else {                                                                                        \
      ln_backward<false, false, false, T>(dx, nullptr, nullptr, dy, x, w, mean_hi, mean_lo, rstd,  \
                                          groups, dim);                                             \
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
