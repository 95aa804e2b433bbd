// The fused LayerNorm kernels: forward and backward over raw buffers, declared in
// norm_kernels.hpp. Their precision analysis and shared helpers: norm_kernels_common.hpp.
#include <cmath>
#include <cstdint>
#include <initializer_list>
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

// The elementwise passes write a row in two loops: its first `head` values one by one, until
// the output is 64-byte aligned (a cache line, and the AVX-512 clone's vector), then the rest,
// vectorized. A vector store split across two cache lines costs about half again, and tensors
// of 1 MiB and more sit 16 bytes past a page boundary (glibc's mmap chunks); inputs at the same
// distance from a boundary are then aligned too. Each value is computed as in one loop.
template <class T>
std::size_t aligned_head(const T* out, std::size_t n) {
  const std::size_t mis = reinterpret_cast<std::uintptr_t>(out) % 64;
  return mis % sizeof(T) ? 0 : std::min(n, (64 - mis) % 64 / sizeof(T));
}

// Whether an elementwise pass writing `out` should run from the end of the row down: a load
// whose address agrees in its low 12 bits with a store still pending waits for that store (4 KiB
// aliasing). Running up, the loads of an input a little below the output modulo 4 KiB meet the
// stores just made; running down, those of an input a little above. The direction whose
// nearest such input is farther wins: the tensors of a step often sit within a few hundred
// bytes of each other modulo 4 KiB, the output above its inputs. The direction changes no value.
inline std::size_t page_offset(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 4096; }
template <class T>
bool runs_down(const T* out, const T* in0, const T* in1, const T* in2) {
  std::size_t up = 4096, down = 4096;
  for (const T* in : {in0, in1, in2}) {
    const std::size_t d = in ? (page_offset(out) + 4096 - page_offset(in)) % 4096 : 0;
    if (d != 0) {
      up = std::min(up, d);
      down = std::min(down, 4096 - d);
    }
  }
  return down > up;
}

// A group's statistics from its shifted sums (pass 1); `wide` when it must be computed in
// double. Otherwise xhat = (x - p) rt - c with rt = T(r), c = T(md r).
template <class T>
struct FwdStats {
  T p = 0, rt = 0, c = 0;
  double md = 0, r = 0;
  bool wide = false;
};
template <class T>
TAPEGRAD_ALWAYS_INLINE FwdStats<T> fwd_stats(const T* xg, std::size_t dim, double eps) {
  FwdStats<T> s;
  s.p = xg[0];
  double s1 = 0, s2 = 0, var = 0;
  shifted_sums(xg, dim, s.p, s1, s2);
  stats(s1, s2, 1.0 / static_cast<double>(dim), s.md, var);
  s.wide = needs_wide<T>(s2, var, eps);
  if (s.wide) return s;
  s.r = 1.0 / std::sqrt(var + eps);
  s.rt = static_cast<T>(s.r);
  s.c = static_cast<T>(s.md * s.r);
  return s;
}

// One row's y values (pass 2): xhat = (x - p) rt - c, y = xhat w + b (kAffine) or xhat, one by
// one or by vectors (the same operations).
template <bool kAffine, class T>
struct YRow {
  T* y;
  const T *x, *w, *b;
  T p, rt, c;
  TAPEGRAD_ALWAYS_INLINE void at(std::size_t i) const {
    const T xh = (x[i] - p) * rt - c;
    if constexpr (kAffine) {
      y[i] = xh * w[i] + b[i];
    } else {
      y[i] = xh;
    }
  }
  TAPEGRAD_ALWAYS_INLINE void vec(std::size_t i) const {
    const Vec<T> xh = (load(x + i) - p) * rt - c;
    if constexpr (kAffine) {
      store(y + i, xh * load(w + i) + load(b + i));
    } else {
      store(y + i, xh);
    }
  }
};

// A row up from the aligned head (GCC vectorizes the loop), or down by vectors (runs_down).
// Row is YRow or DxRow (below): at(i) writes value i, vec(i) the kW<T> values from i; `out` is
// what they write, in0..in2 what they read (null: nothing).
template <class Row, class T>
TAPEGRAD_ALWAYS_INLINE void write_row(const Row& row, const T* out, std::size_t dim, const T* in0,
                                      const T* in1, const T* in2) {
  const std::size_t head = aligned_head(out, dim);
  for (std::size_t i = 0; i < head; ++i) row.at(i);
  if (!runs_down(out, in0, in1, in2)) {
    for (std::size_t i = head; i < dim; ++i) row.at(i);
    return;
  }
  const std::size_t mid = dim - (dim - head) % kW<T>;
  for (std::size_t i = mid; i < dim; ++i) row.at(i);
  for (std::size_t i = mid; i > head;) row.vec(i -= kW<T>);
}
template <bool kAffine, class T>
TAPEGRAD_ALWAYS_INLINE void write_y(const YRow<kAffine, T>& row, std::size_t dim) {
  write_row(row, row.y, dim, row.x, row.w, row.b);
}

