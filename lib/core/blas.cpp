#include "tapegrad/core/blas.hpp"

#include <cblas.h>

#include <climits>
#include <string>

#include "tapegrad/core/error.hpp"

namespace tapegrad {

namespace {

int to_blas_int(std::size_t v, const char* what) {
  if (v > static_cast<std::size_t>(INT_MAX)) {
    throw ValueError(std::string("gemm: ") + what + " = " + std::to_string(v) +
                     " does not fit a CBLAS int (max " + std::to_string(INT_MAX) + ")");
  }
  return static_cast<int>(v);
}

// C = beta * C for the K = 0 case, where CBLAS's behaviour varies between implementations.
template <class T>
void scale_rows(std::size_t M, std::size_t N, T beta, T* C, std::size_t ldc) {
  for (std::size_t i = 0; i < M; ++i) {
    T* c = C + i * ldc;
    for (std::size_t j = 0; j < N; ++j) c[j] = beta == T(0) ? T(0) : beta * c[j];
  }
}

void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a,
          int lda, const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha,
          const double* a, int lda, const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
          const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  if (M == 0 || N == 0) return;
  if (K == 0) {
    scale_rows(M, N, beta, C, ldc);
    return;
  }
  // CBLAS requires every leading dimension >= 1 even where a matrix has a single column.
  const auto ld = [](std::size_t v) { return v == 0 ? std::size_t(1) : v; };
  call(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
       to_blas_int(M, "M"), to_blas_int(N, "N"), to_blas_int(K, "K"), alpha, A,
       to_blas_int(ld(lda), "lda"), B, to_blas_int(ld(ldb), "ldb"), beta, C,
       to_blas_int(ld(ldc), "ldc"));
}

void set_blas_threads(int n) {
  if (n < 1) throw ValueError("set_blas_threads: need at least 1 thread; got " + std::to_string(n));
  openblas_set_num_threads(n);
}

int blas_threads() { return openblas_get_num_threads(); }

template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*,
                          std::size_t, const float*, std::size_t, float, float*, std::size_t);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double,
                           const double*, std::size_t, const double*, std::size_t, double, double*,
                           std::size_t);

}  // namespace tapegrad
