#include <cmath>
#include <limits>

#include "reference_ops.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using tgtest::randn;
using Vars = std::vector<tg::Var<double>>;
using Arrays = std::vector<xt::xarray<double>>;

namespace {
// (shape, axes) pairs: all axes, single, negative, several non-adjacent, size-1 dims, 0-d.
const std::vector<std::pair<tg::Shape, tg::Axes>> kConfigs = {
    {{3, 4}, {}},     {{3, 4}, {0}},        {{3, 4}, {-1}}, {{2, 3, 4}, {0, 2}},  {{2, 3, 4}, {1}},
    {{4, 1, 3}, {1}}, {{4, 1, 3}, {0, -1}}, {{1, 5}, {0}},  {{2, 2, 3}, {-1, 0}}, {{}, {}},
    {{}, {0}},        {{5}, {0}},
};

tg::Var<double> reduce_by_name(const std::string& op, const tg::Var<double>& x, const tg::Axes& axes,
                               bool keepdims, bool unbiased) {
  if (op == "sum") return tg::sum(x, axes, keepdims);
  if (op == "mean") return tg::mean(x, axes, keepdims);
  if (op == "max") return tg::max(x, axes, keepdims);
  if (op == "min") return tg::min(x, axes, keepdims);
  if (op == "var") return tg::var(x, axes, unbiased, keepdims);
  throw std::runtime_error("unknown reduction " + op);
}
}  // namespace

TEST_CASE("reductions pass gradcheck over axes, keepdims and shapes with size-1 dims and 0-d") {
  for (const auto& config : kConfigs) {
    const tg::Shape& shape = config.first;  // not a structured binding: clang 14's lambdas cannot capture one
    const tg::Axes& axes = config.second;
    for (bool keepdims : {false, true}) {
      INFO("shape " << tg::shape_str(shape) << " axes " << tg::axes_str(axes) << " keepdims " << keepdims);
      const Arrays x = {randn(shape, 11)};  // distinct values: no ties for max/min
      for (const std::string op : {"sum", "mean", "max", "min"}) {
        INFO("op " << op);
        CHECK_GRADCHECK(
            [&](tg::Tape<double>&, const Vars& v) { return reduce_by_name(op, v[0], axes, keepdims, true); },
            x);
      }
      std::size_t n = 1;
      if (!shape.empty()) {
        for (auto a : tg::normalize_axes("test", axes, shape.size())) n *= shape[a];
      }
      CHECK_GRADCHECK([&](tg::Tape<double>&, const Vars& v) { return tg::var(v[0], axes, false, keepdims); },
                      x);
      if (n > 1) {
        CHECK_GRADCHECK([&](tg::Tape<double>&, const Vars& v) { return tg::var(v[0], axes, true, keepdims); },
                        x);
      }
    }
  }
}

TEST_CASE("reductions of reductions and the all-axes overloads pass gradcheck") {
  const Arrays x = {randn({3, 4, 2}, 12)};
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::sum(v[0]); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::mean(v[0]); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::max(v[0]); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::min(v[0]); }, x);
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::var(v[0]); }, x);
  CHECK_GRADCHECK(
      [](tg::Tape<double>&, const Vars& v) {
        return tg::var(tg::max(v[0], {1}, true) * tg::mean(v[0], {0}), {0, 1}, true, false);
      },
      x);
}

TEST_CASE("reductions match PyTorch's forward values and gradients") {
  const auto fx = tgtest::load_fixture("reduce.json");
  std::size_t checked = 0;
  for (const auto& c : fx.at("cases")) {
    const std::string op = c.at("op");
    const auto axes = c.at("axes").get<tg::Axes>();
    const bool keepdims = c.at("keepdims");
    const bool unbiased = c.value("unbiased", true);
    INFO("op " << op << " x " << c.at("x").at("shape").dump() << " axes " << tg::axes_str(axes)
               << " keepdims " << keepdims << " unbiased " << unbiased);
    tg::Tape<double> t;
    auto x = t.input(tgtest::to_array(c.at("x")), true);
    auto y = reduce_by_name(op, x, axes, keepdims, unbiased);
    const auto expected = tgtest::to_array(c.at("out"));
    REQUIRE(y.shape() == expected.shape());
    CHECK(tgtest::max_abs_diff(y.value(), expected) < 1e-12);
    t.backward(y, tgtest::to_array(c.at("upstream")));
    CHECK(tgtest::max_abs_diff(t.grad(x), tgtest::to_array(c.at("grad"))) < 1e-12);
    ++checked;
  }
  CHECK(checked > 200);
}

