#include <cmath>
#include <limits>

#include "support.hpp"

namespace tg = tapegrad;
using tgtest::randn;
using tgtest::uniform;
using Vars = std::vector<tg::Var<double>>;
using Arrays = std::vector<xt::xarray<double>>;
using Targets = std::vector<std::int64_t>;

namespace {

const tg::Reduction kReductions[] = {tg::Reduction::None, tg::Reduction::Mean, tg::Reduction::Sum};

const char* name(tg::Reduction r) {
  return r == tg::Reduction::None ? "none" : r == tg::Reduction::Mean ? "mean" : "sum";
}

tg::Reduction reduction_of(const nlohmann::json& opts) {
  const std::string r = opts.at("reduction");
  return r == "none" ? tg::Reduction::None : r == "mean" ? tg::Reduction::Mean : tg::Reduction::Sum;
}

tg::CrossEntropyOptions ce_options(tg::Reduction r, double smoothing, std::int64_t ignore = -100) {
  tg::CrossEntropyOptions o;
  o.reduction = r;
  o.label_smoothing = smoothing;
  o.ignore_index = ignore;
  return o;
}

}  // namespace

TEST_CASE("cross_entropy passes gradcheck for every reduction, with and without smoothing and ignore_index") {
  struct Case {
    tg::Shape shape;
    Targets targets;
    std::int64_t ignore;
  };
  const std::vector<Case> cases = {
      {{4, 3}, {2, 0, 1, 1}, -100}, {{4, 3}, {2, -100, 1, -100}, -100}, {{4, 3}, {2, 0, 1, 1}, 1},
      {{1, 5}, {3}, -100},          {{3, 1}, {0, 0, 0}, -100},          {{5}, {4}, -100},
  };
  for (const auto& c : cases) {
    const Arrays x = {randn(c.shape, 51, 2.0)};
    for (const tg::Reduction r : kReductions) {
      for (const double eps : {0.0, 0.1, 1.0}) {
        INFO("logits " << tg::shape_str(c.shape) << ", ignore " << c.ignore << ", " << name(r) << ", eps "
                       << eps);
        const auto o = ce_options(r, eps, c.ignore);
        const Targets tgt = c.targets;
        const auto f = [o, tgt](tg::Tape<double>&, const Vars& v) { return tg::cross_entropy(v[0], tgt, o); };
        CHECK_GRADCHECK(f, x);
      }
    }
  }
}

TEST_CASE("nll_loss passes gradcheck for every reduction and with ignore_index") {
  const Arrays lp = {randn({4, 3}, 52)};
  const Arrays one = {randn({3}, 53)};
  for (const tg::Reduction r : kReductions) {
    INFO(name(r));
    CHECK_GRADCHECK(
        [r](tg::Tape<double>&, const Vars& v) {
          return tg::nll_loss(v[0], Targets{0, 2, 1, 2}, r);
        },
        lp);
    CHECK_GRADCHECK(
        [r](tg::Tape<double>&, const Vars& v) {
          return tg::nll_loss(v[0], Targets{0, 2, 1, 2}, r, 2);
        },
        lp);
    CHECK_GRADCHECK([r](tg::Tape<double>&, const Vars& v) { return tg::nll_loss(v[0], Targets{1}, r); }, one);
  }
}

TEST_CASE("mse_loss passes gradcheck with respect to input and target") {
  for (const tg::Shape& s : {tg::Shape{}, tg::Shape{1}, tg::Shape{3, 4}, tg::Shape{2, 1, 3}}) {
    const Arrays in = {randn(s, 54), randn(s, 55)};
    for (const tg::Reduction r : kReductions) {
      INFO("shape " << tg::shape_str(s) << ", " << name(r));
      CHECK_GRADCHECK([r](tg::Tape<double>&, const Vars& v) { return tg::mse_loss(v[0], v[1], r); }, in);
    }
  }
}

