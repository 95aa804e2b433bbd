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
#include <string>

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

// What runs the GEMMs: the BLAS library and the kernel it chose for this CPU, against what the
// CPU can do. OpenBLAS picks its kernel once, when it loads, from its own table of CPU models;
// a model it does not know gets an older kernel (Debian's 0.3.21 runs its SSE3 "Prescott"
// kernels on some AVX-512 CPUs, at a quarter of the speed). OPENBLAS_CORETYPE, read only when
// the library loads, overrides the choice: warning() says which value to set.
struct BlasInfo {
  std::string library;      // e.g. "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ... MAX_THREADS=64"
  std::string kernel;       // the BLAS's kernel name, e.g. "Cooperlake", "Haswell", "Prescott"
  std::string kernel_isa;   // the widest instructions that kernel uses: "avx512", "avx2", "avx",
                            // "sse", or "unknown"
  std::string cpu_isa;      // the widest this CPU has (CPUID): "avx512", "avx2", "avx" or "sse"
  std::string own_kernels;  // tapegrad's packed recurrent GEMM kernels: "avx512f", "avx2+fma", "sse2"
  int threads = 1;          // blas_threads()
  bool own_gemm = false;    // gemm_uses_own_kernels(): general GEMMs run on tapegrad's kernels

  // The kernel uses narrower instructions than the CPU has (an unknown kernel is not below).
  bool kernel_below_cpu() const;
  // One line: library version, kernel (isa), CPU isa, threads, who runs the general GEMMs.
  std::string summary() const;
  // Empty, or one line saying the kernel is below the CPU, that tapegrad's own kernels run the
  // GEMMs instead (unless GemmBackend::kBlas is forced), and which OPENBLAS_CORETYPE to set.
  std::string warning() const;
};
BlasInfo blas_info();

// The instruction set an OpenBLAS kernel name uses (case-insensitive): "avx512" for SkylakeX,
// Cooperlake, SapphireRapids; "avx2" for Haswell, Zen; "avx" for Sandybridge and the
// Bulldozer family; "sse" for Prescott, Core2, Penryn, Dunnington, Nehalem, Atom, Opteron,
// Barcelona, Bobcat, Nano; otherwise "unknown".
std::string blas_kernel_isa(const std::string& kernel);

// Who runs gemm's general case (the GEMV and outer-product shapes always go to their own
// paths). kAuto, the default: the BLAS, unless its kernel is below the CPU
// (BlasInfo::kernel_below_cpu), then tapegrad's own packed kernels (AVX-512F, AVX2+FMA or SSE2
// by CPUID), which need nothing set by the user. kBlas / kOwn force one (tests, comparisons).
// Process-wide, like the BLAS's thread count.
enum class GemmBackend { kAuto, kBlas, kOwn };
void set_gemm_backend(GemmBackend backend);
GemmBackend gemm_backend();
// What kAuto (or the forced choice) resolves to on this machine: true for tapegrad's kernels.
bool gemm_uses_own_kernels();

// tapegrad prints blas_info().warning() to stderr once, at its first GEMM, when the kernel is
// below the CPU. set_blas_warning(false) before that silences it.
void set_blas_warning(bool on);

}  // namespace tapegrad
