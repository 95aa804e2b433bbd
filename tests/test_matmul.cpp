#include <algorithm>
#include <array>
#include <limits>
#include <cstring>

#include "support.hpp"
#include "tapegrad/core/blas.hpp"

namespace tg = tapegrad;
using tgtest::randn;
using Vars = std::vector<tg::Var<double>>;
using Arrays = std::vector<xt::xarray<double>>;

namespace {

// Every rank combination matmul supports, with size-1 dims, one row, one column and K = 1.
const std::vector<std::pair<tg::Shape, tg::Shape>> kMatmulShapes = {
    {{5}, {5}},
    {{1}, {1}},
    {{3, 4}, {4, 2}},
    {{1, 4}, {4, 1}},
    {{3, 1}, {1, 2}},
    {{1, 1}, {1, 1}},
    {{4}, {4, 3}},
    {{3, 4}, {4}},
    {{1, 3}, {3}},
    {{2, 3, 4}, {2, 4, 5}},
    {{2, 3, 4}, {4, 5}},
    {{3, 4}, {2, 4, 5}},
    {{1, 3, 4}, {2, 4, 5}},
    {{2, 3, 4}, {1, 4, 5}},
    {{2, 3, 4}, {4}},
    {{4}, {2, 4, 3}},
    {{1, 1, 3}, {1, 3, 1}},
    {{2, 1, 3}, {3, 1}},
};

// Reference: out[b][i][j] = sum_k a[b][i][k] * w[j][k] (+ bias[j]), in double.
xt::xarray<double> naive_linear(const xt::xarray<double>& x, const xt::xarray<double>& w,
                                const xt::xarray<double>* bias) {
  const std::size_t in = w.shape()[1], out = w.shape()[0], rows = x.size() / in;
  xt::xarray<double> y = xt::xarray<double>::from_shape({rows, out});
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < out; ++j) {
      double s = bias ? (*bias)(j) : 0.0;
      for (std::size_t k = 0; k < in; ++k) s += x.data()[i * in + k] * w(j, k);
      y(i, j) = s;
    }
  }
  return y;
}

// Number of elements of row `row` of a that differ bitwise from row 0 of b.
template <class T>
std::size_t differing_bits(const xt::xarray<T>& a, std::size_t row, const xt::xarray<T>& b) {
  const std::size_t n = b.shape().back();
  std::size_t count = 0;
  for (std::size_t j = 0; j < n; ++j) {
    if (std::memcmp(a.data() + row * n + j, b.data() + j, sizeof(T)) != 0) ++count;
  }
  return count;
}

}  // namespace

TEST_CASE("matmul passes gradcheck for every supported rank combination and size-1 dims") {
  for (const auto& [sa, sb] : kMatmulShapes) {
    INFO("shapes " << tg::shape_str(sa) << " @ " << tg::shape_str(sb));
    const Arrays in = {randn(sa, 11), randn(sb, 12)};
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::matmul(v[0], v[1]); }, in);
  }
}

TEST_CASE("matmul gradients accumulate over several uses of an input and over a shared operand") {
  const Arrays in = {randn({3, 4}, 1), randn({4, 2}, 2), randn({4, 2}, 3)};
  CHECK_GRADCHECK(
      [](tg::Tape<double>&, const Vars& v) {
        return tg::matmul(v[0], v[1]) + tg::matmul(v[0], v[2]) * tg::matmul(v[0], v[1]);
      },
      in);
  const Arrays sq = {randn({3, 3}, 4)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::matmul(v[0], v[0]); }, sq);
}