TEST_CASE("max and min split the gradient evenly among tied extremes") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{{1.0, 3.0, 3.0, 2.0}, {-1.0, -1.0, -1.0, 0.5}}, true);
  auto mx = tg::max(x, {1});
  auto mn = tg::min(x, {1});
  CHECK(mx.value() == xt::xarray<double>{3.0, 0.5});
  CHECK(mn.value() == xt::xarray<double>{1.0, -1.0});
  t.backward(mx, xt::xarray<double>{4.0, 6.0}, tg::BackwardOptions{true});
  CHECK(t.grad(x) == xt::xarray<double>{{0.0, 2.0, 2.0, 0.0}, {0.0, 0.0, 0.0, 6.0}});
  tg::Tape<double> t2;
  auto x2 = t2.input(t.value(x), true);
  t2.backward(tg::min(x2, {1}), xt::xarray<double>{4.0, 6.0});
  CHECK(t2.grad(x2) == xt::xarray<double>{{4.0, 0.0, 0.0, 0.0}, {2.0, 2.0, 2.0, 0.0}});
  tg::Tape<double> t3;  // the all-axes maximum is shared by its two copies
  auto x3 = t3.input(t.value(x), true);
  t3.backward(tg::max(x3));
  CHECK(t3.grad(x3) == xt::xarray<double>{{0.0, 0.5, 0.5, 0.0}, {0.0, 0.0, 0.0, 0.0}});
}

TEST_CASE("reduction output shapes follow axes and keepdims") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>::from_shape({2, 3, 4}));
  CHECK(tg::sum(x).shape() == tg::Shape{});
  CHECK(tg::sum(x, {}, true).shape() == tg::Shape{1, 1, 1});
  CHECK(tg::mean(x, {1}).shape() == tg::Shape{2, 4});
  CHECK(tg::mean(x, {-1, 0}, true).shape() == tg::Shape{1, 3, 1});
  CHECK(tg::max(x, {0, 1, 2}).shape() == tg::Shape{});
  CHECK(tg::var(x, {2}, true, true).shape() == tg::Shape{2, 3, 1});
  auto s = t.input(xt::xarray<float>(2.5f));
  CHECK(tg::sum(s, {0}, true).shape() == tg::Shape{});
  CHECK(tg::min(s, {-1}).item() == 2.5f);
}

TEST_CASE("float reductions agree with double ones") {
  const auto xd = randn({5, 6, 3}, 21);
  const xt::xarray<float> xf = xt::cast<float>(xd);
  tg::Tape<float> tf;
  tg::Tape<double> td;
  auto vf = tf.input(xf, true);
  auto vd = td.input(xd, true);
  for (const std::string op : {"sum", "mean", "max", "min", "var"}) {
    INFO("op " << op);
    const tg::Axes axes = {0, 2};
    tg::Var<float> yf = op == "sum"    ? tg::sum(vf, axes)
                        : op == "mean" ? tg::mean(vf, axes)
                        : op == "max"  ? tg::max(vf, axes)
                        : op == "min"  ? tg::min(vf, axes)
                                       : tg::var(vf, axes, true, false);
    tg::Var<double> yd = reduce_by_name(op, vd, axes, false, true);
    CHECK(tgtest::max_abs_diff(yf.value(), yd.value()) < 1e-5);
    const auto up = randn(yd.shape(), 22);
    tf.backward(yf, xt::xarray<float>(xt::cast<float>(up)));
    td.backward(yd, up);
    CHECK(tgtest::max_abs_diff(tf.grad(vf), td.grad(vd)) < 1e-5);
  }
}

