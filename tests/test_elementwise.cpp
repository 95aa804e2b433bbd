#include "support.hpp"

namespace tg = tapegrad;
using tgtest::randn;
using tgtest::uniform;
using Vars = std::vector<tg::Var<double>>;
using Arrays = std::vector<xt::xarray<double>>;

namespace {
// Shape pairs that exercise broadcasting, including size-1 dims and 0-d scalars.
const std::vector<std::pair<tg::Shape, tg::Shape>> kShapePairs = {
    {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}},
    {{1}, {2, 3}},    {{}, {2, 2}},  {{5}, {}},        {{2, 1, 3}, {2, 4, 1}},
};
}  // namespace

TEST_CASE("binary ops pass gradcheck over broadcasting shapes") {
  for (const auto& [sa, sb] : kShapePairs) {
    INFO("shapes " << tg::shape_str(sa) << " and " << tg::shape_str(sb));
    const Arrays in = {randn(sa, 1), uniform(sb, 2, 0.5, 2.0)};  // b away from 0 for div
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return v[0] + v[1]; }, in);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return v[0] - v[1]; }, in);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return v[0] * v[1]; }, in);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return v[0] / v[1]; }, in);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return v[1] / v[0] * v[0]; }, in);
  }
}

TEST_CASE("broadcast forward values match NumPy semantics") {
  tg::Tape<double> t;
  xt::xarray<double> a0 = xt::xarray<double>::from_shape({3, 1});
  a0(0, 0) = 1.0, a0(1, 0) = 2.0, a0(2, 0) = 3.0;
  auto a = t.input(a0);                                // (3, 1)
  auto b = t.input(xt::xarray<double>({10.0, 20.0}));  // (2,)
  auto y = a * b + a;
  REQUIRE(y.shape() == tg::Shape{3, 2});
  CHECK(y.value() == xt::xarray<double>{{11, 21}, {22, 42}, {33, 63}});
}

TEST_CASE("unary ops pass gradcheck") {
  for (const tg::Shape& s : {tg::Shape{}, tg::Shape{1}, tg::Shape{3, 4}, tg::Shape{2, 1, 3}}) {
    INFO("shape " << tg::shape_str(s));
    const Arrays x = {randn(s, 3)};
    const Arrays pos = {uniform(s, 4, 0.2, 3.0)};
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return -v[0]; }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::exp(v[0]); }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::abs(v[0]); }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::pow(v[0], 3.0); }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::clamp(v[0], -0.5, 0.7); }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::log(v[0]); }, pos);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::sqrt(v[0]); }, pos);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return tg::pow(v[0], -1.5); }, pos);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return 2.0 - v[0] * 3.0 + 1.0; }, x);
    CHECK_GRADCHECK([](tg::Tape<double>&, const Vars& v) { return 2.0 / v[0] - v[0] / 4.0; }, pos);
  }
}

TEST_CASE("elementwise ops match PyTorch's forward values and gradients") {
  const auto fx = tgtest::load_fixture("elementwise.json");
  for (const auto& c : fx.at("cases")) {
    const std::string op = c.at("op");
    INFO("op " << op);
    tg::Tape<double> t;
    auto a = t.input(tgtest::to_array(c.at("a")), true);
    auto b = t.input(tgtest::to_array(c.at("b")), true);
    tg::Var<double> y;
    if (op == "add")
      y = a + b;
    else if (op == "sub")
      y = a - b;
    else if (op == "mul")
      y = a * b;
    else if (op == "div")
      y = a / b;
    else if (op == "pow")
      y = tg::pow(a, c.at("p").get<double>());
    else if (op == "exp")
      y = tg::exp(a);
    else if (op == "log")
      y = tg::log(a);
    else if (op == "sqrt")
      y = tg::sqrt(a);
    else if (op == "abs")
      y = tg::abs(a);
    else if (op == "clamp")
      y = tg::clamp(a, c.at("lo").get<double>(), c.at("hi").get<double>());
    else
      FAIL("unknown op in fixture: " << op);
    CHECK(tgtest::max_abs_diff(y.value(), tgtest::to_array(c.at("out"))) < 1e-12);
    t.backward(y, tgtest::to_array(c.at("upstream")));
    CHECK(tgtest::max_abs_diff(t.grad(a), tgtest::to_array(c.at("grad_a"))) < 1e-12);
    if (c.contains("grad_b")) {
      CHECK(tgtest::max_abs_diff(t.grad(b), tgtest::to_array(c.at("grad_b"))) < 1e-12);
    }
  }
}