TEST_CASE("matmul output shapes follow torch.matmul") {
  tg::Tape<float> t;
  auto shape_of = [&](const tg::Shape& sa, const tg::Shape& sb) {
    return tg::matmul(t.input(xt::xarray<float>::from_shape(sa)), t.input(xt::xarray<float>::from_shape(sb)))
        .shape();
  };
  CHECK(shape_of({5}, {5}) == tg::Shape{});
  CHECK(shape_of({4}, {4, 3}) == tg::Shape{3});
  CHECK(shape_of({3, 4}, {4}) == tg::Shape{3});
  CHECK(shape_of({2, 3, 4}, {4, 5}) == tg::Shape{2, 3, 5});
  CHECK(shape_of({3, 4}, {2, 4, 5}) == tg::Shape{2, 3, 5});
  CHECK(shape_of({1, 3, 4}, {2, 4, 5}) == tg::Shape{2, 3, 5});
  CHECK(shape_of({2, 3, 4}, {4}) == tg::Shape{2, 3});
  CHECK(shape_of({4}, {2, 4, 3}) == tg::Shape{2, 3});
  CHECK(shape_of({3, 0}, {0, 2}) == tg::Shape{3, 2});
}

TEST_CASE("a product over an empty inner dimension is zero, even in a reused output buffer") {
  tg::Tape<double> t;
  tg::matmul(t.input(randn({3, 2}, 1)), t.input(randn({2, 2}, 2)));  // fills slot 2's buffer
  t.reset();
  auto a = t.input(xt::xarray<double>::from_shape({3, 0}), true);
  auto b = t.input(xt::xarray<double>::from_shape({0, 2}), true);
  auto y = tg::matmul(a, b);  // slot 2 again: its old values must not leak through
  CHECK(y.value() == xt::zeros<double>({3, 2}));
  t.backward(y, randn({3, 2}, 5));
  CHECK(t.grad(a).shape() == tg::Shape{3, 0});
  CHECK(t.grad(b).shape() == tg::Shape{0, 2});
}

TEST_CASE("linear passes gradcheck with and without bias for x of rank 1, 2 and 3") {
  const std::vector<std::pair<tg::Shape, std::size_t>> cases = {{{3}, 2},       {{4, 3}, 5}, {{1, 3}, 1},
                                                                {{2, 3, 4}, 6}, {{5, 1}, 3}, {{1, 1}, 1}};
  for (const auto& [sx, out] : cases) {
    INFO("x " << tg::shape_str(sx) << ", out_features " << out);
    const tg::Shape sw{out, sx.back()};
    const Arrays with_bias = {randn(sx, 21), randn(sw, 22), randn({out}, 23)};
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::linear(v[0], v[1], v[2]); }, with_bias);
    const Arrays no_bias = {randn(sx, 21), randn(sw, 22)};
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::linear(v[0], v[1]); }, no_bias);
  }
}

TEST_CASE("linear is one node, and its weight and bias gradients accumulate over two uses") {
  tg::Tape<double> t;
  auto x = t.input(randn({4, 3}, 1));
  auto w = t.input(randn({2, 3}, 2), true);
  auto b = t.input(randn({2}, 3), true);
  const auto before = t.size();
  tg::linear(x, w, b);
  CHECK(t.size() == before + 1);
  CHECK(t.describe().find("linear") != std::string::npos);
  // W and b feed two linear nodes: their gradients are the sum over both (beta = 1 GEMMs).
  const Arrays in = {randn({4, 3}, 4), randn({4, 3}, 5), randn({2, 3}, 6), randn({2}, 7)};
  CHECK_GRADCHECK([](tg::Tape<double>&,
                     const Vars& v) { return tg::linear(v[0], v[2], v[3]) * tg::linear(v[1], v[2], v[3]); },
                  in);
}

