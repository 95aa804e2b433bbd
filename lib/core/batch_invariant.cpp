#include "tapegrad/core/batch_invariant.hpp"

#include <algorithm>
#include <string>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {
thread_local bool g_batch_invariant = false;

// Cache blocking of the reference kernels. The k blocks run in ascending order, so blocking
// changes only when an element is visited, never the order of its additions.
constexpr std::size_t kColBlock = 256;    // columns of C (and of B) per block: 1 KB of floats
constexpr std::size_t kDepthBlock = 128;  // rows of B per block: 128 x 256 floats = 128 KB
constexpr std::size_t kRowBlock = 32;     // rows of B (= columns of C) per block in the NT kernel
constexpr std::size_t kLanes = 8;         // partial sums of the NT kernel's dot product

// sum_k a[k] b[k] with partial sums s[l] over k = l (mod kLanes), in ascending k, combined in
// a fixed tree. The independent lanes let the compiler use SIMD without reassociating.
template <class T>
T lane_dot(const T* a, const T* b, std::size_t K) {
  T s[kLanes] = {};
  std::size_t k = 0;
  for (; k + kLanes <= K; k += kLanes) {
    for (std::size_t l = 0; l < kLanes; ++l) s[l] += a[k + l] * b[k + l];
  }
  for (std::size_t l = 0; k < K; ++k, ++l) s[l] += a[k] * b[k];
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}
static_assert(kLanes == 8, "lane_dot's final tree adds exactly 8 lanes");

// A leading dimension shorter than a row would make rows overlap (and the last one run past
// the buffer); a null buffer with work to do would be dereferenced. O(1) per GEMM.
template <class T>
void check_gemm(const char* who, std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda,
                const T* B, std::size_t ldb, std::size_t b_rows, std::size_t b_row, const T* C,
                std::size_t ldc) {
  auto dims = [&] {
    return " (M " + std::to_string(M) + ", N " + std::to_string(N) + ", K " + std::to_string(K) + ", lda " +
           std::to_string(lda) + ", ldb " + std::to_string(ldb) + ", ldc " + std::to_string(ldc) + ")";
  };
  const bool short_a = M > 1 && lda < K;
  const bool short_b = b_rows > 1 && ldb < b_row;
  const bool short_c = M > 1 && ldc < N;
  if (short_a || short_b || short_c) {
    throw ValueError(std::string(who) + ": a leading dimension is shorter than its row" + dims());
  }
  if (M * N > 0 && (!C || (K > 0 && (!A || !B)))) {
    throw ValueError(std::string(who) + ": null buffer" + dims());
  }
}
}  // namespace

bool batch_invariant() noexcept { return g_batch_invariant; }
void set_batch_invariant(bool on) noexcept { g_batch_invariant = on; }

namespace detail {

template <class T>
void invariant_gemm_nn(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                       std::size_t ldb, T* C, std::size_t ldc) {
  check_gemm("invariant_gemm_nn", M, N, K, A, lda, B, ldb, K, N, C, ldc);  // B is (K, N)
  for (std::size_t j0 = 0; j0 < N; j0 += kColBlock) {
    const std::size_t nb = std::min(kColBlock, N - j0);
    for (std::size_t k0 = 0; k0 < K; k0 += kDepthBlock) {
      const std::size_t kend = std::min(K, k0 + kDepthBlock);
      for (std::size_t i = 0; i < M; ++i) {
        T* c = C + i * ldc + j0;
        const T* a = A + i * lda;
        std::size_t k = k0;
        // Four steps of k per pass over the row of C: the parenthesised sum is the same
        // sequence of roundings as four separate passes, with a quarter of the loads/stores.
        for (; k + 4 <= kend; k += 4) {
          const T a0 = a[k], a1 = a[k + 1], a2 = a[k + 2], a3 = a[k + 3];
          const T* b0 = B + k * ldb + j0;
          const T* b1 = b0 + ldb;
          const T* b2 = b1 + ldb;
          const T* b3 = b2 + ldb;
          for (std::size_t j = 0; j < nb; ++j) {
            c[j] = (((c[j] + a0 * b0[j]) + a1 * b1[j]) + a2 * b2[j]) + a3 * b3[j];
          }
        }
        for (; k < kend; ++k) {
          const T ak = a[k];
          const T* b = B + k * ldb + j0;
          for (std::size_t j = 0; j < nb; ++j) c[j] = c[j] + ak * b[j];
        }
      }
    }
  }
}

template <class T>
void invariant_gemm_nt(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                       std::size_t ldb, T* C, std::size_t ldc) {
  check_gemm("invariant_gemm_nt", M, N, K, A, lda, B, ldb, N, K, C, ldc);  // B is (N, K)
  for (std::size_t j0 = 0; j0 < N; j0 += kRowBlock) {
    const std::size_t jend = std::min(N, j0 + kRowBlock);
    for (std::size_t i = 0; i < M; ++i) {
      const T* a = A + i * lda;
      T* c = C + i * ldc;
      for (std::size_t j = j0; j < jend; ++j) c[j] += lane_dot(a, B + j * ldb, K);
    }
  }
}

template void invariant_gemm_nn<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t,
                                       const float*, std::size_t, float*, std::size_t);
template void invariant_gemm_nn<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t,
                                        const double*, std::size_t, double*, std::size_t);
template void invariant_gemm_nt<float>(std::size_t, std::size_t, std::size_t, const float*, std::size_t,
                                       const float*, std::size_t, float*, std::size_t);
template void invariant_gemm_nt<double>(std::size_t, std::size_t, std::size_t, const double*, std::size_t,
                                        const double*, std::size_t, double*, std::size_t);

}  // namespace detail
}  // namespace tapegrad
