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

// C[0..R)[0..cols) = A[0..R) op(B)panel + beta C, cols <= NR = 2 lanes.
template <class T, std::size_t VB, std::size_t R>
TAPEGRAD_ALWAYS_INLINE void tile(std::size_t K, const T* A, std::size_t lda, const T* P, T beta, T* C,
                                 std::size_t ldc, std::size_t cols) {
  using V = typename Vec<T, VB>::type;
  constexpr std::size_t L = Vec<T, VB>::lanes;
  V acc[R][2] = {};
  for (std::size_t k = 0; k < K; ++k) {
    const V b0 = load<T, VB>(P + k * 2 * L);
    const V b1 = load<T, VB>(P + k * 2 * L + L);
#pragma GCC unroll 8
    for (std::size_t r = 0; r < R; ++r) {
      const T a = A[r * lda + k];
      acc[r][0] = acc[r][0] + a * b0;
      acc[r][1] = acc[r][1] + a * b1;
    }
  }
  for (std::size_t r = 0; r < R; ++r) {
    T* c = C + r * ldc;
    if (cols == 2 * L) {
      if (beta != T(0)) {
        acc[r][0] = acc[r][0] + load<T, VB>(c);
        acc[r][1] = acc[r][1] + load<T, VB>(c + L);
      }
      store<T, VB>(c, acc[r][0]);
      store<T, VB>(c + L, acc[r][1]);
    } else {
      T out[2 * L];
      store<T, VB>(out, acc[r][0]);
      store<T, VB>(out + L, acc[r][1]);
      for (std::size_t j = 0; j < cols; ++j) c[j] = beta != T(0) ? c[j] + out[j] : out[j];
    }
  }
}

// The rows [i, M) of one panel, MR at a time, the last R < MR rows with their own tile.
template <class T, std::size_t VB, std::size_t MR>
TAPEGRAD_ALWAYS_INLINE void panel_rows(std::size_t M, std::size_t K, const T* A, std::size_t lda, const T* P,
                                       T beta, T* C, std::size_t ldc, std::size_t cols) {
  std::size_t i = 0;
  for (; i + MR <= M; i += MR) tile<T, VB, MR>(K, A + i * lda, lda, P, beta, C + i * ldc, ldc, cols);
  const T* a = A + i * lda;
  T* c = C + i * ldc;
  switch (M - i) {
    case 7:
      if constexpr (MR > 7) tile<T, VB, 7>(K, a, lda, P, beta, c, ldc, cols);
      break;
    case 6:
      if constexpr (MR > 6) tile<T, VB, 6>(K, a, lda, P, beta, c, ldc, cols);
      break;
    case 5:
      if constexpr (MR > 5) tile<T, VB, 5>(K, a, lda, P, beta, c, ldc, cols);
      break;
    case 4:
      if constexpr (MR > 4) tile<T, VB, 4>(K, a, lda, P, beta, c, ldc, cols);
      break;
    case 3:
      tile<T, VB, 3>(K, a, lda, P, beta, c, ldc, cols);
      break;
    case 2:
      tile<T, VB, 2>(K, a, lda, P, beta, c, ldc, cols);
      break;
    case 1:
      tile<T, VB, 1>(K, a, lda, P, beta, c, ldc, cols);
      break;
    default:
      break;
  }
}

template <class T, std::size_t VB, std::size_t MR>
TAPEGRAD_ALWAYS_INLINE void multiply_all(std::size_t M, std::size_t N, std::size_t K, const T* A,
                                         std::size_t lda, const T* panels, T beta, T* C, std::size_t ldc) {
  constexpr std::size_t NR = 2 * Vec<T, VB>::lanes;
  for (std::size_t j0 = 0; j0 < N; j0 += NR) {
    panel_rows<T, VB, MR>(M, K, A, lda, panels + j0 * K, beta, C + j0, ldc, std::min(NR, N - j0));
  }
}

#define TAPEGRAD_GEMM_ARGS                                                                            \
  std::size_t M, std::size_t N, std::size_t K, const T *A, std::size_t lda, const T *P, T beta, T *C, \
      std::size_t ldc

template <class T>
void multiply_baseline(TAPEGRAD_GEMM_ARGS) {
  multiply_all<T, 16, 4>(M, N, K, A, lda, P, beta, C, ldc);
}

#ifdef TAPEGRAD_GEMM_ISA_KERNELS
template <class T>
__attribute__((target("avx2,fma"))) void multiply_avx2(TAPEGRAD_GEMM_ARGS) {
  multiply_all<T, 32, 4>(M, N, K, A, lda, P, beta, C, ldc);
}

template <class T>
__attribute__((target("avx512f"))) void multiply_avx512(TAPEGRAD_GEMM_ARGS) {
  multiply_all<T, 64, 8>(M, N, K, A, lda, P, beta, C, ldc);
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
  for (std::size_t j0 = 0; j0 < N; j0 += nr) {
    const std::size_t cols = std::min(nr, N - j0);
    for (std::size_t k = 0; k < K; ++k, out += nr) {
      for (std::size_t j = 0; j < cols; ++j) out[j] = trans_b ? B[(j0 + j) * ldb + k] : B[k * ldb + j0 + j];
      std::fill(out + cols, out + nr, T(0));
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
  if (M == 0 || N_ == 0) return;
  const T* P = panels_.get();
#ifdef TAPEGRAD_GEMM_ISA_KERNELS
  if (isa_ == GemmIsa::kAvx512) return multiply_avx512<T>(M, N_, K_, A, lda, P, beta, C, ldc);
  if (isa_ == GemmIsa::kAvx2) return multiply_avx2<T>(M, N_, K_, A, lda, P, beta, C, ldc);
#endif
  multiply_baseline<T>(M, N_, K_, A, lda, P, beta, C, ldc);
}

template class PackedMatrix<float>;
template class PackedMatrix<double>;

}  // namespace tapegrad::detail
