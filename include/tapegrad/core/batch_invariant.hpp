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
// When the switch is on, matmul, linear and the recurrent layers' input projections compute
// their forward output with tapegrad's packed GEMM (lib/core/packed_gemm.hpp, own_gemm) instead
// of the BLAS: every output element is accumulated over k in blocks of 256, ascending, each
// block in k order, and that order depends only on K (never on M, on the row's position, on the
// column blocking or on threads), so a row's result is bitwise identical whatever the batch
// size. The kernel runs at about the BLAS's speed (0.96 of OpenBLAS's sgemm rate on AVX-512),
// so the mode costs little. Backward passes use the normal path in either mode: only forward
// outputs are meant to be compared across batch sizes (weight gradients sum over the batch
// anyway).
//
// The switch is thread-local, like grad mode: each worker thread of the lab sets its own.
//
// Why the kernel is invariant: for each output element it runs the same instructions in the
// same order whatever M is. Rows are grouped into register tiles of up to 8, but each row of a
// tile has its own accumulators and the same fused multiply-add per k, so a row's value does
// not depend on its tile's height or its neighbours. SIMD runs across columns; a column in the
// last, partial panel is computed with the same vector instructions and copied out. The
// instruction set (AVX-512F, AVX2+FMA or SSE2, chosen by CPUID) changes the rounding between
// machines, not between batch sizes. tests/test_matmul.cpp checks 0 differing bits in each
// build configuration, for batches of 1 to 300.
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

}  // namespace tapegrad
