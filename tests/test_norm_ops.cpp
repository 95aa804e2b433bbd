#include <xtensor/xmanipulation.hpp>
#include <xtensor/xview.hpp>

#include "support.hpp"

namespace tg = tapegrad;
using tgtest::max_err;
using tgtest::randn;
using tgtest::uniform;
using Vars = std::vector<tg::Var<double>>;
using Arrays = std::vector<xt::xarray<double>>;

namespace {

bool all_finite(const xt::xarray<double>& a) {
  for (double v : a) {
    if (!std::isfinite(v)) return false;
  }
  return true;
}

// ---- references for the float32 stability test: rows of a (G, D) array are the groups ----

// Double precision on the given float inputs: the result the float op must reproduce.
xt::xarray<double> normalize_rows_double(const xt::xarray<float>& x, double eps) {
  const std::size_t g = x.shape()[0], d = x.shape()[1];
  xt::xarray<double> y = xt::xarray<double>::from_shape(x.shape());
  for (std::size_t r = 0; r < g; ++r) {
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < d; ++i) mean += x(r, i);
    mean /= static_cast<double>(d);
    for (std::size_t i = 0; i < d; ++i) var += (x(r, i) - mean) * (x(r, i) - mean);
    var /= static_cast<double>(d);
    for (std::size_t i = 0; i < d; ++i) y(r, i) = (x(r, i) - mean) / std::sqrt(var + eps);
  }
  return y;
}

// The textbook shortcut var = E[x^2] - E[x]^2, all in float (variance clamped at 0 as such
// code does to avoid sqrt of a negative number).
xt::xarray<float> normalize_rows_naive_float(const xt::xarray<float>& x, float eps) {
  const std::size_t g = x.shape()[0], d = x.shape()[1];
  xt::xarray<float> y = xt::xarray<float>::from_shape(x.shape());
  for (std::size_t r = 0; r < g; ++r) {
    float s = 0, s2 = 0;
    for (std::size_t i = 0; i < d; ++i) {
      s += x(r, i);
      s2 += x(r, i) * x(r, i);
    }
    const float mean = s / static_cast<float>(d);
    const float var = std::max(0.0f, s2 / static_cast<float>(d) - mean * mean);
    for (std::size_t i = 0; i < d; ++i) y(r, i) = (x(r, i) - mean) / std::sqrt(var + eps);
  }
  return y;
}

// Two passes, but summing in float: the mean alone is already off by several std.
xt::xarray<float> normalize_rows_two_pass_float(const xt::xarray<float>& x, float eps) {
  const std::size_t g = x.shape()[0], d = x.shape()[1];
  xt::xarray<float> y = xt::xarray<float>::from_shape(x.shape());
  for (std::size_t r = 0; r < g; ++r) {
    float mean = 0, var = 0;
    for (std::size_t i = 0; i < d; ++i) mean += x(r, i);
    mean /= static_cast<float>(d);
    for (std::size_t i = 0; i < d; ++i) var += (x(r, i) - mean) * (x(r, i) - mean);
    var /= static_cast<float>(d);
    for (std::size_t i = 0; i < d; ++i) y(r, i) = (x(r, i) - mean) / std::sqrt(var + eps);
  }
  return y;
}

// x = 1e4 + 1e-2 z: a large common offset and a tiny spread.
xt::xarray<float> offset_input(const tg::Shape& shape, std::uint64_t seed) {
  xt::xarray<float> z = randn<float>(shape, seed);
  xt::xarray<float> x = xt::xarray<float>::from_shape(shape);
  for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = 1e4f + 1e-2f * z.data()[i];
  return x;
}

template <class T>
xt::xarray<T> transposed(const xt::xarray<T>& a) {
  xt::xarray<T> t = xt::transpose(a);
  return t;
}

}  // namespace

// ---- gradient checks -----------------------------------------------------------------------