TEST_CASE("matmul and linear match PyTorch's forward values and gradients") {
  const auto fx = tgtest::load_fixture("matmul.json");
  REQUIRE(fx.at("cases").size() == 19);
  for (const auto& c : fx.at("cases")) {
    const std::string op = c.at("op");
    tg::Tape<double> t;
    Vars in;
    for (const auto& j : c.at("inputs")) in.push_back(t.input(tgtest::to_array(j), true));
    std::string shapes;
    for (const auto& v : in) shapes += tg::shape_str(v.shape()) + " ";
    INFO(op << " " << shapes);
    tg::Var<double> y;
    if (op == "matmul")
      y = tg::matmul(in[0], in[1]);
    else if (in.size() == 3)
      y = tg::linear(in[0], in[1], in[2]);
    else
      y = tg::linear(in[0], in[1]);
    CHECK(tgtest::max_abs_diff(y.value(), tgtest::to_array(c.at("out"))) < 1e-12);
    t.backward(y, tgtest::to_array(c.at("upstream")));
    for (std::size_t k = 0; k < in.size(); ++k) {
      INFO("gradient of input " << k);
      CHECK(tgtest::max_abs_diff(t.grad(in[k]), tgtest::to_array(c.at("grads")[k])) < 1e-12);
    }
  }
}

TEST_CASE("float matmul and linear agree with a double reference") {
  const xt::xarray<double> x = randn({37, 300}, 1), w = randn({45, 300}, 2), b = randn({45}, 3);
  const xt::xarray<double> ref = naive_linear(x, w, &b);
  tg::Tape<float> t;
  auto xf = t.input(xt::xarray<float>(xt::cast<float>(x)));
  auto wf = t.input(xt::xarray<float>(xt::cast<float>(w)));
  auto bf = t.input(xt::xarray<float>(xt::cast<float>(b)));
  CHECK(tgtest::max_abs_diff(tg::linear(xf, wf, bf).value(), ref) < 1e-4);
  const xt::xarray<double> ref_nb = naive_linear(x, w, nullptr);
  // matmul(x, W^T) with W^T materialised: the same products through the NN path.
  auto wt = t.input(xt::xarray<float>(xt::transpose(xt::cast<float>(w))));
  CHECK(tgtest::max_abs_diff(tg::matmul(xf, wt).value(), ref_nb) < 1e-4);
}

TEST_CASE("the batch-invariant kernels compute the right values and pass gradcheck") {
  tg::BatchInvariantGuard on;
  REQUIRE(tg::batch_invariant());
  // Sizes that are not multiples of the kernels' blocks (8 lanes, 4-step k, 128, 256).
  const xt::xarray<double> x = randn({5, 301}, 1), w = randn({263, 301}, 2), b = randn({263}, 3);
  tg::Tape<double> t;
  auto xv = t.input(x), wv = t.input(w), bv = t.input(b);
  CHECK(tgtest::max_abs_diff(tg::linear(xv, wv, bv).value(), naive_linear(x, w, &b)) < 1e-10);
  CHECK(tgtest::max_abs_diff(tg::linear(xv, wv).value(), naive_linear(x, w, nullptr)) < 1e-10);
  auto wt = t.input(xt::xarray<double>(xt::transpose(w)));
  CHECK(tgtest::max_abs_diff(tg::matmul(xv, wt).value(), naive_linear(x, w, nullptr)) < 1e-10);
  for (const auto& [sa, sb] : kMatmulShapes) {
    INFO("shapes " << tg::shape_str(sa) << " @ " << tg::shape_str(sb));
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::matmul(v[0], v[1]); },
                    (Arrays{randn(sa, 11), randn(sb, 12)}));
  }
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::linear(v[0], v[1], v[2]); },
                  (Arrays{randn({2, 3, 4}, 1), randn({6, 4}, 2), randn({6}, 3)}));
}

TEST_CASE("BatchInvariantGuard restores the previous setting") {
  CHECK_FALSE(tg::batch_invariant());
  {
    tg::BatchInvariantGuard on;
    CHECK(tg::batch_invariant());
    {
      tg::BatchInvariantGuard off(false);
      CHECK_FALSE(tg::batch_invariant());
    }
    CHECK(tg::batch_invariant());
  }
  CHECK_FALSE(tg::batch_invariant());
}

