#pragma once
// Batch-invariant mode: the forward result for one row does not depend on the batch.
//
// A BLAS library picks its kernel, its blocking and its threading from the matrix sizes, so
// the same row of x can come out of x W^T with different rounding when it is computed in a
// batch of 1 and in a batch of 64. Measured with OpenBLAS 0.3.21 (tests/test_matmul.cpp):
// one row of x W^T (K = 300, N = 257, float) differs in 198 of its 257 outputs between a
// batch of 1 and a batch of 7, 64 or 256; x @ W^T (no transpose) in 1 output from 64 on.
// That breaks tests such as "the output for example i does not depend on the rest of the
// batch", and makes serving a request alone differ in the last bits from serving it batched.
//
// When the switch is on, matmul and linear compute their forward output with the reference
// kernels below: every output element is accumulated in one fixed order that depends only on
// K (never on M, on the blocking or on threads), so a row's result is bitwise identical
// whatever the batch size. They are plain loops, several times slower than BLAS for large
// matrices. Backward passes still use BLAS in either mode: only forward outputs are meant to
// be compared across batch sizes (gradients of weights sum over the batch anyway).
//
// The switch is thread-local, like grad mode: each worker thread of the lab sets its own.
//
// Why the kernels are invariant: for each output element they run the same instructions in
// the same order whatever M is. Rows are never grouped (no M-dependent register tiles or
// tails); SIMD runs across columns (NN) or across a fixed set of partial sums (NT), and a
// column lands in the vector body or the scalar tail by its index, not by the batch. The
// compiler may contract a * b + c into an FMA (GCC does by default in C++ when the target
// has FMA, e.g. with TAPEGRAD_NATIVE); that changes the rounding, but the same way for every
// row. tests/test_matmul.cpp checks 0 differing bits in each build configuration.
#include <cstddef>

namespace tapegrad {

bool batch_invariant() noexcept;
void set_batch_invariant(bool on) noexcept;

// RAII scope with batch-invariant mode on (or off), restoring the previous setting.
class BatchInvariantGuard {
 public:
  explicit BatchInvariantGuard(bool on = true) : previous_(batch_invariant()) { set_batch_invariant(on); }
  ~BatchInvariantGuard() { set_batch_invariant(previous_); }
  BatchInvariantGuard(const BatchInvariantGuard&) = delete;
  BatchInvariantGuard& operator=(const BatchInvariantGuard&) = delete;

 private:
  bool previous_;
};

namespace detail {

// The reference kernels (row-major, C of shape (M, N), A of shape (M, K)).
//
// C = A B + C, B of shape (K, N): c[i][j] += a[i][k] * b[k][j] for k = 0, 1, ..., K-1 in
// that order, one rounding per step, added straight into c[i][j] (which the caller fills with
// 0 or the bias first). Blocked over columns and over k for the cache; the blocks of k run in
// ascending order, so each element still sees the same sequence of additions.
template <class T>
void invariant_gemm_nn(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                       std::size_t ldb, T* C, std::size_t ldc);

// C = A B^T + C, B of shape (N, K): c[i][j] += dot(a[i], b[j]), where the dot product keeps
// kLanes partial sums s[l] = sum over k = l (mod kLanes), in ascending k, and adds them in a
// fixed tree at the end. The order depends only on K.
template <class T>
void invariant_gemm_nt(std::size_t M, std::size_t N, std::size_t K, const T* A, std::size_t lda, const T* B,
                       std::size_t ldb, T* C, std::size_t ldc);

}  // namespace detail
}  // namespace tapegrad