TEST_CASE("a broadcast mismatch is a ShapeError naming both shapes and leaves the tape unchanged") {
  tg::Tape<float> t;
  auto a = t.input(xt::xarray<float>::from_shape({3, 4}));
  auto b = t.input(xt::xarray<float>::from_shape({5}));
  const auto before = t.size();
  CHECK_THROWS_WITH(a + b, Catch::Contains("add") && Catch::Contains("(3, 4)") && Catch::Contains("(5)"));
  CHECK_THROWS_AS(a * b, tg::ShapeError);
  CHECK(t.size() == before);
}

TEST_CASE("clamp with min above max is a ValueError") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{1.0});
  CHECK_THROWS_AS(tg::clamp(x, 2.0, 1.0), tg::ValueError);
  CHECK(t.size() == 1);
}

TEST_CASE("scalar arguments of any arithmetic type work with Var<float>") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>{1.0f, 2.0f});
  auto y = x * 2.0 + 1 - 0.5f;  // double, int and float literals
  CHECK(y.value() == xt::xarray<float>{2.5f, 4.5f});
}

TEST_CASE(
    "compound assignment records the op and rebinds the Var, micrograd-style, with the right gradients") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{2.0, -1.0}, true);
  auto y = t.input(xt::xarray<double>{3.0, 0.5}, true);
  auto a = x;
  a += y;    // x + y
  a *= x;    // (x + y) x
  a -= y;    // (x + y) x - y
  a /= y;    // ((x + y) x - y) / y
  a += 1.0;  // ... + 1
  a *= 2;    // 2 (...)
  a -= 0.5f;
  a /= 4.0;  // z = (2 (((x + y) x - y) / y + 1) - 0.5) / 4 = (x + y) x / (2 y) - 0.125
  CHECK(t.node(a.index()).op == std::string("mul_scalar"));
  CHECK(t.value(x) == xt::xarray<double>{2.0, -1.0});  // x itself is untouched: a new node was recorded
  const xt::xarray<double> xv = {2.0, -1.0}, yv = {3.0, 0.5};
  const xt::xarray<double> want = (2.0 * (((xv + yv) * xv - yv) / yv + 1.0) - 0.5) / 4.0;
  CHECK(xt::allclose(a.value(), want));
  t.backward(tg::sum(a));
  // dz/dx = (2x + y) / (2y); dz/dy = (x/y - (x + y) x / y^2) / 2 = -x^2 / (2 y^2)
  CHECK(xt::allclose(t.grad(x), (2.0 * xv + yv) / (2.0 * yv)));
  CHECK(xt::allclose(t.grad(y), -xv * xv / (2.0 * yv * yv)));
}

TEST_CASE("compound assignment passes gradcheck, also with a broadcast right-hand side") {
  const Arrays in = {randn({3, 4}, 3), uniform({4}, 4, 0.5, 2.0)};
  CHECK_GRADCHECK(
      [](tg::Tape<double>&, const Vars& v) {
        auto a = v[0];
        a += v[1];
        a *= v[1];
        a -= v[0];
        a /= v[1];
        a *= 3.0;
        a -= 1.0;
        return a;
      },
      in);
}

TEST_CASE(
    "compound assignment whose result would change the left side's shape is a ShapeError; x is unchanged") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>::from_shape({4}));
  auto y = t.input(xt::xarray<float>::from_shape({3, 4}));
  const auto x_before = x;
  const auto before = t.size();
  CHECK_THROWS_AS(x += y, tg::ShapeError);
  CHECK_THROWS_WITH(x *= y, Catch::Contains("*=") && Catch::Contains("(4)") && Catch::Contains("(3, 4)"));
  CHECK_THROWS_WITH(x -= t.input(xt::xarray<float>::from_shape({5})),
                    Catch::Contains("-=") && Catch::Contains("(4)") && Catch::Contains("(5)"));
  CHECK(t.size() == before + 1);  // only the input made for the last call
  CHECK(x.index() == x_before.index());
  t.reset();
  CHECK_THROWS_AS(x /= 2.0, tg::StateError);  // a stale Var
  tg::Var<float> empty;
  CHECK_THROWS_AS(empty += 1.0, tg::StateError);
  CHECK(t.size() == 0);
}
