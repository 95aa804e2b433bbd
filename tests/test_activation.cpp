#include <cmath>
#include <limits>

#include "support.hpp"

namespace tg = tapegrad;
using tgtest::randn;
using Vars = std::vector<tg::Var<double>>;
using Arrays = std::vector<xt::xarray<double>>;

namespace {

// N(0, 1) values moved at least 0.1 away from 0, so finite differences never straddle a kink.
xt::xarray<double> away_from_zero(const tg::Shape& s, std::uint64_t seed) {
  xt::xarray<double> x = randn(s, seed);
  for (auto& v : x) v += v < 0 ? -0.1 : 0.1;
  return x;
}

tg::Var<double> apply(const std::string& op, const nlohmann::json& opts, const tg::Var<double>& x) {
  if (op == "relu") return tg::relu(x);
  if (op == "leaky_relu") {
    return opts.contains("negative_slope") ? tg::leaky_relu(x, opts.at("negative_slope").get<double>())
                                           : tg::leaky_relu(x);
  }
  if (op == "tanh") return tg::tanh(x);
  if (op == "sigmoid") return tg::sigmoid(x);
  if (op == "gelu") {
    return tg::gelu(x, opts.at("approximate") == "tanh" ? tg::GeluApprox::Tanh : tg::GeluApprox::None);
  }
  if (op == "elu") return opts.contains("alpha") ? tg::elu(x, opts.at("alpha").get<double>()) : tg::elu(x);
  if (op == "softplus") {
    return opts.contains("beta")
               ? tg::softplus(x, opts.at("beta").get<double>(), opts.at("threshold").get<double>())
               : tg::softplus(x);
  }
  if (op == "softmax") return tg::softmax(x, opts.at("axis").get<std::ptrdiff_t>());
  if (op == "log_softmax") return tg::log_softmax(x, opts.at("axis").get<std::ptrdiff_t>());
  throw std::runtime_error("unknown op in fixture: " + op);
}

}  // namespace

TEST_CASE("elementwise activations pass gradcheck over several shapes") {
  for (const tg::Shape& s : {tg::Shape{}, tg::Shape{1}, tg::Shape{3, 4}, tg::Shape{2, 1, 3}}) {
    INFO("shape " << tg::shape_str(s));
    const Arrays x = {away_from_zero(s, 11)};
    const Arrays wide = {randn(s, 12, 4.0)};  // reaches the saturated tails and softplus's linear region
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::relu(v[0]); }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::leaky_relu(v[0]); }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::leaky_relu(v[0], -0.3); }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::tanh(v[0]); }, wide);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::sigmoid(v[0]); }, wide);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::gelu(v[0]); }, wide);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::gelu(v[0], tg::GeluApprox::Tanh); },
                    wide);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::elu(v[0]); }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::elu(v[0], 2.5); }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::softplus(v[0]); }, wide);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::softplus(v[0], 3.0, 4.0); }, x);
  }
}

TEST_CASE("softplus switches to the identity exactly above its threshold") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{4.9, 5.1, 30.0}, true);
  auto y = tg::softplus(x, 2.0, 10.0);  // beta x = 9.8, 10.2, 60
  CHECK(y.value()(0) == Approx(std::log1p(std::exp(9.8)) / 2.0).epsilon(1e-15));
  CHECK(y.value()(1) == 5.1);
  CHECK(y.value()(2) == 30.0);
  t.backward(y, xt::xarray<double>{1.0, 1.0, 1.0});
  CHECK(t.grad(x)(0) == Approx(1.0 / (1.0 + std::exp(-9.8))).epsilon(1e-15));
  CHECK(t.grad(x)(1) == 1.0);
  CHECK(t.grad(x)(2) == 1.0);
}

TEST_CASE("softmax and log_softmax pass gradcheck along every axis of 1-D, 2-D and 3-D inputs") {
  const std::vector<std::pair<tg::Shape, std::vector<std::ptrdiff_t>>> cases = {
      {{2, 3, 4}, {0, 1, 2, -1, -2, -3}},
      {{3, 1, 2}, {0, 1, -1}},
      {{4, 5}, {0, 1, -1}},
      {{1, 3}, {0, -1}},
      {{5}, {0, -1}},
      {{}, {0, -1}},
  };
  for (const auto& [shape, axes] : cases) {
    const Arrays x = {randn(shape, 21, 2.0)};
    for (const std::ptrdiff_t ax : axes) {
      INFO("shape " << tg::shape_str(shape) << ", axis " << ax);
      CHECK_GRADCHECK([ax](tg::Tape<double>&, const Vars& v) { return tg::softmax(v[0], ax); }, x);
      CHECK_GRADCHECK([ax](tg::Tape<double>&, const Vars& v) { return tg::log_softmax(v[0], ax); }, x);
    }
  }
}

