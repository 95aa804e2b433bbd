#pragma once
// Internal to lib/ops: the product with W_hh that a recurrent layer repeats at every step.
//   forward   C  (N, G) += h  (N, H) W_hh^T      (G, H) = W_hh's shape
//   backward  dh (N, H) += dA (N, G) W_hh
// A BLAS call packs all of W_hh again for each of these small products; StepGemm packs it once
// per layer and direction (core/packed_gemm.hpp) and reuses it at every step. It falls back to
// the BLAS (or, forward, to the fixed-order kernel of batch-invariant mode) where packing does
// not pay: W_hh used for fewer than two steps, a batch above kMaxPackedRows rows (the BLAS's
// cache blocking wins there), or W_hh above kMaxPackedElements (the packed copy would be a
// second large matrix kept per thread).
#include <cstddef>

namespace tapegrad::detail {

template <class T>
class PackedMatrix;

template <class T>
class StepGemm {
 public:
  static constexpr std::size_t kMaxPackedRows = 512;
  static constexpr std::size_t kMaxPackedElements = std::size_t(1) << 22;

  // W_hh (G, H), row-major; `uses`: how many products follow; N: their rows.
  static StepGemm forward(const T* W_hh, std::size_t G, std::size_t H, std::size_t N, std::size_t uses);
  static StepGemm backward(const T* W_hh, std::size_t G, std::size_t H, std::size_t N, std::size_t uses);

  // C += A op(W_hh) for N rows: forward A = h_prev (N, H), C (N, G); backward A = dA (N, G),
  // C = dh (N, H).
  void add(const T* A, T* C) const;

 private:
  StepGemm(const T* W_hh, std::size_t G, std::size_t H, std::size_t N, bool forward, std::size_t uses);
  const T* W_hh_;
  std::size_t G_, H_, N_;
  bool forward_;
  const PackedMatrix<T>* packed_ = nullptr;  // this thread's scratch, or null: no packing
};

}  // namespace tapegrad::detail