TEST_CASE("in batch-invariant mode a row's output is bitwise the same in batches of 1 to 300") {
  // One fixed row r, placed at the end of batches of other random rows (9: past one register
  // tile; 300: past one 256-row block). linear (op(B) = W^T) and matmul (2-D and as a 3-D batch) must give r's output with
  // 0 differing bits. The default BLAS path is measured and reported, not required.
  const std::size_t in = 300, out = 257;
  const xt::xarray<float> r = randn<float>({1, in}, 7);
  const xt::xarray<float> w = randn<float>({out, in}, 8, 0.05);
  const xt::xarray<float> wt = xt::transpose(w);
  const xt::xarray<float> b = randn<float>({out}, 9);
  auto outputs = [&](std::size_t batch, bool invariant) {
    tg::BatchInvariantGuard mode(invariant);
    xt::xarray<float> x = randn<float>({batch, in}, 100 + batch);
    std::copy(r.begin(), r.end(), x.data() + (batch - 1) * in);
    tg::Tape<float> t;
    auto xv = t.input(x), wv = t.input(w), wtv = t.input(wt), bv = t.input(b);
    xt::xarray<float> x3 = x;
    x3.reshape({1, batch, in});
    return std::array<xt::xarray<float>, 3>{tg::linear(xv, wv, bv).value(), tg::matmul(xv, wtv).value(),
                                            tg::matmul(t.input(x3), wtv).value()};
  };
  const char* kNames[] = {"linear", "matmul 2-D", "matmul 3-D"};
  for (bool invariant : {true, false}) {
    const auto single = outputs(1, invariant);
    std::size_t blas_diffs = 0;
    std::string per_batch;
    for (std::size_t batch : {1, 2, 7, 9, 64, 256, 300}) {
      const auto many = outputs(batch, invariant);
      for (std::size_t k = 0; k < 3; ++k) {
        const std::size_t d = differing_bits(many[k], batch - 1, single[k]);
        INFO("batch " << batch << ", " << kNames[k]);
        if (invariant)
          CHECK(d == 0);
        else
          blas_diffs += d;
        if (!invariant) per_batch += " " + std::to_string(d);
      }
      if (!invariant) per_batch += " (batch " + std::to_string(batch) + ");";
    }
    if (!invariant) {
      WARN("default OpenBLAS path: "
           << blas_diffs << " of " << 7 * 3 * out
           << " output elements of the fixed row differ bitwise from its batch-of-1 result;"
           << " linear, matmul 2-D, matmul 3-D:" << per_batch);
    }
  }
}

TEST_CASE("matmul shape errors name both shapes and leave the tape unchanged") {
  tg::Tape<float> t;
  auto in = [&](const tg::Shape& s) { return t.input(xt::xarray<float>::from_shape(s)); };
  auto a34 = in({3, 4}), b52 = in({5, 2}), s = in({}), r4 = in({2, 2, 2, 2}), b234 = in({2, 3, 4}),
       b345 = in({3, 4, 5}), v5 = in({5});
  const auto before = t.size();
  CHECK_THROWS_AS(tg::matmul(a34, b52), tg::ShapeError);
  CHECK_THROWS_WITH(tg::matmul(a34, b52),
                    Catch::Contains("matmul: inner dimensions differ: (3, 4) @ (5, 2)"));
  CHECK_THROWS_WITH(tg::matmul(a34, v5),
                    Catch::Contains("inner dimensions") && Catch::Contains("(3, 4) @ (5)"));
  CHECK_THROWS_AS(tg::matmul(s, a34), tg::ShapeError);
  CHECK_THROWS_WITH(tg::matmul(s, a34),
                    Catch::Contains("at least 1 dimension") && Catch::Contains("() @ (3, 4)"));
  CHECK_THROWS_WITH(tg::matmul(r4, a34),
                    Catch::Contains("rank > 3") && Catch::Contains("(2, 2, 2, 2) @ (3, 4)"));
  CHECK_THROWS_WITH(tg::matmul(b234, b345),
                    Catch::Contains("batch dimensions differ") && Catch::Contains("(2, 3, 4) @ (3, 4, 5)"));
  CHECK(t.size() == before);
  tg::Tape<float> other;
  auto foreign = other.input(xt::xarray<float>::from_shape({4, 2}));
  CHECK_THROWS_AS(tg::matmul(a34, foreign), tg::StateError);
  CHECK_THROWS_AS(tg::matmul(a34, tg::Var<float>()), tg::StateError);
  CHECK(t.size() == before);
}