TEST_CASE("layer_norm passes gradcheck over shapes, normalized dims and affine on/off") {
  struct Case {
    tg::Shape shape;
    std::size_t nd;
  };
  for (const Case& k : {Case{{3, 5}, 1}, Case{{2, 3, 4}, 1}, Case{{2, 3, 4}, 2}, Case{{4, 1}, 1},
                        Case{{1, 6}, 1}, Case{{2, 1, 3}, 2}, Case{{5}, 1}}) {
    INFO("shape " << tg::shape_str(k.shape) << ", normalized_ndim " << k.nd);
    const tg::Shape ns(k.shape.end() - static_cast<std::ptrdiff_t>(k.nd), k.shape.end());
    const Arrays affine = {randn(k.shape, 11, 2.0), uniform(ns, 12, 0.5, 1.5), randn(ns, 13)};
    const std::size_t nd = k.nd;
    CHECK_GRADCHECK([nd](tg::Tape<double>&, const Vars& v) { return tg::layer_norm(v[0], v[1], v[2], nd); },
                    affine);
    CHECK_GRADCHECK(
        [nd](tg::Tape<double>&, const Vars& v) {
          return tg::layer_norm(v[0], tg::Var<double>(), tg::Var<double>(), nd, 1e-3);
        },
        Arrays{affine[0]});
  }
}

TEST_CASE("batch_norm in training mode passes gradcheck over (N, C) and (N, C, L)") {
  for (const tg::Shape& s : {tg::Shape{4, 3}, tg::Shape{3, 2, 4}, tg::Shape{2, 3}, tg::Shape{3, 2, 1},
                             tg::Shape{1, 2, 3}, tg::Shape{2, 2, 1}}) {
    INFO("shape " << tg::shape_str(s));
    const tg::Shape cs{s[1]};
    const Arrays in = {randn(s, 21, 1.5), uniform(cs, 22, 0.5, 1.5), randn(cs, 23)};
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::batch_norm(v[0], v[1], v[2]); }, in);
    CHECK_GRADCHECK(
        [](tg::Tape<double>&, const Vars& v) {
          return tg::batch_norm(v[0], tg::Var<double>(), tg::Var<double>(), 1e-3);
        },
        Arrays{in[0]});
  }
}

TEST_CASE("batch_norm in eval mode passes gradcheck with constant running statistics") {
  for (const tg::Shape& s : {tg::Shape{4, 3}, tg::Shape{3, 2, 4}, tg::Shape{1, 3}, tg::Shape{2, 3, 1}}) {
    INFO("shape " << tg::shape_str(s));
    const tg::Shape cs{s[1]};
    const xt::xarray<double> rm = randn(cs, 31, 0.5), rv = uniform(cs, 32, 0.3, 2.0);
    const Arrays in = {randn(s, 33), uniform(cs, 34, 0.5, 1.5), randn(cs, 35)};
    CHECK_GRADCHECK(
        [&](tg::Tape<double>&, const Vars& v) { return tg::batch_norm_eval(v[0], v[1], v[2], rm, rv); }, in);
    CHECK_GRADCHECK(
        [&](tg::Tape<double>&, const Vars& v) {
          return tg::batch_norm_eval(v[0], tg::Var<double>(), tg::Var<double>(), rm, rv, 1e-3);
        },
        Arrays{in[0]});
  }
}

// ---- PyTorch -------------------------------------------------------------------------------

TEST_CASE("layer_norm and batch_norm match PyTorch's forward values and all gradients") {
  const auto fx = tgtest::load_fixture("norm_ops.json");
  std::size_t seen = 0;
  for (const auto& c : fx.at("cases")) {
    const std::string op = c.at("op");
    const double eps = c.at("eps");
    tg::Tape<double> t;
    auto x = t.input(tgtest::to_array(c.at("x")), true);
    const bool affine = c.contains("weight");
    INFO("op " << op << ", x " << tg::shape_str(x.shape()) << (affine ? ", affine" : ""));
    tg::Var<double> w, b;
    if (affine) {
      w = t.input(tgtest::to_array(c.at("weight")), true);
      b = t.input(tgtest::to_array(c.at("bias")), true);
    }
    tg::Var<double> y;
    if (op == "layer_norm") {
      y = tg::layer_norm(x, w, b, c.at("normalized_ndim").get<std::size_t>(), eps);
    } else if (op == "batch_norm") {
      xt::xarray<double> mean, var;
      y = tg::batch_norm(x, w, b, eps, &mean, &var);
      CHECK(max_err(mean, tgtest::to_array(c.at("batch_mean"))) < 1e-12);
      CHECK(max_err(var, tgtest::to_array(c.at("batch_var"))) < 1e-12);
      // What the module does for running_var: PyTorch tracks the unbiased variance.
      const double n = static_cast<double>(x.size() / x.shape()[1]);
      xt::xarray<double> unbiased = var * (n / (n - 1));
      CHECK(max_err(unbiased, tgtest::to_array(c.at("running_var_momentum1"))) < 1e-12);
    } else if (op == "batch_norm_eval") {
      y = tg::batch_norm_eval(x, w, b, tgtest::to_array(c.at("running_mean")),
                              tgtest::to_array(c.at("running_var")), eps);
    } else {
      FAIL("unknown op in fixture: " << op);
    }
    CHECK(max_err(y.value(), tgtest::to_array(c.at("out"))) < 1e-12);
    t.backward(y, tgtest::to_array(c.at("upstream")));
    CHECK(max_err(t.grad(x), tgtest::to_array(c.at("grad_x"))) < 1e-12);
    if (affine) {
      CHECK(max_err(t.grad(w), tgtest::to_array(c.at("grad_weight"))) < 1e-12);
      CHECK(max_err(t.grad(b), tgtest::to_array(c.at("grad_bias"))) < 1e-12);
    }
    ++seen;
  }
  CHECK(seen == 17);
}