TEST_CASE("softmax lanes sum to one along the chosen axis and equal exp of log_softmax") {
  tg::Tape<double> t;
  const tg::Shape s{2, 3, 4, 5};
  auto x = t.input(randn(s, 31, 3.0));
  for (std::size_t ax = 0; ax < s.size(); ++ax) {
    INFO("axis " << ax);
    const xt::xarray<double> p = tg::softmax(x, static_cast<std::ptrdiff_t>(ax)).value();
    const xt::xarray<double> lp = tg::log_softmax(x, static_cast<std::ptrdiff_t>(ax)).value();
    const xt::xarray<double> sums = xt::sum(p, {ax});
    CHECK(tgtest::max_abs_diff(sums, xt::xarray<double>(xt::ones<double>(sums.shape()))) < 1e-14);
    CHECK(tgtest::max_abs_diff(p, xt::xarray<double>(xt::exp(lp))) < 1e-14);
  }
}

TEST_CASE("activations match PyTorch's forward values and gradients, kinks included") {
  const auto fx = tgtest::load_fixture("activation.json");
  REQUIRE(fx.at("cases").size() >= 60);
  for (const auto& c : fx.at("cases")) {
    const std::string op = c.at("op");
    INFO("op " << op << " " << c.at("opts").dump() << ", x " << c.at("x").at("shape").dump());
    tg::Tape<double> t;
    auto x = t.input(tgtest::to_array(c.at("x")), true);
    auto y = apply(op, c.at("opts"), x);
    const xt::xarray<double> expected = tgtest::to_array(c.at("out"));
    CHECK(tgtest::max_abs_diff(y.value(), expected) <= 1e-12 * (1.0 + xt::amax(xt::abs(expected))()));
    t.backward(y, tgtest::to_array(c.at("upstream")));
    CHECK(tgtest::max_abs_diff(t.grad(x), tgtest::to_array(c.at("grad_x"))) < 1e-12);
  }
}

TEST_CASE("derivatives at the kinks follow PyTorch: relu'(0) = 0, leaky_relu'(0) = slope, elu'(0) = alpha") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{0.0}, true);
  auto y = tg::relu(x) + tg::leaky_relu(x, 0.25) * 10.0 + tg::elu(x, 0.5) * 100.0;
  t.backward(y);
  CHECK(t.grad(x)(0) == 0.0 + 2.5 + 50.0);
}

TEST_CASE("relu keeps NaN as NaN, as PyTorch does") {
  tg::Tape<float> t;
  auto y = tg::relu(t.input(xt::xarray<float>{std::numeric_limits<float>::quiet_NaN(), -1.0f, 2.0f}));
  CHECK(std::isnan(y.value()(0)));
  CHECK(y.value()(1) == 0.0f);
  CHECK(y.value()(2) == 2.0f);
}

TEST_CASE("float activations agree with double ones to float precision, forward and backward") {
  const tg::Shape s{3, 4, 5};
  const xt::xarray<double> xd = randn(s, 41, 3.0);
  const xt::xarray<double> gd = randn(s, 42);
  const std::vector<std::string> ops = {"relu",     "leaky_relu", "tanh",         "sigmoid",
                                        "gelu",     "gelu_tanh",  "elu",          "softplus",
                                        "softmax0", "softmax",    "log_softmax1", "log_softmax"};
  for (const auto& op : ops) {
    INFO("op " << op);
    auto run = [&op](auto x) {
      if (op == "relu") return tg::relu(x);
      if (op == "leaky_relu") return tg::leaky_relu(x);
      if (op == "tanh") return tg::tanh(x);
      if (op == "sigmoid") return tg::sigmoid(x);
      if (op == "gelu") return tg::gelu(x);
      if (op == "gelu_tanh") return tg::gelu(x, tg::GeluApprox::Tanh);
      if (op == "elu") return tg::elu(x);
      if (op == "softplus") return tg::softplus(x);
      if (op == "softmax0") return tg::softmax(x, 0);
      if (op == "softmax") return tg::softmax(x);
      if (op == "log_softmax1") return tg::log_softmax(x, 1);
      return tg::log_softmax(x);
    };
    tg::Tape<double> td;
    auto vd = td.input(xd, true);
    auto yd = run(vd);
    td.backward(yd, gd);
    tg::Tape<float> tf;
    auto vf = tf.input(xt::xarray<float>(xt::cast<float>(xd)), true);
    auto yf = run(vf);
    tf.backward(yf, xt::xarray<float>(xt::cast<float>(gd)));
    CHECK(tgtest::max_abs_diff(yf.value(), yd.value()) < 2e-6 * (1.0 + xt::amax(xt::abs(yd.value()))()));
    CHECK(tgtest::max_abs_diff(tf.grad(vf), td.grad(vd)) < 1e-5);
  }
}