TEST_CASE("binary_cross_entropy_with_logits passes gradcheck for logits, targets and pos_weight") {
  const std::vector<std::pair<tg::Shape, tg::Shape>> shapes = {
      {{4, 3}, {3}}, {{4, 3}, {1}}, {{2, 1, 3}, {3}}, {{5}, {}}, {{}, {}}, {{3, 2}, {3, 2}}};
  for (const auto& [s, ws] : shapes) {
    const Arrays in = {randn(s, 56, 3.0), uniform(s, 57, 0.0, 1.0), uniform(ws, 58, 0.5, 3.0)};
    for (const tg::Reduction r : kReductions) {
      INFO("logits " << tg::shape_str(s) << ", pos_weight " << tg::shape_str(ws) << ", " << name(r));
      CHECK_GRADCHECK([r](tg::Tape<double>&,
                          const Vars& v) { return tg::binary_cross_entropy_with_logits(v[0], v[1], r); },
                      Arrays(in.begin(), in.begin() + 2));
      CHECK_GRADCHECK(
          [r](tg::Tape<double>&, const Vars& v) {
            return tg::binary_cross_entropy_with_logits(v[0], v[1], r, v[2]);
          },
          in);
    }
  }
}

TEST_CASE("losses match PyTorch's values and gradients for every reduction and option") {
  const auto fx = tgtest::load_fixture("loss.json");
  REQUIRE(fx.at("cases").size() >= 45);
  for (const auto& c : fx.at("cases")) {
    const std::string op = c.at("op");
    const auto& opts = c.at("opts");
    INFO("op " << op << " " << opts.dump());
    const tg::Reduction r = reduction_of(opts);
    tg::Tape<double> t;
    std::vector<std::pair<std::string, tg::Var<double>>> inputs;
    tg::Var<double> y;
    if (op == "cross_entropy" || op == "nll_loss") {
      const std::string key = op == "cross_entropy" ? "logits" : "log_probs";
      auto x = t.input(tgtest::to_array(c.at(key)), true);
      inputs.push_back({key, x});
      const Targets tgt = c.at("targets").get<Targets>();
      const std::int64_t ignore = opts.at("ignore_index");
      y = op == "cross_entropy" ? tg::cross_entropy(x, tgt, ce_options(r, opts.at("label_smoothing"), ignore))
                                : tg::nll_loss(x, tgt, r, ignore);
    } else if (op == "mse_loss") {
      auto a = t.input(tgtest::to_array(c.at("input")), true);
      auto b = t.input(tgtest::to_array(c.at("target")), true);
      inputs = {{"input", a}, {"target", b}};
      y = tg::mse_loss(a, b, r);
    } else if (op == "bce_with_logits") {
      auto a = t.input(tgtest::to_array(c.at("logits")), true);
      auto b = t.input(tgtest::to_array(c.at("targets")), true);
      inputs = {{"logits", a}, {"targets", b}};
      y = c.contains("pos_weight")
              ? tg::binary_cross_entropy_with_logits(a, b, r, t.input(tgtest::to_array(c.at("pos_weight"))))
              : tg::binary_cross_entropy_with_logits(a, b, r);
    } else {
      FAIL("unknown op in fixture: " << op);
    }
    const xt::xarray<double> expected = tgtest::to_array(c.at("out"));
    CHECK(tgtest::max_abs_diff(y.value(), expected) <= 1e-12 * (1.0 + xt::amax(xt::abs(expected))()));
    t.backward(y, tgtest::to_array(c.at("upstream")));
    for (const auto& [key, v] : inputs) {
      INFO("gradient of " << key);
      CHECK(tgtest::max_abs_diff(t.grad(v), tgtest::to_array(c.at("grad_" + key))) < 1e-12);
    }
  }
}

TEST_CASE("cross_entropy equals nll_loss of log_softmax, and the smoothed formula spelled out") {
  tg::Tape<double> t;
  auto x = t.input(randn({6, 4}, 61, 2.0));
  const Targets tgt = {3, 0, -100, 1, 2, 2};
  auto lp = tg::log_softmax(x, 1);
  for (const tg::Reduction r : kReductions) {
    INFO(name(r));
    CHECK(tgtest::max_abs_diff(tg::cross_entropy(x, tgt, ce_options(r, 0.0)).value(),
                               tg::nll_loss(lp, tgt, r).value()) < 1e-14);
  }
  // eps = 0.3, mean over the 5 non-ignored rows of 0.7 (-lp[t]) + 0.3 / 4 Σ_c (-lp[c]).
  double expected = 0;
  for (std::size_t n = 0; n < tgt.size(); ++n) {
    if (tgt[n] < 0) continue;
    double all = 0;
    for (std::size_t j = 0; j < 4; ++j) all -= lp.value()(n, j);
    expected += 0.7 * -lp.value()(n, static_cast<std::size_t>(tgt[n])) + 0.3 / 4 * all;
  }
  CHECK(tg::cross_entropy(x, tgt, ce_options(tg::Reduction::Mean, 0.3)).item() ==
        Approx(expected / 5).epsilon(1e-14));
}