// ---- properties ----------------------------------------------------------------------------

TEST_CASE("LayerNorm output of one example does not depend on the rest of the batch") {
  xt::xarray<double> a = randn({4, 3, 8}, 41, 2.0);
  xt::xarray<double> b = randn({6, 3, 8}, 42, 5.0);
  xt::view(b, 2) = xt::view(a, 0);  // the same example, in another batch at another position
  tg::Tape<double> t;
  const xt::xarray<double> w = randn({8}, 43), bias = randn({8}, 44);
  auto ya = tg::layer_norm(t.input(a), t.input(w), t.input(bias), 1);
  auto yb = tg::layer_norm(t.input(b), t.input(w), t.input(bias), 1);
  const xt::xarray<double> ra = xt::view(ya.value(), 0), rb = xt::view(yb.value(), 2);
  CHECK((ra == rb));  // bitwise: each group is computed on its own
}

TEST_CASE("LayerNorm output has mean 0 and biased std sqrt(var / (var + eps)) over its features") {
  const double eps = 1e-5;
  const xt::xarray<double> x = randn({5, 2, 6}, 51, 2.0);
  tg::Tape<double> t;
  auto y = tg::layer_norm(t.input(x), tg::Var<double>(), tg::Var<double>(), 2, eps);
  for (std::size_t g = 0; g < 5; ++g) {
    double mx = 0, vx = 0, my = 0, vy = 0;
    for (std::size_t i = 0; i < 12; ++i)
      mx += x.data()[g * 12 + i] / 12, my += y.value().data()[g * 12 + i] / 12;
    for (std::size_t i = 0; i < 12; ++i) {
      vx += std::pow(x.data()[g * 12 + i] - mx, 2) / 12;
      vy += std::pow(y.value().data()[g * 12 + i] - my, 2) / 12;
    }
    CHECK(std::abs(my) < 1e-12);
    CHECK(std::abs(std::sqrt(vy) - std::sqrt(vx / (vx + eps))) < 1e-12);
    CHECK(std::abs(std::sqrt(vy) - 1.0) < 1e-5);
  }
}

TEST_CASE("BatchNorm training output of an example changes with the rest of the batch; eval does not") {
  xt::xarray<double> a = randn({4, 3, 5}, 61);
  xt::xarray<double> b = randn({4, 3, 5}, 62);
  xt::view(b, 0) = xt::view(a, 0);
  const xt::xarray<double> rm = randn({3}, 63), rv = uniform({3}, 64, 0.5, 2.0);
  tg::Tape<double> t;
  auto ta = tg::batch_norm(t.input(a), tg::Var<double>(), tg::Var<double>());
  auto tb = tg::batch_norm(t.input(b), tg::Var<double>(), tg::Var<double>());
  const xt::xarray<double> ta0 = xt::view(ta.value(), 0), tb0 = xt::view(tb.value(), 0);
  CHECK(max_err(ta0, tb0) > 0.1);
  auto ea = tg::batch_norm_eval(t.input(a), tg::Var<double>(), tg::Var<double>(), rm, rv);
  auto eb = tg::batch_norm_eval(t.input(b), tg::Var<double>(), tg::Var<double>(), rm, rv);
  const xt::xarray<double> ea0 = xt::view(ea.value(), 0), eb0 = xt::view(eb.value(), 0);
  CHECK((ea0 == eb0));
}