TEST_CASE("var of float32 data with a large common offset is accurate to 1e-3 of the variance") {
  // 1e4 + 1e-2 * randn: a float's spacing at 1e4 is ~1e-3, and naive float sums lose the
  // deviations entirely. Judge against double computed on the same float32 inputs.
  const xt::xarray<float> xf = xt::cast<float>(1e4 + randn({6, 64}, 31, 1e-2));
  const xt::xarray<double> xd = xt::cast<double>(xf);
  tg::Tape<float> t;
  auto x = t.input(xf, true);
  for (std::ptrdiff_t axis : {0, 1}) {
    for (bool unbiased : {true, false}) {
      INFO("axis " << axis << " unbiased " << unbiased);
      auto v = tg::var(x, {axis}, unbiased, false);
      tg::Tape<double> td;  // the exact reference: same inputs, double arithmetic
      auto vd = tg::var(td.input(xd), {axis}, unbiased, false);
      double worst = 0;
      for (std::size_t k = 0; k < vd.size(); ++k) {
        const double ref = vd.value().data()[k];
        REQUIRE(ref > 1e-5);
        REQUIRE(ref < 1e-3);
        worst = std::max(worst, std::abs(v.value().data()[k] - ref) / ref);
      }
      CHECK(worst < 1e-3);
      // The gradient 2 (x - mean) / (n - d) is as accurate: its mean is recomputed in double.
      const auto up = xt::xarray<float>(xt::ones<float>(v.shape()));
      t.backward(v, up, tg::BackwardOptions{true});
      tg::Tape<double> tg2;
      auto xd2 = tg2.input(xd, true);
      tg2.backward(tg::var(xd2, {axis}, unbiased, false), xt::xarray<double>(xt::ones<double>(vd.shape())));
      double gmax = 0;
      for (auto g : tg2.grad(xd2)) gmax = std::max(gmax, std::abs(g));
      CHECK(tgtest::max_abs_diff(t.grad(x), tg2.grad(xd2)) < 1e-3 * gmax);
      x = t.input(xf, true);  // leaf grads accumulate: start the next round on a new leaf
    }
  }
}

TEST_CASE("degenerate reductions give PyTorch's NaN and 0 results") {
  tg::Tape<double> t;
  auto one = t.input(xt::xarray<double>{{2.0, 5.0}}, true);  // (1, 2)
  auto v = tg::var(one, {0});                                // n = 1, unbiased: 0/0
  CHECK(std::isnan(v.value()(0)));
  CHECK(std::isnan(v.value()(1)));
  CHECK(tg::var(one, {0}, false).value() == xt::xarray<double>{0.0, 0.0});
  t.backward(v, xt::xarray<double>{1.0, 1.0});
  CHECK(std::isnan(t.grad(one)(0, 0)));  // PyTorch: 2 / 0 * (x - mean) = inf * 0
  auto empty = t.input(xt::xarray<double>::from_shape({0, 3}), true);
  CHECK(tg::sum(empty, {0}).value() == xt::xarray<double>{0.0, 0.0, 0.0});
  CHECK(std::isnan(tg::mean(empty, {0}).value()(1)));
  CHECK(std::isnan(tg::var(empty, {0}, false).value()(2)));
  CHECK(tg::max(empty, {1}).shape() == tg::Shape{0});  // reducing a non-empty axis is fine
}

TEST_CASE("max and min propagate NaN and send its gradient to the NaN") {
  tg::Tape<double> t;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto x = t.input(xt::xarray<double>{1.0, nan, 3.0}, true);
  auto y = tg::max(x);
  CHECK(std::isnan(y.item()));
  CHECK(std::isnan(tg::min(x).item()));
  t.backward(y);
  CHECK(t.grad(x) == xt::xarray<double>{0.0, 1.0, 0.0});
}

TEST_CASE("reduction backward adds into gradients from other uses of the input") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{{1.0, 2.0}, {4.0, 3.0}}, true);
  auto y = tg::sum(x) + tg::mean(x) * 4.0 + tg::max(x) + tg::sum(tg::max(x, {1}));
  t.backward(y);
  CHECK(t.grad(x) == xt::xarray<double>{{2.0, 3.0}, {4.0, 2.0}});
}

