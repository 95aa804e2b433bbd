#pragma once
// Intra-op parallelism: how many threads one op may use.
//
// By default tapegrad runs every op on the calling thread (1), and OpenBLAS keeps its own
// setting. set_num_threads(n) lets large enough work use n threads of one process-wide pool:
// matrix products split into blocks of rows of the output (each block one BLAS or packed-kernel
// call; linear's forward fills its bias rows in the same blocks, and its backward runs dX and
// dW side by side), elementwise activations (forward and backward) into blocks of 16K values,
// cross_entropy into blocks of rows; small work (under 2^17 multiply-adds per block) stays on
// the calling thread, where handing it to a second thread would cost more than it saves. It
// also sets OpenBLAS to 1 thread, so that the two levels of threading do not multiply
// (set_blas_threads afterwards overrides that, as in PyTorch's set_num_threads).
//
// Results: a product's output row is computed by one thread, with the same instructions as
// without threads, so in batch-invariant mode (core/batch_invariant.hpp) every result is bitwise
// identical for any thread count. With the BLAS the blocks are separate calls, whose kernels may
// round differently from one big call: equal within float rounding.
//
// The pool is shared by the whole process: a second thread that runs an op while the pool is
// busy runs it on its own thread (no waiting, no deadlock), and an op started inside a pool
// thread never splits again. The lab keeps 1 (its parallelism is across runs). Workers wait for
// work by spinning for about 50 us after their last block, then sleep.
namespace tapegrad {

// Throws ValueError unless 1 <= n <= 256. Not to be called while another thread runs ops.
void set_num_threads(int n);
int num_threads() noexcept;

}  // namespace tapegrad