TEST_CASE("cross_entropy with logits of magnitude 1e3 (double) and 1e4 (float) is finite and exact") {
  // Row (m, -m, m - 1): loss for target 1 is 2m + log(1 + e^-1 + e^-2m), for target 0 log(1 + e^-1 + ...).
  const double l1 = std::log1p(std::exp(-1.0));
  for (const double m : {1e3, 1e4}) {
    tg::Tape<double> t;
    auto x = t.input(xt::xarray<double>{{m, -m, m - 1}, {m, -m, m - 1}}, true);
    auto y = tg::cross_entropy(x, {1, 0}, ce_options(tg::Reduction::None, 0.0));
    CHECK(y.value()(0) == Approx(2 * m + l1).epsilon(1e-15));
    CHECK(y.value()(1) == Approx(l1).epsilon(1e-14));
    t.backward(y, xt::xarray<double>{1.0, 1.0});
    CHECK(t.grad(x)(0, 1) == -1.0);
    CHECK(t.grad(x)(1, 0) == Approx(1.0 / (1.0 + std::exp(-1.0)) - 1.0).epsilon(1e-14));
  }
  for (const float m : {1e3f, 1e4f}) {
    INFO("float logits of magnitude " << m);
    tg::Tape<float> t;
    auto x = t.input(xt::xarray<float>{{m, -m, m - 1}, {-m, -m - 1, m}}, true);
    auto y = tg::cross_entropy(x, {1, 2}, ce_options(tg::Reduction::Sum, 0.1));
    // smoothed: 0.9 nll + 0.1 / 3 Σ_c -log p_c; row 0: -log p = (l1, 2m + l1, 1 + l1);
    // row 1 (max m): -log p = (2m + ε1, 2m + 1 + ε1, ε1), ε1 = log1p(e^-2m + e^-2m-1) ≈ 0
    const double row0 = 0.9 * (2 * m + l1) + 0.1 / 3 * (2 * m + 1 + 3 * l1);
    const double row1 = 0.9 * 0.0 + 0.1 / 3 * (4 * m + 1);
    CHECK(std::isfinite(y.item()));
    CHECK(y.item() == Approx(row0 + row1).epsilon(1e-6));
    t.backward(y);
    for (std::size_t i = 0; i < 6; ++i) CHECK(std::isfinite(t.grad(x).data()[i]));
    CHECK(t.grad(x)(1, 2) == Approx(1.0 - (0.9 + 0.1 / 3)).epsilon(1e-6));
  }
}

TEST_CASE("binary_cross_entropy_with_logits is finite for logits of magnitude 1e4 in float") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>{1e4f, -1e4f, 1e4f, -1e4f}, true);
  auto y = t.input(xt::xarray<float>{1.0f, 0.0f, 0.0f, 1.0f});
  auto loss = tg::binary_cross_entropy_with_logits(x, y, tg::Reduction::None);
  CHECK(loss.value() == xt::xarray<float>{0.0f, 0.0f, 1e4f, 1e4f});
  t.backward(loss, xt::xarray<float>{1.0f, 1.0f, 1.0f, 1.0f});
  CHECK(t.grad(x) == xt::xarray<float>{0.0f, 0.0f, 1.0f, -1.0f});
}

TEST_CASE("a mean over only ignored targets is NaN with a zero gradient, as in PyTorch") {
  tg::Tape<double> t;
  auto x = t.input(randn({2, 3}, 62), true);
  auto y = tg::cross_entropy(x, {-100, -100}, ce_options(tg::Reduction::Mean, 0.2));
  CHECK(std::isnan(y.item()));
  t.backward(y);
  CHECK(t.grad(x) == xt::zeros<double>({2, 3}));
  CHECK(tg::cross_entropy(x, {-100, -100}, ce_options(tg::Reduction::Sum, 0.2)).item() == 0.0);
  CHECK(std::isnan(tg::nll_loss(x, {-100, -100}).item()));
}

