// The packed-operand GEMM the recurrent layers use per time step (lib/core/packed_gemm.hpp,
// internal: this test alone has lib/ on its include path). Every kernel the CPU has is checked
// against a long-double reference over random shapes that cover every edge: M from 0 to 19
// (full 8- and 4-row tiles and each remainder), N from 0 to 70 (partial panels of every width),
// K from 0 (C = beta C) to 40, both layouts of B, beta 0 and 1, leading dimensions longer than
// a row.
#include <catch2/catch.hpp>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "core/packed_gemm.hpp"

namespace {

using tapegrad::detail::GemmIsa;
using tapegrad::detail::PackedMatrix;

struct Case {
  std::size_t M, N, K, lda, ldb, ldc;
  bool trans_b;
  bool beta_one;
};

template <class T>
std::vector<T> reference(const Case& c, const std::vector<T>& A, const std::vector<T>& B, std::vector<T> C) {
  for (std::size_t i = 0; i < c.M; ++i) {
    for (std::size_t j = 0; j < c.N; ++j) {
      long double s = c.beta_one ? static_cast<long double>(C[i * c.ldc + j]) : 0.0L;
      for (std::size_t k = 0; k < c.K; ++k) {
        const T b = c.trans_b ? B[j * c.ldb + k] : B[k * c.ldb + j];
        s += static_cast<long double>(A[i * c.lda + k]) * b;
      }
      C[i * c.ldc + j] = static_cast<T>(s);
    }
  }
  return C;
}

// The largest |error| / (1 + sum_k |a b|) over 2,000 random cases, and whether every entry
// outside the (M, N) block of C (the padding of ldc) kept its value.
template <class T>
std::pair<double, bool> worst_error(GemmIsa isa, unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_int_distribution<std::size_t> dm(0, 19), dn(0, 70), dk(0, 40), pad(0, 3);
  std::bernoulli_distribution coin(0.5);
  std::normal_distribution<double> normal;
  double worst = 0;
  bool padding_kept = true;
  PackedMatrix<T> packed;  // reused across shapes, as the recurrent layers reuse theirs
  for (int it = 0; it < 2000; ++it) {
    Case c{dm(gen), dn(gen), dk(gen), 0, 0, 0, coin(gen), coin(gen)};
    c.lda = c.K + pad(gen);
    c.ldb = (c.trans_b ? c.K : c.N) + pad(gen);
    c.ldc = c.N + pad(gen);
    std::vector<T> A(c.M * c.lda), B((c.trans_b ? c.N : c.K) * c.ldb), C(c.M * c.ldc);
    for (auto* v : {&A, &B, &C}) {
      for (auto& x : *v) x = static_cast<T>(normal(gen));
    }
    const std::vector<T> want = reference(c, A, B, C), before = C;
    packed.pack(c.trans_b, c.K, c.N, B.data(), c.ldb, isa);
    packed.multiply(c.M, A.data(), c.lda, c.beta_one ? T(1) : T(0), C.data(), c.ldc);
    for (std::size_t i = 0; i < c.M; ++i) {
      for (std::size_t j = 0; j < c.ldc; ++j) {
        const std::size_t at = i * c.ldc + j;
        if (j >= c.N) {
          padding_kept = padding_kept && C[at] == want[at];
          continue;
        }
        long double scale = 1 + (c.beta_one ? std::fabs(static_cast<long double>(before[at])) : 0.0L);
        for (std::size_t k = 0; k < c.K; ++k) {
          scale += std::fabs(static_cast<long double>(A[i * c.lda + k]) *
                             (c.trans_b ? B[j * c.ldb + k] : B[k * c.ldb + j]));
        }
        worst = std::max(worst, static_cast<double>(std::fabs(C[at] - want[at]) / scale));
      }
    }
  }
  return {worst, padding_kept};
}

}  // namespace

TEMPLATE_TEST_CASE(
    "PackedMatrix multiplies like a reference GEMM with every kernel this CPU has, on every edge shape", "",
    float, double) {
  // Rounding of a K-term sum (K <= 40) is at most about K ulps of sum |a b|.
  const double tol = 64 * std::numeric_limits<TestType>::epsilon();
  for (const GemmIsa isa : {GemmIsa::kBaseline, GemmIsa::kAvx2, GemmIsa::kAvx512}) {
    if (static_cast<int>(isa) > static_cast<int>(tapegrad::detail::best_gemm_isa())) continue;
    INFO("kernel " << tapegrad::detail::gemm_isa_name(isa));
    const auto [worst, padding_kept] = worst_error<TestType>(isa, 11 + static_cast<unsigned>(isa));
    CHECK(worst < tol);
    CHECK(padding_kept);
  }
}

TEST_CASE("a PackedMatrix row's result does not depend on the other rows multiplied with it") {
  // Each entry is accumulated over k in order whatever tile its row falls in: a recurrent
  // step's state for one example is the same bits in any batch.
  std::mt19937 gen(5);
  std::normal_distribution<float> normal;
  const std::size_t K = 37, N = 45, M = 13;
  std::vector<float> A(M * K), B(N * K);
  for (auto& x : A) x = normal(gen);
  for (auto& x : B) x = normal(gen);
  PackedMatrix<float> packed;
  packed.pack(true, K, N, B.data(), K);
  std::vector<float> all(M * N);
  packed.multiply(M, A.data(), K, 0.0f, all.data(), N);
  for (std::size_t i = 0; i < M; ++i) {
    std::vector<float> one(N);
    packed.multiply(1, A.data() + i * K, K, 0.0f, one.data(), N);
    CHECK(std::equal(one.begin(), one.end(), all.begin() + static_cast<std::ptrdiff_t>(i * N)));
  }
}

TEST_CASE("a PackedMatrix asked for a kernel the CPU lacks packs for the best one it has") {
  PackedMatrix<double> packed;
  const std::vector<double> B(6, 1.0);
  packed.pack(false, 2, 3, B.data(), 3, GemmIsa::kAvx512);
  CHECK(static_cast<int>(packed.isa()) <= static_cast<int>(tapegrad::detail::best_gemm_isa()));
  CHECK(packed.rows() == 2);
  CHECK(packed.cols() == 3);
}