TEST_CASE("bad reduction axes are ValueErrors naming the op and axes, and leave the tape unchanged") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>::from_shape({2, 3}), true);
  auto e = t.input(xt::xarray<float>::from_shape({2, 0}), true);
  const auto before = t.size();
  CHECK_THROWS_AS(tg::sum(x, {2}), tg::ValueError);
  CHECK_THROWS_WITH(tg::mean(x, {-3}),
                    Catch::Contains("mean") && Catch::Contains("axis -3") && Catch::Contains("2 dims"));
  CHECK_THROWS_WITH(tg::var(x, {1, -1}),
                    Catch::Contains("var") && Catch::Contains("[1, -1]") && Catch::Contains("repeats"));
  CHECK_THROWS_AS(tg::max(x, {0, 0}), tg::ValueError);
  CHECK_THROWS_WITH(tg::max(e, {1}), Catch::Contains("max") && Catch::Contains("axis 1 of size 0") &&
                                         Catch::Contains("(2, 0)"));
  CHECK_THROWS_AS(tg::min(e), tg::ValueError);
  auto s = t.input(xt::xarray<float>(1.0f));
  CHECK_THROWS_AS(tg::sum(s, {1}), tg::ValueError);
  CHECK(t.size() == before + 1);
}

// ---- the seed worked example: LayerNorm composed from primitive ops ----

TEST_CASE("LayerNorm composed from mean, var, sub, div and sqrt reproduces the worked example") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{{0.5, -1.2, 3.3, 0.8, -0.5}, {2.0, -0.7, 1.2, -3.5, 0.6}}, true);
  auto mu = tg::mean(x, {-1});
  auto var = tg::var(x, {-1}, /*unbiased=*/false);
  CHECK(std::abs(mu.value()(0) - 0.58) < 1e-12);
  CHECK(std::abs(mu.value()(1) - -0.08) < 1e-12);
  CHECK(std::abs(var.value()(0) - 2.3576) < 1e-12);
  CHECK(std::abs(var.value()(1) - 3.7016) < 1e-12);
  auto y = tgtest::layer_norm_reference(x, 1e-5);
  const xt::xarray<double> expected = {
      {-0.05210195320817495, -1.1592684588818931, 1.771466409077949, 0.14328037132248123,
       -0.7033763683103622},
      {1.081105321539628, -0.3222525477666199, 0.6652955824859249, -1.7775866344545805, 0.3534382781956476}};
  CHECK(tgtest::max_abs_diff(y.value(), expected) < 1e-12);
}

TEST_CASE("composed LayerNorm passes gradcheck, with and without affine") {
  const Arrays x = {xt::xarray<double>{{0.5, -1.2, 3.3, 0.8, -0.5}, {2.0, -0.7, 1.2, -3.5, 0.6}}};
  // Full mode probes each output with a unit upstream vector: the whole Jacobian, never the
  // sum of the outputs (whose gradient is zero for a normalization).
  CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tgtest::layer_norm_reference(v[0], 1e-5); },
                  x);
  CHECK_GRADCHECK(
      [](tg::Tape<double>&, const Vars& v) { return tgtest::layer_norm_reference(v[0], 1e-5, 2); },
      Arrays{randn({2, 3, 4}, 41)});
  CHECK_GRADCHECK(
      [](tg::Tape<double>&, const Vars& v) { return tgtest::layer_norm_reference(v[0], v[1], v[2], 1e-5); },
      (Arrays{randn({3, 4}, 42), randn({4}, 43), randn({4}, 44)}));
  tg::GradcheckOptions fast;
  fast.fast_mode = true;  // random upstream weights v^T J u
  const auto r =
      tg::gradcheck([](tg::Tape<double>&, const Vars& v) { return tgtest::layer_norm_reference(v[0], 1e-5); },
                    Arrays{randn({4, 6}, 45)}, fast);
  INFO(r.message);
  CHECK(r.ok);
}