TEST_CASE("linear shape errors name x, W and b and leave the tape unchanged") {
  tg::Tape<double> t;
  auto in = [&](const tg::Shape& s) { return t.input(xt::xarray<double>::from_shape(s), true); };
  auto x = in({4, 3}), w = in({5, 3}), w_bad = in({5, 4}), w1 = in({3}), b = in({5}), b_bad = in({4}),
       b2 = in({1, 5}), s = in({});
  const auto before = t.size();
  CHECK_THROWS_AS(tg::linear(x, w_bad, b), tg::ShapeError);
  CHECK_THROWS_WITH(tg::linear(x, w_bad, b),
                    Catch::Contains("linear") && Catch::Contains("x (4, 3)") && Catch::Contains("W (5, 4)"));
  CHECK_THROWS_WITH(tg::linear(x, w1), Catch::Contains("2-D") && Catch::Contains("(3)"));
  CHECK_THROWS_WITH(tg::linear(x, w, b_bad),
                    Catch::Contains("bias must have shape (5)") && Catch::Contains("got (4)"));
  CHECK_THROWS_WITH(tg::linear(x, w, b2), Catch::Contains("got (1, 5)"));
  CHECK_THROWS_WITH(tg::linear(s, w), Catch::Contains("x ()"));
  CHECK(t.size() == before);
  // a failed call changed no gradient either: a later backward sees only the good node
  auto y = tg::linear(x, w, b);
  t.backward(y, xt::ones<double>({4, 5}));
  CHECK(t.grad(b) == xt::xarray<double>{4, 4, 4, 4, 4});
}

TEST_CASE("gemm handles transposes, leading dimensions and K = 0; BLAS threads can be set") {
  // C (2x2, stored with ldc 3) = A^T B^T with A (3x2) and B (2x3).
  const float A[] = {1, 2, 3, 4, 5, 6};
  const float B[] = {1, 0, 2, 0, 1, 1};
  float C[] = {9, 9, -1, 9, 9, -1};
  tg::gemm<float>(true, true, 2, 2, 3, 1.0f, A, 2, B, 3, 0.0f, C, 3);
  // A^T = [[1,3,5],[2,4,6]], B^T = [[1,0],[0,1],[2,1]]
  CHECK(C[0] == 11);
  CHECK(C[1] == 8);
  CHECK(C[3] == 14);
  CHECK(C[4] == 10);
  CHECK(C[2] == -1);  // outside the matrix: untouched
  tg::gemm<float>(false, false, 2, 2, 0, 1.0f, A, 1, B, 2, 0.5f, C, 3);
  CHECK(C[0] == 5.5f);
  const int previous = tg::blas_threads();
  tg::set_blas_threads(1);
  CHECK(tg::blas_threads() == 1);
  CHECK_THROWS_AS(tg::set_blas_threads(0), tg::ValueError);
  tg::set_blas_threads(previous);
}

