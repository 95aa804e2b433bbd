#include "tapegrad/core/blas.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <climits>
#include <cstdio>
#include <string>

#include "tapegrad/core/error.hpp"
#include "packed_gemm.hpp"
#include "parallel.hpp"
#include "simd.hpp"

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

void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, float alpha, const float* a, int lda,
          const float* b, int ldb, float beta, float* c, int ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void call(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, double alpha, const double* a, int lda,
          const double* b, int ldb, double beta, double* c, int ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void call_gemv(bool trans, int m, int n, float alpha, const float* a, int lda, const float* x, int incx,
               float beta, float* y, int incy) {
  cblas_sgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, m, n, alpha, a, lda, x, incx, beta, y, incy);
}
void call_gemv(bool trans, int m, int n, double alpha, const double* a, int lda, const double* x, int incx,
               double beta, double* y, int incy) {
  cblas_dgemv(CblasRowMajor, trans ? CblasTrans : CblasNoTrans, m, n, alpha, a, lda, x, incx, beta, y, incy);
}

// C (M x N) = alpha a b^T + beta C for K = 1, a with stride inc_a and b with stride inc_b: one
// streaming pass over C. (OpenBLAS's GEMM runs a generic small-matrix kernel here at about half
// this speed; the MLP's weight gradient at batch 1 is this case.)
template <class T>
TAPEGRAD_ALWAYS_INLINE void outer_loop(std::size_t M, std::size_t N, T alpha, const T* a, std::size_t inc_a,
                                       const T* b, std::size_t inc_b, T beta, T* C, std::size_t ldc) {
  for (std::size_t i = 0; i < M; ++i) {
    const T s = alpha * a[i * inc_a];
    T* c = C + i * ldc;
    if (beta == T(0) && inc_b == 1) {
      for (std::size_t j = 0; j < N; ++j) c[j] = s * b[j];
    } else if (beta == T(1) && inc_b == 1) {
      for (std::size_t j = 0; j < N; ++j) c[j] += s * b[j];
    } else if (beta == T(0)) {
      for (std::size_t j = 0; j < N; ++j) c[j] = s * b[j * inc_b];
    } else {
      for (std::size_t j = 0; j < N; ++j) c[j] = beta * c[j] + s * b[j * inc_b];
    }
  }
}
TAPEGRAD_SIMD_CLONES void outer(std::size_t M, std::size_t N, float alpha, const float* a, std::size_t inc_a,
                                const float* b, std::size_t inc_b, float beta, float* C, std::size_t ldc) {
  outer_loop(M, N, alpha, a, inc_a, b, inc_b, beta, C, ldc);
}
TAPEGRAD_SIMD_CLONES void outer(std::size_t M, std::size_t N, double alpha, const double* a,
                                std::size_t inc_a, const double* b, std::size_t inc_b, double beta, double* C,
                                std::size_t ldc) {
  outer_loop(M, N, alpha, a, inc_a, b, inc_b, beta, C, ldc);
}
}  // namespace

// What CBLAS's xerbla would refuse, as a ValueError naming the values: a leading dimension
// shorter than a stored row (reading past it would read the next row, or past the buffer), or
// a null buffer that has elements to read or write. Called once M, N > 0.
template <class T>
void check_gemm_args(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, const T* A,
                     std::size_t lda, const T* B, std::size_t ldb, const T* C, std::size_t ldc) {
  const auto need = [](const char* name, std::size_t ld, std::size_t cols) {
    if (ld < cols) {
      throw ValueError(std::string("gemm: ") + name + " = " + std::to_string(ld) +
                       " is shorter than a stored row of " + std::to_string(cols) + " elements");
    }
  };
  if (K > 0) {
    need("lda", lda, trans_a ? M : K);
    need("ldb", ldb, trans_b ? K : N);
    if (!A || !B) throw ValueError("gemm: A or B is a null pointer with M, N, K > 0");
  }
  need("ldc", ldc, N);
  if (!C) throw ValueError("gemm: C is a null pointer with M, N > 0");
}

namespace {

std::atomic<bool> g_blas_warning{true};

// Once per process: the kernel warning, if any (blas_info() reads CPUID and OpenBLAS's names).
void warn_once_about_kernel() {
  static const bool done = [] {
    if (g_blas_warning.load()) {
      const std::string w = blas_info().warning();
      if (!w.empty()) std::fprintf(stderr, "%s\n", w.c_str());
    }
    return true;
  }();
  (void)done;
}

int isa_rank(const std::string& isa) {
  if (isa == "avx512") return 4;
  if (isa == "avx2") return 3;
  if (isa == "avx") return 2;
  if (isa == "sse") return 1;
  return 0;
}

std::string cpu_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "avx512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "avx2";
  if (__builtin_cpu_supports("avx")) return "avx";
  return "sse";
#else
  return "unknown";
#endif
}

std::atomic<int> g_gemm_backend{static_cast<int>(GemmBackend::kAuto)};

