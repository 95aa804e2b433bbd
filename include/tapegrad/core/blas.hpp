#pragma once
// Thin typed wrappers over CBLAS (OpenBLAS). Only this header's implementation includes
// <cblas.h>, so users of tapegrad do not need OpenBLAS's include directory.
//
// Every matrix is row-major. gemm computes
//     C = alpha * op(A) op(B) + beta * C,   op(X) = X or X^T,
// with op(A) of shape (M, K), op(B) of shape (K, N) and C of shape (M, N). The leading
// dimension of a matrix is the distance between two of its rows as stored (before op), so a
// transposed operand is read in place: backward passes never build transposed copies.
#include <cstddef>

namespace tapegrad {

// Sizes of 0 are allowed: M or N = 0 does nothing; K = 0 gives C = beta * C (C = 0 when
// beta = 0, whatever C held: beta = 0 never reads C). Throws ValueError when a size does not
// fit CBLAS's int, when a leading dimension is shorter than a stored row (lda < K, or < M with
// trans_a; ldb < N, or < K with trans_b; ldc < N), or when a buffer with elements to touch is
// null.
template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

// The number of threads OpenBLAS uses for one call (openblas_set_num_threads). The setting is
// process-wide, not per thread. The lab and the benchmarks use 1 so that runs do not compete.
void set_blas_threads(int n);
int blas_threads();

}  // namespace tapegrad