TEST_CASE("two consumers of x add their gradients: layer_norm accumulates, never overwrites") {
  const xt::xarray<double> x0 = randn({3, 4}, 71), up = randn({3, 4}, 72);
  tg::Tape<double> t1;
  auto x1 = t1.input(x0, true);
  auto y1 = tg::layer_norm(x1, tg::Var<double>(), tg::Var<double>(), 1);
  t1.backward(y1, up);
  tg::Tape<double> t2;
  auto x2 = t2.input(x0, true);
  auto y2 = tg::layer_norm(x2, tg::Var<double>(), tg::Var<double>(), 1) +
            tg::layer_norm(x2, tg::Var<double>(), tg::Var<double>(), 1);
  t2.backward(y2, up);
  CHECK(max_err(t2.grad(x2), xt::xarray<double>(2.0 * t1.grad(x1))) < 1e-14);
}

// ---- numerical stability (float32) ---------------------------------------------------------

TEST_CASE(
    "float32 layer_norm of 1e4 + 1e-2 randn matches double precision within 1e-3; naive float does not") {
  const xt::xarray<float> x = offset_input({8, 64}, 81);
  const xt::xarray<double> ref = normalize_rows_double(x, 1e-5);
  tg::Tape<float> t;
  auto xv = t.input(x, true);
  auto y = tg::layer_norm(xv, tg::Var<float>(), tg::Var<float>(), 1);
  CHECK(max_err(y.value(), ref) < 1e-3);
  // The contrast: same inputs, same check, textbook float code fails it.
  CHECK(max_err(normalize_rows_naive_float(x, 1e-5f), ref) > 1e-3);
  CHECK(max_err(normalize_rows_two_pass_float(x, 1e-5f), ref) > 1e-3);

  // Gradients too: against the (PyTorch-checked) double op on the same float inputs.
  const xt::xarray<float> up = randn<float>({8, 64}, 82);
  t.backward(y, up);
  tg::Tape<double> td;
  auto xd = td.input(xt::xarray<double>(xt::cast<double>(x)), true);
  auto yd = tg::layer_norm(xd, tg::Var<double>(), tg::Var<double>(), 1);
  td.backward(yd, xt::xarray<double>(xt::cast<double>(up)));
  const double scale = xt::amax(xt::abs(td.grad(xd)))();  // ~ rstd = 100
  CHECK(max_err(t.grad(xv), td.grad(xd)) < 1e-4 * scale);
}

TEST_CASE("float32 batch_norm training of 1e4 + 1e-2 randn matches double precision; naive float does not") {
  for (const tg::Shape& s : {tg::Shape{8, 64}, tg::Shape{64, 8}}) {
    INFO("shape " << tg::shape_str(s));
    const xt::xarray<float> x = offset_input(s, 91);
    // channels are columns: normalize the rows of the transpose
    const xt::xarray<double> ref = transposed(normalize_rows_double(transposed(x), 1e-5));
    tg::Tape<float> t;
    xt::xarray<float> mean, var;
    auto xv = t.input(x, true);
    auto y = tg::batch_norm(xv, tg::Var<float>(), tg::Var<float>(), 1e-5, &mean, &var);
    CHECK(max_err(y.value(), ref) < 1e-3);
    const xt::xarray<float> up = randn<float>(s, 92);
    t.backward(y, up);
    tg::Tape<double> td;
    auto xd = td.input(xt::xarray<double>(xt::cast<double>(x)), true);
    auto yd = tg::batch_norm(xd, tg::Var<double>(), tg::Var<double>());
    td.backward(yd, xt::xarray<double>(xt::cast<double>(up)));
    const double scale = xt::amax(xt::abs(td.grad(xd)))();
    CHECK(max_err(t.grad(xv), td.grad(xd)) < 1e-4 * scale);
    CHECK(max_err(transposed(normalize_rows_naive_float(transposed(x), 1e-5f)), ref) > 1e-3);
    // The batch statistics handed to the module, against double on the same inputs.
    for (std::size_t c = 0; c < s[1]; ++c) {
      double m = 0, v = 0;
      for (std::size_t n = 0; n < s[0]; ++n) m += x(n, c) / static_cast<double>(s[0]);
      for (std::size_t n = 0; n < s[0]; ++n) v += (x(n, c) - m) * (x(n, c) - m) / static_cast<double>(s[0]);
      CHECK(std::abs(mean(c) - m) <= 1e4 * 6e-8);  // half a float spacing at 1e4
      CHECK(std::abs(var(c) - v) <= 1e-6 * v);
    }
  }
}

// ---- constant groups -----------------------------------------------------------------------

