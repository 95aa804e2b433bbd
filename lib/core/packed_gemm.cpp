// PackedMatrix (packed_gemm.hpp): op(B) packed once into column panels, multiplied by many A.
//
// Layout: panel p holds columns [p NR, p NR + NR) of op(B) as K rows of NR contiguous values
// (zero past column N), 64-byte aligned. The micro-kernel keeps an R x NR tile of C in
// registers (R <= MR rows, NR = two vectors) and walks k = 0 .. K-1 once: per k it loads two
// vectors of the panel and, per row, broadcasts A[r][k] and adds the products. The kernels are
// one template compiled three times under target attributes (GCC/clang vector extensions, so
// the same source is AVX-512F, AVX2+FMA or SSE2 code); this file is compiled with FMA
// contraction (CMakeLists.txt), since the order of the k loop, not bitwise equality between
// kernels, is what callers rely on.
#include "packed_gemm.hpp"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

#include "simd.hpp"

namespace tapegrad::detail {
namespace {

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define TAPEGRAD_GEMM_ISA_KERNELS 1
#endif

// GCC ignores vector_size on a dependent type, so each (element, width) pair is spelled out.
template <class T, std::size_t VB>
struct Vec;
#define TAPEGRAD_GEMM_VEC(T, VB)                         \
  template <>                                            \
  struct Vec<T, VB> {                                    \
    typedef T type __attribute__((vector_size(VB)));     \
    static constexpr std::size_t lanes = VB / sizeof(T); \
  };
TAPEGRAD_GEMM_VEC(float, 16)
TAPEGRAD_GEMM_VEC(float, 32)
TAPEGRAD_GEMM_VEC(float, 64)
TAPEGRAD_GEMM_VEC(double, 16)
TAPEGRAD_GEMM_VEC(double, 32)
TAPEGRAD_GEMM_VEC(double, 64)
#undef TAPEGRAD_GEMM_VEC

template <class T, std::size_t VB>
TAPEGRAD_ALWAYS_INLINE typename Vec<T, VB>::type load(const T* p) {
  typename Vec<T, VB>::type v;
  std::memcpy(&v, p, VB);
  return v;
}

template <class T, std::size_t VB>
TAPEGRAD_ALWAYS_INLINE void store(T* p, typename Vec<T, VB>::type v) {
  std::memcpy(p, &v, VB);
}

// The A operand (rows i, columns k at A[i rs + k cs]: cs = 1 row-major, rs = 1 transposed) and
// the output C = alpha (A op(B)) + beta C.
template <class T>
struct Lhs {
  const T* A;
  std::size_t rs, cs;
};
template <class T>
struct Out {
  T alpha, beta;
  T* C;
  std::size_t ldc;
};

// C[0..R)[0..cols) = alpha A[0..R) panel + beta C, cols <= NR = 2 lanes. With alpha = beta = 1
// the result is acc + C exactly as written (multiplying by 1 is exact).
template <class T, std::size_t VB, std::size_t R>
TAPEGRAD_ALWAYS_INLINE void tile(std::size_t K, Lhs<T> a, const T* P, Out<T> o, std::size_t cols) {
  using V = typename Vec<T, VB>::type;
  constexpr std::size_t L = Vec<T, VB>::lanes;
  V acc[R][2] = {};
  for (std::size_t k = 0; k < K; ++k) {
    const V b0 = load<T, VB>(P + k * 2 * L);
    const V b1 = load<T, VB>(P + k * 2 * L + L);
    const T* ak = a.A + k * a.cs;
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) {
      const T x = ak[r * a.rs];
      acc[r][0] = acc[r][0] + x * b0;
      acc[r][1] = acc[r][1] + x * b1;
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    T* c = o.C + r * o.ldc;
    const V a0 = o.alpha * acc[r][0], a1 = o.alpha * acc[r][1];
    if (cols == 2 * L && o.beta == T(0)) {
      store<T, VB>(c, a0);
      store<T, VB>(c + L, a1);
    } else if (cols == 2 * L) {
      store<T, VB>(c, a0 + o.beta * load<T, VB>(c));
      store<T, VB>(c + L, a1 + o.beta * load<T, VB>(c + L));
    } else {
      T out[2 * L];
      store<T, VB>(out, a0);
      store<T, VB>(out + L, a1);
      for (std::size_t j = 0; j < cols; ++j) c[j] = o.beta == T(0) ? out[j] : out[j] + o.beta * c[j];
    }
  }
}

template <class T, std::size_t VB, std::size_t R, std::size_t MR>
TAPEGRAD_ALWAYS_INLINE void tail_tile(std::size_t rows, std::size_t K, Lhs<T> a, const T* P, Out<T> o,
                                      std::size_t cols) {
  if constexpr (R < MR) {
    if (rows == R) return tile<T, VB, R>(K, a, P, o, cols);
    return tail_tile<T, VB, R + 1, MR>(rows, K, a, P, o, cols);
  }
}

// The rows of one panel, MR at a time, the last rows < MR with a tile of their own height.
template <class T, std::size_t VB, std::size_t MR>
TAPEGRAD_ALWAYS_INLINE void panel_rows(std::size_t M, std::size_t K, Lhs<T> a, const T* P, Out<T> o,
                                       std::size_t cols) {
  std::size_t i = 0;
  for (; i + MR <= M; i += MR) {
    tile<T, VB, MR>(K, Lhs<T>{a.A + i * a.rs, a.rs, a.cs}, P, Out<T>{o.alpha, o.beta, o.C + i * o.ldc, o.ldc},
                    cols);
  }
  if (i < M) {
    tail_tile<T, VB, 1, MR>(M - i, K, Lhs<T>{a.A + i * a.rs, a.rs, a.cs}, P,
                            Out<T>{o.alpha, o.beta, o.C + i * o.ldc, o.ldc}, cols);
  }
}

template <class T, std::size_t VB, std::size_t MR>
TAPEGRAD_ALWAYS_INLINE void multiply_all(std::size_t M, std::size_t N, std::size_t K, Lhs<T> a,
                                         const T* panels, Out<T> o) {
  constexpr std::size_t NR = 2 * Vec<T, VB>::lanes;
  for (std::size_t j0 = 0; j0 < N; j0 += NR) {
    panel_rows<T, VB, MR>(M, K, a, panels + j0 * K, Out<T>{o.alpha, o.beta, o.C + j0, o.ldc},
                          std::min(NR, N - j0));
  }
}

#define TAPEGRAD_GEMM_ARGS std::size_t M, std::size_t N, std::size_t K, Lhs<T> a, const T *P, Out<T> o

template <class T>
void multiply_baseline(TAPEGRAD_GEMM_ARGS) {
  multiply_all<T, 16, 4>(M, N, K, a, P, o);
}

#ifdef TAPEGRAD_GEMM_ISA_KERNELS
template <class T>
__attribute__((target("avx2,fma"))) void multiply_avx2(TAPEGRAD_GEMM_ARGS) {
  multiply_all<T, 32, 4>(M, N, K, a, P, o);
}

template <class T>
__attribute__((target("avx512f"))) void multiply_avx512(TAPEGRAD_GEMM_ARGS) {
  multiply_all<T, 64, 8>(M, N, K, a, P, o);
}
#endif

constexpr std::size_t vector_bytes(GemmIsa isa) {
  return isa == GemmIsa::kAvx512 ? 64 : isa == GemmIsa::kAvx2 ? 32 : 16;
}

}  // namespace

GemmIsa best_gemm_isa() {
#ifdef TAPEGRAD_GEMM_ISA_KERNELS
  static const GemmIsa best = [] {
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return GemmIsa::kAvx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return GemmIsa::kAvx2;
    return GemmIsa::kBaseline;
  }();
  return best;
#else
  return GemmIsa::kBaseline;
#endif
}

const char* gemm_isa_name(GemmIsa isa) {
  switch (isa) {
    case GemmIsa::kAvx512:
      return "avx512f";
    case GemmIsa::kAvx2:
      return "avx2+fma";
    default:
      return "sse2";
  }
}

template <class T>
void PackedMatrix<T>::FreeAligned::operator()(T* p) const {
  std::free(p);
}

template <class T>
void PackedMatrix<T>::pack(bool trans_b, std::size_t K, std::size_t N, const T* B, std::size_t ldb,
                           GemmIsa isa) {
  if (static_cast<int>(isa) > static_cast<int>(best_gemm_isa()))
    isa = best_gemm_isa();  // never one the CPU lacks
  const std::size_t nr = 2 * vector_bytes(isa) / sizeof(T);
  const std::size_t panels = (N + nr - 1) / nr;
  const std::size_t need = panels * nr * K;
  if (need > capacity_) {
    const std::size_t bytes = (need * sizeof(T) + 63) / 64 * 64;
    T* p = static_cast<T*>(std::aligned_alloc(64, bytes));
    if (!p) throw std::bad_alloc();
    panels_.reset(p);
    capacity_ = need;
  }
  T* out = panels_.get();
  for (std::size_t j0 = 0; j0 < N; j0 += nr, out += nr * K) {
    const std::size_t cols = std::min(nr, N - j0);
    if (cols < nr) std::fill(out, out + nr * K, T(0));
    if (trans_b) {  // column j of op(B) is row j of B, ldb apart
      // 8 rows of B at a time, read together down k: rows ldb = 4 KB apart share one L1 set, so
      // more of them at once would evict each other; the 8 values of one k are adjacent in the panel.
      constexpr std::size_t kRows = 8;
      for (std::size_t j1 = 0; j1 < cols; j1 += kRows) {
        const std::size_t jn = std::min(kRows, cols - j1);
        const T* b = B + (j0 + j1) * ldb;
        if (jn == kRows) {  // a fixed trip count: unrolled, the 8 loads and stores in flight
          for (std::size_t k = 0; k < K; ++k) {
#pragma GCC unroll 8
            for (std::size_t j = 0; j < kRows; ++j) out[k * nr + j1 + j] = b[j * ldb + k];
          }
        } else {
          for (std::size_t k = 0; k < K; ++k) {
            for (std::size_t j = 0; j < jn; ++j) out[k * nr + j1 + j] = b[j * ldb + k];
          }
        }
      }
    } else {
      for (std::size_t k = 0; k < K; ++k) std::copy(B + k * ldb + j0, B + k * ldb + j0 + cols, out + k * nr);
    }
  }
  K_ = K;
  N_ = N;
  nr_ = nr;
  isa_ = isa;
}

template <class T>
void PackedMatrix<T>::multiply(std::size_t M, const T* A, std::size_t lda, T beta, T* C,
                               std::size_t ldc) const {
  multiply(M, false, A, lda, T(1), beta, C, ldc);
}

template <class T>
void PackedMatrix<T>::multiply(std::size_t M, bool trans_a, const T* A, std::size_t lda, T alpha, T beta,
                               T* C, std::size_t ldc) const {
  if (M == 0 || N_ == 0) return;
  const T* P = panels_.get();
  const Lhs<T> a{A, trans_a ? 1 : lda, trans_a ? lda : 1};
  const Out<T> o{alpha, beta, C, ldc};
#ifdef TAPEGRAD_GEMM_ISA_KERNELS
  if (isa_ == GemmIsa::kAvx512) return multiply_avx512<T>(M, N_, K_, a, P, o);
  if (isa_ == GemmIsa::kAvx2) return multiply_avx2<T>(M, N_, K_, a, P, o);
#endif
  multiply_baseline<T>(M, N_, K_, a, P, o);
}

template class PackedMatrix<float>;
template class PackedMatrix<double>;

}  // namespace tapegrad::detail