namespace {
// gemm against a triple loop in long double over the given (M, N, K), every transpose, leading
// dimensions larger than the rows, beta = 0 over a C full of NaN (never read) and beta = 0.5.
template <class T>
void check_gemm_shapes(const std::vector<std::array<std::size_t, 3>>& sizes, double tol) {
  for (const auto& sz : sizes) {
    const std::size_t M = sz[0], N = sz[1], K = sz[2];
    for (const bool ta : {false, true}) {
      for (const bool tb : {false, true}) {
        for (const T beta : {T(0), T(0.5)}) {
          INFO("M " << M << " N " << N << " K " << K << " ta " << ta << " tb " << tb << " beta " << beta);
          const std::size_t lda = (ta ? M : K) + 2, ldb = (tb ? K : N) + 1, ldc = N + 3;
          const xt::xarray<T> A = tgtest::randn<T>({ta ? K : M, lda}, 1);
          const xt::xarray<T> B = tgtest::randn<T>({tb ? N : K, ldb}, 2);
          xt::xarray<T> C = tgtest::randn<T>({M, ldc}, 3);
          if (beta == T(0)) C.fill(std::numeric_limits<T>::quiet_NaN());
          xt::xarray<long double> ref = xt::zeros<long double>({M, N});
          for (std::size_t i = 0; i < M; ++i) {
            for (std::size_t j = 0; j < N; ++j) {
              long double s = 0;
              for (std::size_t k = 0; k < K; ++k) {
                s += static_cast<long double>(ta ? A(k, i) : A(i, k)) * (tb ? B(j, k) : B(k, j));
              }
              ref(i, j) = 1.5L * s + (beta == T(0) ? 0.0L : static_cast<long double>(beta) * C(i, j));
            }
          }
          tg::gemm<T>(ta, tb, M, N, K, T(1.5), A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
          for (std::size_t i = 0; i < M; ++i) {
            for (std::size_t j = 0; j < N; ++j) {
              CHECK(std::abs(static_cast<long double>(C(i, j)) - ref(i, j)) <=
                    tol * (1 + std::sqrt(double(K))));
            }
            for (std::size_t j = N; j < ldc; ++j) CHECK(std::isnan(C(i, j)) == (beta == T(0)));  // untouched
          }
        }
      }
    }
  }
}
}  // namespace

TEST_CASE("gemm's vector and outer-product shapes match a plain triple loop for every transpose") {
  // M = 1 and N = 1 go to GEMV, K = 1 to the outer-product loop (lib/core/blas.cpp). Sizes
  // cover the SIMD blocks and their tails.
  const std::vector<std::array<std::size_t, 3>> sizes = {{1, 5, 3},   {4, 1, 3},    {4, 5, 1},   {1, 1, 3},
                                                         {1, 5, 1},   {4, 1, 1},    {1, 70, 37}, {1, 9, 128},
                                                         {70, 1, 37}, {33, 1, 129}, {37, 70, 1}, {1, 1, 100}};
  check_gemm_shapes<double>(sizes, 1e-13);
  check_gemm_shapes<float>(sizes, 2e-5);
}

namespace {
struct BackendGuard {
  tg::GemmBackend before = tg::gemm_backend();
  explicit BackendGuard(tg::GemmBackend b) { tg::set_gemm_backend(b); }
  ~BackendGuard() { tg::set_gemm_backend(before); }
  BackendGuard(const BackendGuard&) = delete;
  BackendGuard& operator=(const BackendGuard&) = delete;
};
}  // namespace

TEST_CASE("gemm's general shapes match a plain triple loop with the BLAS and with tapegrad's own kernels") {
  // The own kernels block k by 256, columns by 2048 and rows by 256 (lib/core/blas.cpp): sizes
  // cross each block edge, and cover the micro-kernel's row and column tails.
  const std::vector<std::array<std::size_t, 3>> sizes = {{2, 3, 2},     {8, 32, 5},   {9, 33, 257},
                                                         {17, 45, 300}, {3, 2050, 3}, {260, 17, 7}};
  for (const auto backend : {tg::GemmBackend::kBlas, tg::GemmBackend::kOwn}) {
    const BackendGuard guard(backend);
    INFO("own kernels " << tg::gemm_uses_own_kernels());
    CHECK(tg::gemm_uses_own_kernels() == (backend == tg::GemmBackend::kOwn));
    check_gemm_shapes<double>(sizes, 1e-13);
    check_gemm_shapes<float>(sizes, 2e-5);
  }
}

TEST_CASE("matmul passes gradcheck with tapegrad's own GEMM kernels") {
  const BackendGuard guard(tg::GemmBackend::kOwn);
  for (const auto& [sa, sb] : kMatmulShapes) {
    INFO("shapes " << tg::shape_str(sa) << " @ " << tg::shape_str(sb));
    const Arrays in = {randn(sa, 11), randn(sb, 12)};
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::matmul(v[0], v[1]); }, in);
  }
}

