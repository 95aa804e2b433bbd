#pragma once
// Internal to lib/: a GEMM whose right operand is packed once and multiplied many times.
//
// A recurrent layer multiplies the same W_hh by a new (N, H) state at every time step: N is a
// batch (often 1 to 64), so each step's GEMM is small, and a BLAS call repacks all of W_hh
// for it every time (OpenBLAS spends about as long packing W_hh as multiplying at N = 32).
// PackedMatrix packs op(B) once into column panels laid out for the micro-kernel; multiply()
// then computes C = A op(B) + beta C for any number of A without touching B again.
//
// Kernels: AVX-512F (8 rows x 2 vectors of 64 bytes), AVX2+FMA (4 x 2 of 32 bytes) or baseline
// SSE2 (4 x 2 of 16 bytes), chosen from the CPU at pack time (CPUID, not the BLAS's opinion of
// the CPU). Every kernel accumulates each C entry over k = 0, 1, ..., K-1 in order, so the
// result does not depend on M, on the row's position or on how many rows are multiplied
// together; it may differ from the BLAS's by rounding (different order and FMA contraction).
#include <cstddef>
#include <memory>

namespace tapegrad::detail {

enum class GemmIsa { kBaseline, kAvx2, kAvx512 };

// The widest kernel this CPU runs (and this build has: none but baseline under ThreadSanitizer
// or a compiler without target attributes).
GemmIsa best_gemm_isa();
const char* gemm_isa_name(GemmIsa isa);

template <class T>
class PackedMatrix {
 public:
  // Packs op(B), of shape (K, N): B row-major with leading dimension ldb, op(B) = B^T when
  // trans_b (then B is stored as (N, K)). Reuses its buffer: no allocation when K and N do not
  // grow. isa: the kernel to pack for (tests pass each one the CPU has).
  void pack(bool trans_b, std::size_t K, std::size_t N, const T* B, std::size_t ldb,
            GemmIsa isa = best_gemm_isa());

  // C (M, N) = A (M, K) op(B) + beta C, A and C row-major with leading dimensions lda, ldc.
  // beta is 0 (C is not read) or 1.
  void multiply(std::size_t M, const T* A, std::size_t lda, T beta, T* C, std::size_t ldc) const;
  // C (M, N) = alpha op(A) op(B) + beta C, op(A) (M, K): A^T when trans_a (A stored (K, M)).
  // alpha = beta = 1 gives the same bits as the call above with beta 1.
  void multiply(std::size_t M, bool trans_a, const T* A, std::size_t lda, T alpha, T beta, T* C,
                std::size_t ldc) const;

  std::size_t rows() const { return K_; }
  std::size_t cols() const { return N_; }
  GemmIsa isa() const { return isa_; }

 private:
  struct FreeAligned {
    void operator()(T* p) const;
  };
  std::unique_ptr<T[], FreeAligned> panels_;  // ceil(N / NR) panels of K x NR, zero-padded
  std::size_t capacity_ = 0;
  std::size_t K_ = 0, N_ = 0, nr_ = 0;
  GemmIsa isa_ = GemmIsa::kBaseline;
};

// C (M, N) = alpha op(A) op(B) + beta C on the packed kernels, blocked 256 k x 2048 columns x
// 256 rows (lib/core/blas.cpp); beta 0 never reads C. Each C entry is the sum over k in blocks of
// 256, ascending, each block's partial sum in k order: the same instructions for an entry
// whatever M, the row's position or the column blocking, so the result of one row does not
// depend on the batch (the batch-invariant mode's GEMM; core/batch_invariant.hpp).
template <class T>
void own_gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
              std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc);

}  // namespace tapegrad::detail