// What the machine offers: the BLAS library, its kernel and the CPU's ISA (everything in
// blas_info() but own_gemm, which is derived from it).
BlasInfo machine_blas_info() {
  BlasInfo info;
  info.library = openblas_get_config();
  info.kernel = openblas_get_corename();
  info.kernel_isa = blas_kernel_isa(info.kernel);
  info.cpu_isa = cpu_isa();
  info.own_kernels = detail::gemm_isa_name(detail::best_gemm_isa());
  info.threads = openblas_get_num_threads();
  return info;
}

bool use_own_gemm() {
  const auto b = static_cast<GemmBackend>(g_gemm_backend.load(std::memory_order_relaxed));
  if (b != GemmBackend::kAuto) return b == GemmBackend::kOwn;
  static const bool below = machine_blas_info().kernel_below_cpu();  // kernel and CPU never change
  return below;
}

template <class T>
void own_gemm_serial(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha,
                     const T* A, std::size_t lda, const T* B, std::size_t ldb, T beta, T* C,
                     std::size_t ldc) {
  constexpr std::size_t kKc = 256, kNc = 2048, kMc = 256;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    scale_rows(M, N, beta, C, ldc);
    return;
  }
  thread_local detail::PackedMatrix<T> packed;
  for (std::size_t k0 = 0; k0 < K; k0 += kKc) {
    const std::size_t kc = std::min(kKc, K - k0);
    const T b = k0 == 0 ? beta : T(1);
    for (std::size_t j0 = 0; j0 < N; j0 += kNc) {
      const std::size_t nc = std::min(kNc, N - j0);
      packed.pack(trans_b, kc, nc, trans_b ? B + j0 * ldb + k0 : B + k0 * ldb + j0, ldb);
      for (std::size_t i0 = 0; i0 < M; i0 += kMc) {
        const T* a = trans_a ? A + k0 * lda + i0 : A + i0 * lda + k0;
        packed.multiply(std::min(kMc, M - i0), trans_a, a, lda, alpha, b, C + i0 * ldc + j0, ldc);
      }
    }
  }
}

// The rows [i0, i1) of C = alpha op(A) op(B) + beta C: the sub-product of rows i0.. of op(A).
template <class T>
const T* rows_of_a(bool trans_a, const T* A, std::size_t lda, std::size_t i0) {
  return trans_a ? A + i0 : A + i0 * lda;
}

}  // namespace

namespace detail {

std::size_t gemm_min_rows(std::size_t N, std::size_t K) noexcept {
  const std::size_t per_row = std::max<std::size_t>(1, N * K);
  return std::max<std::size_t>(16, ((std::size_t(1) << 17) / per_row + 15) / 16 * 16);
}

template <class T>
void own_gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
              std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  parallel_for(M, gemm_min_rows(N, K), kGemmRowAlign, [&](std::size_t i0, std::size_t i1) {
    own_gemm_serial(trans_a, trans_b, i1 - i0, N, K, alpha, rows_of_a(trans_a, A, lda, i0), lda, B, ldb, beta,
                    C + i0 * ldc, ldc);
  });
}

// C = alpha op(A) op(B) + beta C with tapegrad's kernels (core/packed_gemm.hpp): op(B) packed
// in blocks of kKc rows x kNc columns (the packed block stays in cache while the rows of A
// stream past it kMc at a time). Blocks of k after the first add into C (beta 1).
template void own_gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*,
                              std::size_t, const float*, std::size_t, float, float*, std::size_t);
template void own_gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*,
                               std::size_t, const double*, std::size_t, double, double*, std::size_t);

}  // namespace detail

void set_gemm_backend(GemmBackend backend) { g_gemm_backend.store(static_cast<int>(backend)); }

GemmBackend gemm_backend() { return static_cast<GemmBackend>(g_gemm_backend.load()); }

bool gemm_uses_own_kernels() { return use_own_gemm(); }

