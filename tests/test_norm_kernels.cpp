// The float fast paths of the fused normalization kernels (lib/ops/*norm_kernels*) against
// double precision: what they trade for speed must stay within float rounding.
#include "support.hpp"

namespace tg = tapegrad;

TEST_CASE("float32 layer_norm of wide rows with a large offset stays within float rounding of double") {
  // Rows of 1024 values 1e4 + 1e-2 z (the offset case), and of plain N(0, 1) values, against
  // the double op on the same float inputs. Error in units of the output's scale (~1).
  for (const double offset : {0.0, 1e4}) {
    INFO("offset " << offset);
    xt::xarray<float> x = tgtest::randn<float>({16, 1024}, 5, offset == 0 ? 1.0 : 1e-2);
    x += static_cast<float>(offset);
    const xt::xarray<float> w = tgtest::randn<float>({1024}, 6), b = tgtest::randn<float>({1024}, 7);
    const xt::xarray<float> up = tgtest::randn<float>({16, 1024}, 8);
    tg::Tape<float> tf;
    auto xf = tf.input(x, true);
    auto wf = tf.input(w, true), bf = tf.input(b, true);
    auto yf = tg::layer_norm(xf, wf, bf, 1);
    tf.backward(yf, up);
    tg::Tape<double> td;
    auto xd = td.input(xt::xarray<double>(xt::cast<double>(x)), true);
    auto wd = td.input(xt::xarray<double>(xt::cast<double>(w)), true);
    auto bd = td.input(xt::xarray<double>(xt::cast<double>(b)), true);
    auto yd = tg::layer_norm(xd, wd, bd, 1);
    td.backward(yd, xt::xarray<double>(xt::cast<double>(up)));
    const auto err = [](const xt::xarray<float>& a, const xt::xarray<double>& ref) {
      const double scale = xt::amax(xt::abs(ref))();
      return xt::amax(xt::abs(xt::xarray<double>(xt::cast<double>(a)) - ref))() / scale;
    };
    CHECK(err(yf.value(), yd.value()) < 2e-6);
    CHECK(err(tf.grad(xf), td.grad(xd)) < 2e-5);
    CHECK(err(tf.grad(wf), td.grad(wd)) < 2e-5);
    CHECK(err(tf.grad(bf), td.grad(bd)) < 1e-6);
  }
}

// ---- awkward sizes against a plain double reference -------------------------------------------
// The kernels sum in float blocks (row blocks of 256 values, 16-row blocks for dw, db and the
// BatchNorm channels) with vector tails; these sizes hit every remainder: dims that are not
// multiples of the vector width or block, 67 rows (4 full 16-row blocks and 3 rows over).

namespace {

// Textbook two-pass LayerNorm / BatchNorm over (N, C, L) in long double (x86: 64-bit
// significand, so the reference is ~1000x more precise than the double op): statistics of the values
// x[i, c, l] with `over_rows` (BatchNorm: per channel c, over i and l) or else per row i
// (LayerNorm, C = dim, L = 1), forward and all gradients for upstream g.
struct Reference {
  std::vector<double> y, dx, dw, db;
};

Reference reference_norm(const xt::xarray<float>& xf, const xt::xarray<float>& wf,
                         const xt::xarray<float>& bf, const xt::xarray<float>& gf, bool over_rows,
                         double eps) {
  const std::size_t n = xf.shape()[0], ch = xf.shape()[1], len = xf.dimension() == 3 ? xf.shape()[2] : 1;
  const std::size_t groups = over_rows ? ch : n;
  const auto idx = [&](std::size_t grp, std::size_t j) {  // j-th member of group grp
    if (!over_rows) return grp * ch + j;                  // row grp, column j
    return ((j / len) * ch + grp) * len + j % len;        // channel grp, (i, l) = j
  };
  const std::size_t m = over_rows ? n * len : ch;
  const auto param = [&](const xt::xarray<float>& p, std::size_t grp, std::size_t k) {
    return static_cast<long double>(p.data()[over_rows ? grp : k % ch]);
  };
  using LD = long double;
  Reference r;
  r.y.assign(xf.size(), 0.0);
  r.dx.assign(xf.size(), 0.0);
  r.dw.assign(ch, 0.0);
  r.db.assign(ch, 0.0);
  for (std::size_t grp = 0; grp < groups; ++grp) {
    LD mean = 0, var = 0;
    for (std::size_t j = 0; j < m; ++j) mean += xf.data()[idx(grp, j)];
    mean /= static_cast<LD>(m);
    for (std::size_t j = 0; j < m; ++j)
      var += (xf.data()[idx(grp, j)] - mean) * (xf.data()[idx(grp, j)] - mean);
    const LD rstd = 1 / std::sqrt(var / static_cast<LD>(m) + static_cast<LD>(eps));
    LD a1 = 0, a2 = 0;  // mean(dxhat), mean(dxhat xhat)
    for (std::size_t j = 0; j < m; ++j) {
      const std::size_t k = idx(grp, j);
      const LD xhat = (xf.data()[k] - mean) * rstd, g = gf.data()[k];
      r.y[k] = static_cast<double>(xhat * param(wf, grp, k) + param(bf, grp, k));
      a1 += g * param(wf, grp, k) / static_cast<LD>(m);
      a2 += g * param(wf, grp, k) * xhat / static_cast<LD>(m);
      r.dw[over_rows ? grp : k % ch] += static_cast<double>(g * xhat);
      r.db[over_rows ? grp : k % ch] += static_cast<double>(g);
    }
    for (std::size_t j = 0; j < m; ++j) {
      const std::size_t k = idx(grp, j);
      const LD xhat = (xf.data()[k] - mean) * rstd;
      r.dx[k] = static_cast<double>(rstd * (gf.data()[k] * param(wf, grp, k) - a1 - xhat * a2));
    }
  }
  return r;
}

// max |a - ref| / max |ref| (0 when both are all zeros).
template <class A>
double rel_err(const A& a, const std::vector<double>& ref) {
  REQUIRE(a.size() == ref.size());
  double e = 0, s = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    e = std::max(e, std::abs(static_cast<double>(a.data()[i]) - ref[i]));
    s = std::max(s, std::abs(ref[i]));
  }
  return s > 0 ? e / s : e;
}