TEST_CASE("a constant LayerNorm row gives the bias as output and finite gradients") {
  xt::xarray<double> x = randn({3, 5}, 101);
  xt::view(x, 1) = 3.0;
  const xt::xarray<double> w = uniform({5}, 102, 0.5, 1.5), b = randn({5}, 103), up = randn({3, 5}, 104);
  const double eps = 1e-5;
  tg::Tape<double> t;
  auto xv = t.input(x, true), wv = t.input(w, true), bv = t.input(b, true);
  auto y = tg::layer_norm(xv, wv, bv, 1, eps);
  CHECK((xt::view(y.value(), 1) == b));  // 0 * rstd * w + b
  t.backward(y, up);
  CHECK(all_finite(t.grad(xv)));
  CHECK(all_finite(t.grad(wv)));
  // With xhat = 0: dx = rstd (dxhat - mean(dxhat)), rstd = 1 / sqrt(eps).
  double mean_dxhat = 0;
  for (std::size_t i = 0; i < 5; ++i) mean_dxhat += up(1, i) * w(i) / 5;
  for (std::size_t i = 0; i < 5; ++i) {
    CHECK(t.grad(xv)(1, i) == Approx((up(1, i) * w(i) - mean_dxhat) / std::sqrt(eps)).epsilon(1e-12));
  }
  // eps keeps the function smooth at a constant row: finite differences agree there too.
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::layer_norm(v[0], v[1], v[2], 1); },
                  (Arrays{x, w, b}));

  tg::Tape<float> tf;
  auto xf = tf.input(xt::xarray<float>(xt::cast<float>(x)), true);
  auto yf = tg::layer_norm(xf, tg::Var<float>(), tg::Var<float>(), 1);
  tf.backward(yf, xt::xarray<float>(xt::cast<float>(up)));
  for (float v : yf.value()) CHECK(std::isfinite(v));
  for (float v : tf.grad(xf)) CHECK(std::isfinite(v));
}

TEST_CASE("a constant BatchNorm channel in training gives finite output and gradients") {
  xt::xarray<double> x = randn({4, 3}, 111);
  xt::view(x, xt::all(), 2) = -1.5;
  tg::Tape<double> t;
  auto xv = t.input(x, true);
  auto y = tg::batch_norm(xv, tg::Var<double>(), tg::Var<double>());
  t.backward(y, randn({4, 3}, 112));
  CHECK(all_finite(y.value()));
  CHECK(all_finite(t.grad(xv)));
  for (std::size_t n = 0; n < 4; ++n) CHECK(y.value()(n, 2) == 0.0);
}

// ---- bad inputs ----------------------------------------------------------------------------

TEST_CASE(
    "layer_norm rejects bad normalized_ndim, weight/bias shapes and half-given affine, leaving the tape unchanged") {
  tg::Tape<double> t;
  auto x = t.input(randn({2, 3, 4}, 121), true);
  auto w4 = t.input(xt::xarray<double>(xt::ones<double>({4})), true);
  auto b4 = t.input(xt::xarray<double>(xt::zeros<double>({4})), true);
  auto w5 = t.input(xt::xarray<double>(xt::ones<double>({5})), true);
  auto w34 = t.input(xt::xarray<double>(xt::ones<double>({3, 4})), true);
  const auto before = t.size();
  CHECK_THROWS_AS(tg::layer_norm(x, w4, b4, 0), tg::ValueError);
  CHECK_THROWS_WITH(tg::layer_norm(x, w4, b4, 4), Catch::Contains("layer_norm") &&
                                                      Catch::Contains("(2, 3, 4)") &&
                                                      Catch::Contains("got 4"));
  CHECK_THROWS_AS(tg::layer_norm(x, w5, b4, 1), tg::ShapeError);
  CHECK_THROWS_WITH(tg::layer_norm(x, w5, b4, 1), Catch::Contains("weight has shape (5)") &&
                                                      Catch::Contains("(2, 3, 4)") &&
                                                      Catch::Contains("is (4)"));
  CHECK_THROWS_WITH(tg::layer_norm(x, w4, w5, 1), Catch::Contains("bias has shape (5)"));
  CHECK_THROWS_WITH(tg::layer_norm(x, w4, b4, 2),
                    Catch::Contains("weight has shape (4)") && Catch::Contains("is (3, 4)"));
  CHECK_THROWS_AS(tg::layer_norm(x, w34, b4, 2), tg::ShapeError);
  CHECK_THROWS_AS(tg::layer_norm(x, w4, tg::Var<double>(), 1), tg::ValueError);
  CHECK_THROWS_WITH(tg::layer_norm(x, tg::Var<double>(), b4, 1), Catch::Contains("bias only"));
  CHECK_THROWS_AS(tg::layer_norm(x, w4, b4, 1, -1.0), tg::ValueError);
  tg::Tape<double> other;
  auto wo = other.input(xt::xarray<double>(xt::ones<double>({4})));
  CHECK_THROWS_AS(tg::layer_norm(x, wo, b4, 1), tg::StateError);
  CHECK(t.size() == before);
  CHECK(other.size() == 1);
}