TEST_CASE(
    "log_softmax and softmax of logits of magnitude 1e3 (double) and 1e4 (float) are finite and exact") {
  // Logits m, m - 1, m - 2, -m: log_softmax = -k - log(1 + e^-1 + e^-2) for k = 0, 1, 2, and
  // -2m - log(...) for the last; softmax of the last is 0.
  const double lse = std::log1p(std::exp(-1.0) + std::exp(-2.0));
  for (const double m : {1e3, 1e4}) {
    tg::Tape<double> td;
    auto xd = td.input(xt::xarray<double>{m, m - 1, m - 2, -m}, true);
    auto yd = tg::log_softmax(xd);
    for (int k = 0; k < 3; ++k) CHECK(yd.value()(k) == Approx(-k - lse).epsilon(1e-14));
    CHECK(yd.value()(3) == Approx(-2 * m - lse).epsilon(1e-15));
    td.backward(yd, xt::xarray<double>{1.0, 0.0, 0.0, 0.0});
    CHECK(td.grad(xd)(0) == Approx(1.0 - 1.0 / (1.0 + std::exp(-1.0) + std::exp(-2.0))).epsilon(1e-14));
    CHECK(td.grad(xd)(3) == 0.0);
  }
  // Float: the same lanes shifted by c, plus a logit 2e4 below the max.
  for (const float c : {1e3f, 1e4f, -1e4f}) {
    INFO("float logits around " << c);
    tg::Tape<float> t;
    auto x = t.input(xt::xarray<float>{c, c - 1, c - 2, c - 2e4f}, true);
    auto y = tg::log_softmax(x);
    auto p = tg::softmax(x);
    for (int k = 0; k < 3; ++k) {
      CHECK(y.value()(k) == Approx(-k - lse).epsilon(1e-6));
      CHECK(p.value()(k) == Approx(std::exp(-k - lse)).epsilon(1e-6));
    }
    CHECK(y.value()(3) == Approx(-2e4 - lse).epsilon(1e-6));
    CHECK(p.value()(3) == 0.0f);
    t.backward(y, xt::xarray<float>{1.0f, -2.0f, 0.5f, 1.0f});
    for (int k = 0; k < 4; ++k) CHECK(std::isfinite(t.grad(x)(k)));
    // dL/dx = g - softmax * sum(g), sum(g) = 0.5
    CHECK(t.grad(x)(0) == Approx(1.0 - 0.5 * std::exp(-lse)).epsilon(1e-6));
    CHECK(t.grad(x)(3) == 1.0f);
  }
}

TEST_CASE(
    "an axis out of range is a ValueError naming the axis and the rank, and leaves the tape unchanged") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>::from_shape({2, 3, 4}), true);
  auto s = t.input(xt::xarray<float>(2.0f), true);
  const auto before = t.size();
  CHECK_THROWS_AS(tg::softmax(x, 3), tg::ValueError);
  CHECK_THROWS_WITH(tg::softmax(x, 3),
                    Catch::Contains("softmax") && Catch::Contains("axis 3") && Catch::Contains("3 dims"));
  CHECK_THROWS_WITH(tg::log_softmax(x, -4), Catch::Contains("log_softmax") && Catch::Contains("axis -4"));
  CHECK_THROWS_AS(tg::log_softmax(s, 1), tg::ValueError);  // a 0-d input takes only 0 and -1
  CHECK(t.size() == before);
  CHECK(tg::softmax(s, -1).item() == 1.0f);
  CHECK(tg::log_softmax(s, 0).item() == 0.0f);
}

TEST_CASE("float tanh is within a few ulp of the exact tanh, saturates, keeps tiny values and NaN") {
  // Float tanh uses a vectorizable rational approximation (lib/ops/fast_math.hpp).
  std::vector<float> xs;
  for (int i = -120000; i <= 120000; ++i) xs.push_back(static_cast<float>(i) * 1e-4f);  // [-12, 12]
  for (float v : {1e-30f, -3e-5f, 3.99e-4f, 4.01e-4f, 50.0f, -1e30f}) xs.push_back(v);
  xt::xarray<float> x = xt::xarray<float>::from_shape({xs.size()});
  std::copy(xs.begin(), xs.end(), x.data());
  tg::Tape<float> t;
  const auto y = tg::tanh(t.input(x));
  double worst_ulp = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double exact = std::tanh(static_cast<double>(xs[i]));
    const float rounded = static_cast<float>(exact);
    const double ulp = std::nextafter(std::abs(rounded), 2.0f) - std::abs(rounded);
    worst_ulp = std::max(worst_ulp, std::abs(y.value()(i) - exact) / ulp);
  }
  INFO("worst error " << worst_ulp << " ulp");
  CHECK(worst_ulp < 6.0);  // measured 5.0 (glibc tanhf: ~1)
  CHECK(y.value()(xs.size() - 6) == 1e-30f);
  CHECK(y.value()(xs.size() - 2) == 1.0f);
  CHECK(y.value()(xs.size() - 1) == -1.0f);
  const auto n = tg::tanh(t.input(xt::xarray<float>({std::nanf("")})));
  CHECK(std::isnan(n.value()(0)));
}