TEST_CASE("float losses agree with double ones to float precision") {
  const xt::xarray<double> xd = randn({5, 4}, 63, 2.0), yd = uniform({5, 4}, 64, 0.0, 1.0);
  const xt::xarray<double> wd = uniform({4}, 65, 0.5, 2.0);
  const Targets tgt = {0, 3, -100, 1, 3};
  auto run = [&](auto x, auto y, auto w) {
    return tg::cross_entropy(x, tgt, ce_options(tg::Reduction::Mean, 0.1)) +
           tg::nll_loss(x, tgt, tg::Reduction::Sum) + tg::mse_loss(x, y) +
           tg::binary_cross_entropy_with_logits(x, y, tg::Reduction::Sum, w);
  };
  tg::Tape<double> td;
  auto xv = td.input(xd, true);
  auto ld = run(xv, td.input(yd, true), td.input(wd, true));
  td.backward(ld);
  tg::Tape<float> tf;
  auto xf = tf.input(xt::xarray<float>(xt::cast<float>(xd)), true);
  auto lf = run(xf, tf.input(xt::xarray<float>(xt::cast<float>(yd))),
                tf.input(xt::xarray<float>(xt::cast<float>(wd))));
  tf.backward(lf);
  CHECK(lf.item() == Approx(ld.item()).epsilon(1e-6));
  CHECK(tgtest::max_abs_diff(tf.grad(xf), td.grad(xv)) < 1e-5);
}

TEST_CASE("unreduced losses keep the per-row or per-element shape; reduced ones are 0-d") {
  tg::Tape<double> t;
  auto x = t.input(randn({3, 4}, 66));
  CHECK(tg::cross_entropy(x, {0, 1, 2}, ce_options(tg::Reduction::None, 0.0)).shape() == tg::Shape{3});
  CHECK(tg::cross_entropy(x, {0, 1, 2}).shape() == tg::Shape{});
  CHECK(tg::nll_loss(x, {0, 1, 2}, tg::Reduction::None).shape() == tg::Shape{3});
  CHECK(tg::mse_loss(x, x, tg::Reduction::None).shape() == tg::Shape{3, 4});
  CHECK(tg::binary_cross_entropy_with_logits(x, x, tg::Reduction::Sum).shape() == tg::Shape{});
  auto one = t.input(randn({4}, 67));
  CHECK(tg::cross_entropy(one, {2}, ce_options(tg::Reduction::None, 0.0)).shape() == tg::Shape{});
}

TEST_CASE("a target out of range is a ValueError naming its index and value, and leaves the tape unchanged") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>::from_shape({3, 5}), true);
  const auto before = t.size();
  CHECK_THROWS_AS(tg::cross_entropy(x, {0, 5, 1}), tg::ValueError);
  CHECK_THROWS_WITH(tg::cross_entropy(x, {0, 5, 1}),
                    Catch::Contains("cross_entropy") && Catch::Contains("target 5") &&
                        Catch::Contains("index 1") && Catch::Contains("5 classes"));
  CHECK_THROWS_WITH(tg::cross_entropy(x, {0, 1, -1}),
                    Catch::Contains("target -1") && Catch::Contains("index 2"));
  CHECK_THROWS_WITH(tg::nll_loss(x, {7, 1, 1}), Catch::Contains("nll_loss") && Catch::Contains("target 7"));
  // -100 is only special while it is the ignore_index
  CHECK_THROWS_WITH(tg::cross_entropy(x, {0, -100, 1}, ce_options(tg::Reduction::Mean, 0.0, 4)),
                    Catch::Contains("target -100") && Catch::Contains("ignore_index 4"));
  CHECK(t.size() == before);
}