// Runs layer_norm (normalized over the last dim) or batch_norm in T on float inputs and
// checks forward, dx, dw, db against the reference.
template <class T>
void check_against_reference(const xt::xarray<float>& x, bool batch, double tol_y, double tol_g) {
  const std::size_t ch = x.shape()[1];
  const std::size_t pdim = batch ? ch : x.shape()[x.dimension() - 1];
  const xt::xarray<float> w = tgtest::randn<float>({pdim}, 11) + 1.0f;
  const xt::xarray<float> b = tgtest::randn<float>({pdim}, 12);
  const xt::xarray<float> g = tgtest::randn<float>(x.shape(), 13);
  const Reference ref = reference_norm(x, w, b, g, batch, 1e-5);
  tg::Tape<T> t;
  auto xv = t.input(xt::xarray<T>(xt::cast<T>(x)), true);
  auto wv = t.input(xt::xarray<T>(xt::cast<T>(w)), true);
  auto bv = t.input(xt::xarray<T>(xt::cast<T>(b)), true);
  auto y = batch ? tg::batch_norm(xv, wv, bv, 1e-5) : tg::layer_norm(xv, wv, bv, 1, 1e-5);
  t.backward(y, xt::xarray<T>(xt::cast<T>(g)));
  CHECK(rel_err(y.value(), ref.y) < tol_y);
  CHECK(rel_err(t.grad(xv), ref.dx) < tol_g);
  CHECK(rel_err(t.grad(wv), ref.dw) < tol_g);
  CHECK(rel_err(t.grad(bv), ref.db) < tol_g);
}

xt::xarray<float> offset_data(const tg::Shape& s, double offset, std::uint64_t seed) {
  xt::xarray<float> x = tgtest::randn<float>(s, seed, offset == 0 ? 1.0 : 1e-2);
  x += static_cast<float>(offset);
  return x;
}

}  // namespace

TEST_CASE("float32 layer_norm on awkward sizes matches a plain double reference in y, dx, dw and db") {
  for (const double offset : {0.0, 1e4}) {
    for (const std::size_t dim : {1, 3, 17, 1000, 1029}) {
      for (const std::size_t rows : {1, 67}) {
        INFO("offset " << offset << ", (" << rows << ", " << dim << ")");
        const auto x = offset_data({rows, dim}, offset, 100 + dim + rows);
        check_against_reference<float>(x, false, 2e-6, 2e-5);
        check_against_reference<double>(x, false, 1e-11, 1e-9);
      }
    }
  }
}

TEST_CASE(
    "float32 batch_norm on awkward sizes, 2-D and 3-D, matches a plain double reference in y, dx, dw and db") {
  // (Not 2 values per channel: then xhat = +-1 and the exact dx vanishes by cancellation, so an
  // error relative to dx itself says nothing about float rounding.)
  const std::vector<tg::Shape> shapes = {{67, 1029}, {67, 3},     {4, 17},  {33, 40},
                                         {7, 5, 33}, {67, 3, 17}, {3, 2, 1}};
  for (const double offset : {0.0, 1e4}) {
    for (const auto& s : shapes) {
      INFO("offset " << offset << ", " << tg::shape_str(s));
      const auto x = offset_data(s, offset, 200 + s[0] + s[1]);
      check_against_reference<float>(x, true, 2e-6, 2e-5);
      check_against_reference<double>(x, true, 1e-11, 1e-9);
    }
  }
}