// Pass 2 of group g: writes y and saves the statistics.
template <class T>
TAPEGRAD_ALWAYS_INLINE void fwd_write(const FwdStats<T>& s, T* y, T* mean_hi, T* mean_lo, T* rstd,
                                      std::vector<std::ptrdiff_t>* wide, const T* x, const T* w, const T* b,
                                      std::size_t g, std::size_t dim, double eps) {
  const T* xg = x + g * dim;
  T* yg = y + g * dim;
  if (s.wide) {
    ln_forward_wide(yg, mean_hi, mean_lo, rstd, wide, xg, w, b, g, dim, eps);
    return;
  }
  if (w) {
    write_y(YRow<true, T>{yg, xg, w, b, s.p, s.rt, s.c}, dim);
  } else {
    write_y(YRow<false, T>{yg, xg, w, b, s.p, s.rt, s.c}, dim);
  }
  if (rstd) {
    save_mean(mean_hi + g, mean_lo + g, static_cast<double>(s.p) + s.md);
    rstd[g] = static_cast<T>(s.r);
  }
}

template <class T>
TAPEGRAD_ALWAYS_INLINE void ln_forward(T* y, T* mean_hi, T* mean_lo, T* rstd,
                                       std::vector<std::ptrdiff_t>* wide, const T* x, const T* w, const T* b,
                                       std::size_t groups, std::size_t dim, double eps) {
  for (std::size_t g = 0; g < groups; ++g) {
    fwd_write(fwd_stats(x + g * dim, dim, eps), y, mean_hi, mean_lo, rstd, wide, x, w, b, g, dim, eps);
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
// pass 2 writes dx from L1. Pass 1 is grad_sums (norm_kernels_common.hpp: BatchNorm uses it
// too). Pass 2 expands xhat = (x - p) rt - c (the forward's, see Xhat) in the last term: with
// k1 = rt a1 / D and k2 = rt a2 / D in double,
//   dL/dx = dxhat rt - k1 - xhat k2 = dxhat rt - (x - p) m + k0,   m = T(rt k2), k0 = T(c k2 - k1)
// a subtraction and a multiplication fewer per value than forming xhat first, and as
// accurate: the terms it rounds, (x - p) m and k0, are at most |xhat k2| + |c k2| in size, as
// xhat's own rounding (a few float epsilons of |c| <= sqrt(D)) was, times k2.

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

// One row's dx values (pass 2): dL/dx = dxhat rt - (x - p) m + k0 (above), one by one or by
// vectors (the same operations), written with beta as beta_add does.
template <bool kAffine, class T>
struct DxRow {
  T* dx;
  T beta;
  const T *dy, *w, *x;
  T rt, p, m, k0;
  TAPEGRAD_ALWAYS_INLINE void at(std::size_t k) const {
    const T dxh = kAffine ? dy[k] * w[k] : dy[k];
    dx[k] = beta_add(beta, dx[k], dxh * rt - (x[k] - p) * m + k0);
  }
  TAPEGRAD_ALWAYS_INLINE void vec(std::size_t k) const {
    Vec<T> dxh = load(dy + k);
    if constexpr (kAffine) dxh *= load(w + k);
    const Vec<T> v = dxh * rt - (load(x + k) - p) * m + k0;
    store(dx + k, (beta == T(0) ? Vec<T>{} : load(dx + k)) + v);
  }
};

// Pass 2 of a row: up from the aligned head (GCC vectorizes the loop), or down by vectors.
template <bool kAffine, class T>
TAPEGRAD_ALWAYS_INLINE void write_dx(T* dx, T beta, const T* dy, const Xhat<T>& xh, const T* w, double a1,
                                     double a2, std::size_t dim) {
  const double r = static_cast<double>(xh.rt), inv_d = 1.0 / static_cast<double>(dim);
  const double k1 = r * a1 * inv_d, k2 = r * a2 * inv_d;
  const T m = static_cast<T>(r * k2), k0 = static_cast<T>(static_cast<double>(xh.c) * k2 - k1);
  const DxRow<kAffine, T> row{dx, beta, dy, w, xh.x, xh.rt, xh.p, m, k0};
  write_row(row, dx, dim, dy, kAffine ? w : nullptr, xh.x);
}

// The buffers of a backward call, and the float partials of dw and db (kParams).
template <class T>
struct LnBackward {
  T* dx;
  T beta;
  double *dw, *db;
  const T *dy, *x, *w, *mean_hi, *mean_lo, *rstd;
  const std::ptrdiff_t *wide, *wide_end;
  std::size_t groups, dim;
  T *dwf, *dbf;
  Xhat<T> xhat(std::size_t g) const {
    const T* xg = x + g * dim;
    return Xhat<T>(xg, xg[0], mean_hi[g], mean_lo[g], rstd[g]);
  }
};

// Both passes of row g: in double when the forward listed it as wide (a.wide is then at its
// pair), else grad_sums and write_dx.
template <bool kAffine, bool kParams, class T>
TAPEGRAD_ALWAYS_INLINE void backward_row(LnBackward<T>& a, std::size_t g) {
  const std::size_t off = g * a.dim;
  T* dx = a.dx ? a.dx + off : nullptr;
  if (a.wide != a.wide_end && static_cast<std::size_t>(a.wide[0]) == g) {
    ln_backward_wide<kAffine, kParams>(dx, a.beta, a.dw, a.db, a.dy + off, a.x + off, a.w, a.mean_hi[g],
                                       a.mean_lo[g], a.rstd[g], a.wide[1], a.dim);
    a.wide += 2;
    return;
  }
  const Xhat<T> xh = a.xhat(g);
  double a1 = 0, a2 = 0;
  grad_sums<kAffine, kParams>(a.dy + off, xh, a.w, a.dwf, a.dbf, a.dim, a1, a2);
  if (dx) write_dx<kAffine>(dx, a.beta, a.dy + off, xh, a.w, a1, a2, a.dim);
}

// The float partials of dw and db, zeroed: 64-byte aligned (a partial split across cache lines
// costs its loads and stores about half again), and dbf half a page away from dwf modulo 4 KiB,
// so that no load of one partial seems to alias the store just made to the other.
template <class T>
void partials(T*& dwf, T*& dbf, std::size_t dim) {
  constexpr std::size_t kPage = 4096 / sizeof(T), kAlign = 64 / sizeof(T);
  const std::size_t off = (dim + kPage - 1) / kPage * kPage + kPage / 2;
  thread_local std::vector<T> buf;
  buf.assign(off + dim + kAlign, T(0));
  const std::size_t mis = reinterpret_cast<std::uintptr_t>(buf.data()) % 64 / sizeof(T);
  dwf = buf.data() + (mis ? kAlign - mis : 0);
  dbf = dwf + off;
}

// Row by row; the float partials are flushed to dw, db every kFlushRows rows and at the end.
template <bool kAffine, bool kParams, class T>
TAPEGRAD_ALWAYS_INLINE void ln_backward(LnBackward<T> a) {
  if constexpr (kParams) partials(a.dwf, a.dbf, a.dim);
  for (std::size_t g = 0; g < a.groups; ++g) {
    backward_row<kAffine, kParams>(a, g);
    if (kParams && (g % kFlushRows == kFlushRows - 1 || g + 1 == a.groups)) {
      flush_params(a.dw, a.db, a.dwf, a.dbf, a.dim);
    }
  }
}

}  // namespace

// ---- the entry points: one clone set per scalar type ---------------------------------------
// (if-else dispatch to the template instances, not lambdas: a lambda would not be compiled
// for the clone's ISA). Baseline, AVX2 and AVX-512F clones: the file is compiled with
// -ffp-contract=off, so that none of them contracts into FMA (norm_kernels_common.hpp).

#define TAPEGRAD_LAYER_NORM_KERNELS(T)                                                                  \
  TAPEGRAD_SIMD_CLONES_512 void layer_norm_forward(                                                     \
      T* y, T* mean_hi, T* mean_lo, T* rstd, std::vector<std::ptrdiff_t>* wide, const T* x, const T* w, \
      const T* b, std::size_t groups, std::size_t dim, double eps) {                                    \
    ln_forward<T>(y, mean_hi, mean_lo, rstd, wide, x, w, b, groups, dim, eps);                          \
  }                                                                                                     \
  TAPEGRAD_SIMD_CLONES_512 void layer_norm_backward(                                                    \
      T* dx, T beta, double* dw, double* db, const T* dy, const T* x, const T* w, const T* mean_hi,     \
      const T* mean_lo, const T* rstd, const std::ptrdiff_t* wide, const std::ptrdiff_t* wide_end,      \
      std::size_t groups, std::size_t dim) {                                                            \
    const LnBackward<T> a{dx,      beta, dw,   db,       dy,     x,   w,       mean_hi,                 \
                          mean_lo, rstd, wide, wide_end, groups, dim, nullptr, nullptr};                \
    if (w && dw) {                                                                                      \
      ln_backward<true, true, T>(a);                                                                    \
    } else if (w) {                                                                                     \
      ln_backward<true, false, T>(a);                                                                   \
    } else {                                                                                            \
      ln_backward<false, false, T>(a);                                                                  \
    }                                                                                                   \
  }
TAPEGRAD_LAYER_NORM_KERNELS(float)
TAPEGRAD_LAYER_NORM_KERNELS(double)
#undef TAPEGRAD_LAYER_NORM_KERNELS

}  // namespace tapegrad::detail