std::string blas_kernel_isa(const std::string& kernel) {
  std::string k = kernel;
  std::transform(k.begin(), k.end(), k.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  const auto any = [&k](std::initializer_list<const char*> names) {
    return std::find(names.begin(), names.end(), k) != names.end();
  };
  if (any({"skylakex", "cooperlake", "sapphirerapids"})) return "avx512";
  if (any({"haswell", "zen"})) return "avx2";
  if (any({"sandybridge", "bulldozer", "piledriver", "steamroller", "excavator"})) return "avx";
  if (any({"prescott", "core2", "penryn", "dunnington", "nehalem", "atom", "opteron", "opteron_sse3",
           "barcelona", "bobcat", "nano", "katmai", "coppermine", "northwood", "banias"})) {
    return "sse";
  }
  return "unknown";
}

bool BlasInfo::kernel_below_cpu() const {
  const int k = isa_rank(kernel_isa);
  return k > 0 && k < isa_rank(cpu_isa);
}

std::string BlasInfo::summary() const {
  return library + "; kernel " + kernel + " (" + kernel_isa + ") on a CPU with " + cpu_isa + "; " +
         std::to_string(threads) + (threads == 1 ? " thread" : " threads") + "; general GEMMs: " +
         (own_gemm ? "tapegrad's " + own_kernels + " kernels" : std::string("the BLAS")) +
         "; recurrent steps: tapegrad's " + own_kernels + " kernels";
}

std::string BlasInfo::warning() const {
  if (!kernel_below_cpu()) return "";
  const char* coretype = cpu_isa == "avx512" ? "SkylakeX" : cpu_isa == "avx2" ? "Haswell" : "Sandybridge";
  return "tapegrad: note: OpenBLAS runs its " + kernel + " (" + kernel_isa + ") kernels on a CPU with " +
         cpu_isa +
         (own_gemm ? "; tapegrad runs its matrix products on its own " + own_kernels + " kernels instead"
                   : std::string("; matrix products run several times slower than they could")) +
         ". To let OpenBLAS use its fast kernels, start the program with OPENBLAS_CORETYPE=" + coretype +
         " in its environment (OpenBLAS reads it only when it loads)";
}

BlasInfo blas_info() {
  BlasInfo info = machine_blas_info();
  info.own_gemm = use_own_gemm();
  return info;
}

void set_blas_warning(bool on) { g_blas_warning.store(on); }

template <class T>
void gemm(bool trans_a, bool trans_b, std::size_t M, std::size_t N, std::size_t K, T alpha, const T* A,
          std::size_t lda, const T* B, std::size_t ldb, T beta, T* C, std::size_t ldc) {
  if (M == 0 || N == 0) return;
  warn_once_about_kernel();
  check_gemm_args(trans_a, trans_b, M, N, K, A, lda, B, ldb, C, ldc);
  if (K == 0) {
    scale_rows(M, N, beta, C, ldc);
    return;
  }
  // Matrix-vector and outer-product shapes (the MLP at batch 1) go to GEMV and to a plain loop:
  // OpenBLAS's GEMM runs its generic small-matrix kernels on them. Element (i, j) of op(A) is
  // A[i lda + j] without trans_a and A[j lda + i] with it; likewise for B.
  const auto ld = [](std::size_t v) { return v == 0 ? std::size_t(1) : v; };
  if (K == 1) {
    outer(M, N, alpha, A, trans_a ? 1 : lda, B, trans_b ? ldb : 1, beta, C, ldc);
    return;
  }
  // (GEMV's beta = 0 may scale C by 0, NaN * 0 = NaN, depending on the OpenBLAS version: C is
  // zeroed here first, keeping gemm's "beta = 0 never reads C".)
  if (M == 1) {  // c (1 x N) = a (1 x K) op(B) = op(B)^T a
    if (beta == T(0)) std::fill(C, C + N, T(0));
    call_gemv(!trans_b, to_blas_int(trans_b ? N : K, "N"), to_blas_int(trans_b ? K : N, "K"), alpha, B,
              to_blas_int(ld(ldb), "ldb"), A, to_blas_int(trans_a ? ld(lda) : 1, "lda"), beta, C, 1);
    return;
  }
  if (N == 1) {  // c (M x 1, stride ldc) = op(A) b (K x 1)
    if (beta == T(0)) scale_rows(M, 1, T(0), C, ldc);
    call_gemv(trans_a, to_blas_int(trans_a ? K : M, "M"), to_blas_int(trans_a ? M : K, "K"), alpha, A,
              to_blas_int(ld(lda), "lda"), B, to_blas_int(trans_b ? 1 : ld(ldb), "ldb"), beta, C,
              to_blas_int(ld(ldc), "ldc"));
    return;
  }
  if (use_own_gemm()) {
    detail::own_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  // CBLAS requires every leading dimension >= 1 even where a matrix has a single column. With
  // set_num_threads(n > 1), large products are split into blocks of rows, one BLAS call each.
  // M is checked here although each call gets a block of its rows (never more than M).
  to_blas_int(M, "M");
  const int n = to_blas_int(N, "N"), k = to_blas_int(K, "K");
  const int la = to_blas_int(ld(lda), "lda"), lb = to_blas_int(ld(ldb), "ldb"),
            lc = to_blas_int(ld(ldc), "ldc");
  detail::parallel_for(M, detail::gemm_min_rows(N, K), detail::kGemmRowAlign,
                       [&](std::size_t i0, std::size_t i1) {
                         call(trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                              static_cast<int>(i1 - i0), n, k, alpha, rows_of_a(trans_a, A, lda, i0), la, B,
                              lb, beta, C + i0 * ldc, lc);
                       });
}

void set_blas_threads(int n) {
  if (n < 1) throw ValueError("set_blas_threads: need at least 1 thread; got " + std::to_string(n));
  openblas_set_num_threads(n);
}

int blas_threads() { return openblas_get_num_threads(); }

template void gemm<float>(bool, bool, std::size_t, std::size_t, std::size_t, float, const float*, std::size_t,
                          const float*, std::size_t, float, float*, std::size_t);
template void gemm<double>(bool, bool, std::size_t, std::size_t, std::size_t, double, const double*,
                           std::size_t, const double*, std::size_t, double, double*, std::size_t);

}  // namespace tapegrad