TEST_CASE("blas_kernel_isa knows OpenBLAS's kernel names by instruction set, case-insensitively") {
  CHECK(tg::blas_kernel_isa("Prescott") == "sse");
  CHECK(tg::blas_kernel_isa("NEHALEM") == "sse");
  CHECK(tg::blas_kernel_isa("Sandybridge") == "avx");
  CHECK(tg::blas_kernel_isa("Haswell") == "avx2");
  CHECK(tg::blas_kernel_isa("Zen") == "avx2");
  CHECK(tg::blas_kernel_isa("SkylakeX") == "avx512");
  CHECK(tg::blas_kernel_isa("Cooperlake") == "avx512");
  CHECK(tg::blas_kernel_isa("SapphireRapids") == "avx512");
  CHECK(tg::blas_kernel_isa("NeoverseN1") == "unknown");
  CHECK(tg::blas_kernel_isa("") == "unknown");
}

TEST_CASE("BlasInfo warns, naming the OPENBLAS_CORETYPE to set, only when the kernel is below the CPU") {
  tg::BlasInfo info;
  info.library = "OpenBLAS 0.3.21";
  info.kernel = "Prescott";
  info.kernel_isa = "sse";
  info.cpu_isa = "avx512";
  CHECK(info.kernel_below_cpu());
  CHECK_THAT(info.warning(), Catch::Contains("Prescott (sse) kernels on a CPU with avx512") &&
                                 Catch::Contains("OPENBLAS_CORETYPE=SkylakeX"));
  info.own_kernels = "avx512f";
  info.own_gemm = true;
  CHECK_THAT(info.warning(), Catch::Contains("tapegrad runs its matrix products on its own avx512f kernels"));
  CHECK_THAT(info.summary(), Catch::Contains("general GEMMs: tapegrad's avx512f kernels"));
  info.own_gemm = false;
  CHECK_THAT(info.summary(), Catch::Contains("general GEMMs: the BLAS"));
  info.cpu_isa = "avx2";
  CHECK_THAT(info.warning(),
             Catch::Contains("OPENBLAS_CORETYPE=Haswell") && Catch::Contains("several times slower"));
  info.kernel = "Haswell";
  info.kernel_isa = "avx2";
  CHECK_FALSE(info.kernel_below_cpu());
  CHECK(info.warning().empty());
  info.kernel_isa = "unknown";  // a kernel tapegrad does not know is never called slow
  CHECK(info.warning().empty());
  CHECK_THAT(info.summary(), Catch::Contains("OpenBLAS 0.3.21; kernel Haswell (unknown) on a CPU with avx2"));
}

TEST_CASE("blas_info describes the OpenBLAS this program runs and the CPU it runs on") {
  const tg::BlasInfo info = tg::blas_info();
  CHECK_THAT(info.library, Catch::StartsWith("OpenBLAS"));
  CHECK_FALSE(info.kernel.empty());
  CHECK(info.kernel_isa == tg::blas_kernel_isa(info.kernel));
  CHECK(info.threads == tg::blas_threads());
  const std::vector<std::string> isas = {"avx512", "avx2", "avx", "sse"};
  CHECK(std::find(isas.begin(), isas.end(), info.cpu_isa) != isas.end());
  const std::vector<std::string> own = {"avx512f", "avx2+fma", "sse2"};
  CHECK(std::find(own.begin(), own.end(), info.own_kernels) != own.end());
  CHECK(info.warning().empty() == !info.kernel_below_cpu());
  INFO(info.summary());
  CHECK_THAT(info.summary(), Catch::Contains(info.kernel));
}
