#pragma once
// Matrix products: matmul with torch.matmul's rules for ranks 1 to 3, and the fused linear
// layer op y = x W^T + b. Both run their GEMMs through CBLAS (core/blas.hpp); in
// batch-invariant mode (core/batch_invariant.hpp) their forward uses fixed-order kernels.
#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// matmul(a, b), as torch.matmul for inputs of rank 1 to 3:
//   (K)       . (K)       -> ()          dot product, a 0-d result
//   (M, K)    @ (K, N)    -> (M, N)
//   (K)       @ (K, N)    -> (N)         a is treated as one row (1, K)
//   (M, K)    @ (K)       -> (M)         b is treated as one column (K, 1)
//   (B, M, K) @ (B, K, N) -> (B, M, N)   a batch of products
//   (B, M, K) @ (K, N)    -> (B, M, N)   one GEMM over all B*M rows
//   (M, K)    @ (B, K, N) -> (B, M, N)
// and the 3-D/1-D mixes ((B, M, K) @ (K) -> (B, M), (K) @ (B, K, N) -> (B, N)). A batch
// dim of size 1 broadcasts against B, as in PyTorch.
// Throws ShapeError (tape unchanged) for a 0-d input, rank > 3, an inner-dimension mismatch
// or batch sizes that differ and are not 1.
template <class T>
Var<T> matmul(const Var<T>& a, const Var<T>& b);

// linear(x, W, b) = x W^T + b, one node (torch.nn.functional.linear):
//   x (..., in), W (out, in), b (out) or an undefined Var (no bias) -> y (..., out).
// All leading dims of x are flattened into the rows of one GEMM. x may be 1-D: (in) -> (out).
// Throws ShapeError (tape unchanged) when W is not 2-D, x's last dim is not W's in, or b is
// not of shape (out).
template <class T>
Var<T> linear(const Var<T>& x, const Var<T>& W, const Var<T>& b = Var<T>());

}  // namespace tapegrad
