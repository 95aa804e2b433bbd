// StepGemm (step_gemm.hpp). The packed copy lives in one thread_local PackedMatrix per element
// type: a layer's forward or backward packs it, runs its steps and is done before the next
// layer packs, and each thread has its own (concurrent inference). It grows to the largest
// W_hh seen and is reused, so a training step allocates nothing after the first.
#include "step_gemm.hpp"

#include "../core/packed_gemm.hpp"
#include "recurrent_kernels.hpp"
#include "tapegrad/core/batch_invariant.hpp"
#include "tapegrad/core/blas.hpp"

namespace tapegrad::detail {
namespace {

template <class T>
PackedMatrix<T>& scratch() {
  thread_local PackedMatrix<T> packed;
  return packed;
}

}  // namespace

template <class T>
StepGemm<T>::StepGemm(const T* W_hh, std::size_t G, std::size_t H, std::size_t N, bool forward,
                      std::size_t uses)
    : W_hh_(W_hh), G_(G), H_(H), N_(N), forward_(forward) {
  const bool pays = uses >= 2 && N <= kMaxPackedRows && G * H <= kMaxPackedElements;
  if (!pays || (forward && batch_invariant())) return;
  PackedMatrix<T>& p = scratch<T>();
  if (forward) {
    p.pack(true, H, G, W_hh, H);  // op(B) = W_hh^T, (H, G)
  } else {
    p.pack(false, G, H, W_hh, H);  // op(B) = W_hh, (G, H)
  }
  packed_ = &p;
}

template <class T>
StepGemm<T> StepGemm<T>::forward(const T* W_hh, std::size_t G, std::size_t H, std::size_t N,
                                 std::size_t uses) {
  return StepGemm(W_hh, G, H, N, true, uses);
}

template <class T>
StepGemm<T> StepGemm<T>::backward(const T* W_hh, std::size_t G, std::size_t H, std::size_t N,
                                  std::size_t uses) {
  return StepGemm(W_hh, G, H, N, false, uses);
}

template <class T>
void StepGemm<T>::add(const T* A, T* C) const {
  if (packed_) {
    packed_->multiply(N_, A, forward_ ? H_ : G_, T(1), C, forward_ ? G_ : H_);
  } else if (forward_) {
    gemm_nt_add<T>(N_, G_, H_, A, W_hh_, C);
  } else {
    gemm<T>(false, false, N_, H_, G_, T(1), A, G_, W_hh_, H_, T(1), C, H_);
  }
}

template class StepGemm<float>;
template class StepGemm<double>;

}  // namespace tapegrad::detail