TEST_CASE(
    "a targets length that differs from the batch is a ShapeError naming both, and leaves the tape unchanged") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>::from_shape({3, 5}), true);
  auto one = t.input(xt::xarray<double>::from_shape({5}), true);
  const auto before = t.size();
  CHECK_THROWS_AS(tg::cross_entropy(x, {0, 1}), tg::ShapeError);
  CHECK_THROWS_WITH(tg::cross_entropy(x, {0, 1}), Catch::Contains("2 targets") && Catch::Contains("(3, 5)"));
  CHECK_THROWS_AS(tg::nll_loss(x, {0, 1, 2, 3}), tg::ShapeError);
  CHECK_THROWS_WITH(tg::cross_entropy(one, {0, 1}), Catch::Contains("2 targets") && Catch::Contains("(5)"));
  CHECK(t.size() == before);
}

TEST_CASE("an empty batch is a ValueError and logits that are not (N, C) or (C) are a ShapeError") {
  tg::Tape<double> t;
  auto empty = t.input(xt::xarray<double>::from_shape({0, 4}), true);
  auto cube = t.input(xt::xarray<double>::from_shape({2, 3, 4}), true);
  auto scalar = t.input(xt::xarray<double>(1.0), true);
  auto no_classes = t.input(xt::xarray<double>::from_shape({2, 0}), true);
  const auto before = t.size();
  CHECK_THROWS_AS(tg::cross_entropy(empty, {}), tg::ValueError);
  CHECK_THROWS_WITH(tg::cross_entropy(empty, {}),
                    Catch::Contains("empty batch") && Catch::Contains("(0, 4)"));
  CHECK_THROWS_AS(tg::nll_loss(empty, {}), tg::ValueError);
  CHECK_THROWS_AS(tg::cross_entropy(cube, {0, 1}), tg::ShapeError);
  CHECK_THROWS_WITH(tg::cross_entropy(cube, {0, 1}),
                    Catch::Contains("(N, C)") && Catch::Contains("(2, 3, 4)"));
  CHECK_THROWS_AS(tg::nll_loss(scalar, {0}), tg::ShapeError);
  CHECK_THROWS_WITH(tg::cross_entropy(no_classes, {0, 0}),
                    Catch::Contains("no classes") && Catch::Contains("(2, 0)"));
  CHECK(t.size() == before);
}

TEST_CASE("label_smoothing outside [0, 1] is a ValueError naming the value, and leaves the tape unchanged") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>::from_shape({2, 3}), true);
  const auto before = t.size();
  CHECK_THROWS_AS(tg::cross_entropy(x, {0, 1}, ce_options(tg::Reduction::Mean, -0.1)), tg::ValueError);
  CHECK_THROWS_WITH(tg::cross_entropy(x, {0, 1}, ce_options(tg::Reduction::Mean, 1.5)),
                    Catch::Contains("label_smoothing") && Catch::Contains("1.5"));
  CHECK_THROWS_AS(tg::cross_entropy(x, {0, 1}, ce_options(tg::Reduction::Mean, std::nan(""))),
                  tg::ValueError);
  CHECK(t.size() == before);
}

TEST_CASE("mse_loss and bce_with_logits reject targets of another shape (stricter than PyTorch's warning)") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>::from_shape({4, 3}), true);
  auto col = t.input(xt::xarray<float>::from_shape({4, 1}));
  auto w_bad = t.input(xt::xarray<float>::from_shape({4}));
  auto w_big = t.input(xt::xarray<float>::from_shape({2, 4, 3}));
  const auto before = t.size();
  CHECK_THROWS_AS(tg::mse_loss(x, col), tg::ShapeError);
  CHECK_THROWS_WITH(tg::mse_loss(x, col),
                    Catch::Contains("mse_loss") && Catch::Contains("(4, 3)") && Catch::Contains("(4, 1)"));
  CHECK_THROWS_AS(tg::binary_cross_entropy_with_logits(x, col), tg::ShapeError);
  CHECK_THROWS_WITH(tg::binary_cross_entropy_with_logits(x, x, tg::Reduction::Mean, w_bad),
                    Catch::Contains("pos_weight") && Catch::Contains("(4)") && Catch::Contains("(4, 3)"));
  CHECK_THROWS_AS(tg::binary_cross_entropy_with_logits(x, x, tg::Reduction::Mean, w_big), tg::ShapeError);
  CHECK(t.size() == before);
}