TEST_CASE(
    "batch_norm rejects bad ranks, channel mismatches and one value per channel, leaving the tape unchanged") {
  tg::Tape<float> t;
  auto x4d = t.input(xt::xarray<float>::from_shape({2, 3, 4, 5}));
  auto x1d = t.input(xt::xarray<float>::from_shape({3}));
  auto x = t.input(randn<float>({4, 3}, 131));
  auto one = t.input(randn<float>({1, 8}, 132));
  auto one3 = t.input(randn<float>({1, 8, 1}, 133));
  auto w3 = t.input(xt::xarray<float>(xt::ones<float>({3})));
  auto b3 = t.input(xt::xarray<float>(xt::zeros<float>({3})));
  auto w8 = t.input(xt::xarray<float>(xt::ones<float>({8})));
  auto b8 = t.input(xt::xarray<float>(xt::zeros<float>({8})));
  const xt::xarray<float> rm3 = xt::zeros<float>({3}), rv3 = xt::ones<float>({3}), rv4 = xt::ones<float>({4});
  const auto before = t.size();
  CHECK_THROWS_WITH(
      tg::batch_norm(x4d, tg::Var<float>(), tg::Var<float>()),
      Catch::Contains("batch_norm") && Catch::Contains("4-D") && Catch::Contains("(2, 3, 4, 5)"));
  CHECK_THROWS_AS(tg::batch_norm(x1d, tg::Var<float>(), tg::Var<float>()), tg::ShapeError);
  CHECK_THROWS_AS(tg::batch_norm_eval(x4d, tg::Var<float>(), tg::Var<float>(), rm3, rv3), tg::ShapeError);
  CHECK_THROWS_WITH(tg::batch_norm(x, w8, b8), Catch::Contains("weight has shape (8)") &&
                                                   Catch::Contains("(4, 3)") &&
                                                   Catch::Contains("3 channels"));
  CHECK_THROWS_AS(tg::batch_norm(x, w3, b8), tg::ShapeError);
  CHECK_THROWS_AS(tg::batch_norm_eval(x, w8, b8, rm3, rv3), tg::ShapeError);
  CHECK_THROWS_WITH(tg::batch_norm_eval(x, w3, b3, rm3, rv4),
                    Catch::Contains("running_var has shape (4)") && Catch::Contains("(4, 3)"));
  CHECK_THROWS_AS(tg::batch_norm(x, w3, tg::Var<float>()), tg::ValueError);
  xt::xarray<float> mean = {7.0f}, var = {7.0f};
  CHECK_THROWS_AS(tg::batch_norm(one, w8, b8, 1e-5, &mean, &var), tg::StateError);
  CHECK_THROWS_WITH(
      tg::batch_norm(one, w8, b8),
      Catch::Contains("Expected more than 1 value per channel when training, got input size (1, 8)"));
  CHECK_THROWS_WITH(tg::batch_norm(one3, tg::Var<float>(), tg::Var<float>()),
                    Catch::Contains("got input size (1, 8, 1)"));
  CHECK(mean(0) == 7.0f);  // out-parameters untouched by a failed call
  CHECK(var(0) == 7.0f);
  CHECK(t.size() == before);
  // Eval mode has no batch statistics: one example is fine there.
  const xt::xarray<float> rm8 = xt::zeros<float>({8}), rv8 = xt::ones<float>({8});
  CHECK_NOTHROW(tg::batch_norm_eval(one, w8, b8, rm8, rv8));
}

TEST_CASE("under NoGradGuard the norm ops compute values and record no backward") {
  tg::Tape<double> t;
  auto x = t.input(randn({3, 4}, 141), true);
  tg::NoGradGuard guard;
  auto y = tg::layer_norm(x, tg::Var<double>(), tg::Var<double>(), 1);
  auto z = tg::batch_norm(x, tg::Var<double>(), tg::Var<double>());
  CHECK_FALSE(y.requires_grad());
  CHECK_FALSE(z.requires_grad());
  CHECK(all_finite(y.value()));
  // nothing saved for a backward that never runs: the fresh slot holds no saved arrays
  CHECK(t.node(y.index()).saved.empty());
}
