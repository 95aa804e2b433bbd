#include <cmath>
#include <limits>
#include <map>

#include "expect_error.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;
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

TEST_CASE(
    "an empty batch is a ValueError and logits that are 0-d or have a wrong target count are a ShapeError") {
  tg::Tape<double> t;
  auto empty = t.input(xt::xarray<double>::from_shape({0, 4}), true);
  auto cube = t.input(xt::xarray<double>::from_shape({2, 3, 4}), true);
  auto scalar = t.input(xt::xarray<double>(1.0), true);
  auto no_classes = t.input(xt::xarray<double>::from_shape({2, 0}), true);
  auto no_steps = t.input(xt::xarray<double>::from_shape({2, 3, 0}), true);
  const auto before = t.size();
  CHECK_THROWS_AS(tg::cross_entropy(empty, {}), tg::ValueError);
  CHECK_THROWS_WITH(tg::cross_entropy(empty, {}),
                    Catch::Contains("empty batch") && Catch::Contains("(0, 4)"));
  CHECK_THROWS_AS(tg::nll_loss(empty, {}), tg::ValueError);
  // (2, 3, 4) is (N, C, T): 8 targets, one per position of (2, 4).
  CHECK_THROWS_AS(tg::cross_entropy(cube, {0, 1}), tg::ShapeError);
  CHECK_THROWS_WITH(tg::cross_entropy(cube, {0, 1}),
                    Catch::Contains("2 targets") && Catch::Contains("(2, 3, 4)") &&
                        Catch::Contains("expected 8") && Catch::Contains("(2, 4)"));
  CHECK_THROWS_AS(tg::nll_loss(scalar, {0}), tg::ShapeError);
  CHECK_THROWS_WITH(tg::cross_entropy(scalar, {0}),
                    Catch::Contains("(N, C, d1, ...)") && Catch::Contains("0 dims"));
  CHECK_THROWS_WITH(tg::cross_entropy(no_steps, {}),
                    Catch::Contains("empty batch") && Catch::Contains("(2, 3, 0)"));
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

// ---- sequences: (N, C, T) and (N*T, C), ignore_index, masked means ----------------------------

namespace {

xt::xarray<std::int64_t> to_index(const nlohmann::json& j) {
  tg::Shape shape;
  for (const auto& d : j.at("shape")) shape.push_back(d.get<std::size_t>());
  xt::xarray<std::int64_t> a = xt::xarray<std::int64_t>::from_shape(shape);
  for (std::size_t i = 0; i < a.size(); ++i) a.data()[i] = j.at("data")[i].get<std::int64_t>();
  return a;
}

tg::Reduction reduction_named(const std::string& r) {
  return r == "none" ? tg::Reduction::None : r == "mean" ? tg::Reduction::Mean : tg::Reduction::Sum;
}

}  // namespace

TEST_CASE("sequence cross_entropy, nll_loss and masked_mean match PyTorch for (N, C, T) and (N*T, C)") {
  const auto fx = tgtest::load_fixture("embedding.json");
  std::map<std::string, std::pair<double, double>> worst;  // op -> (value, gradient)
  std::size_t n = 0;
  for (const auto& c : fx.at("cases")) {
    const std::string op = c.at("op");
    if (op == "embedding") continue;
    ++n;
    INFO(op << " " << c.value("reduction", "") << " ignore " << c.value("ignore_index", 0) << " axis "
            << c.value("axis", nlohmann::json()).dump());
    std::string key = op == "cross_entropy" ? "logits" : op == "nll_loss" ? "log_probs" : "x";
    for (const bool shaped : {false, true}) {
      if (op != "cross_entropy" && shaped) continue;
      tg::Tape<double> t;
      auto x = t.input(tgtest::to_array(c.at(key)), true);
      tg::Var<double> y;
      if (op == "masked_mean") {
        const auto m = to_index(c.at("mask"));
        xt::xarray<bool> mask = xt::xarray<bool>::from_shape(m.shape());
        for (std::size_t i = 0; i < m.size(); ++i) mask.data()[i] = m.data()[i] != 0;
        y = c.at("axis").is_null() ? tg::masked_mean(x, mask)
                                   : tg::masked_mean(x, mask, c.at("axis").get<std::ptrdiff_t>());
      } else {
        const auto tgt = to_index(c.at("targets"));
        const std::vector<std::int64_t> flat(tgt.begin(), tgt.end());
        const tg::Reduction r = reduction_named(c.at("reduction"));
        const std::int64_t ignore = c.at("ignore_index");
        if (op == "nll_loss") {
          y = tg::nll_loss(x, flat, r, ignore);
        } else {
          const auto o = ce_options(r, c.at("label_smoothing"), ignore);
          y = shaped ? tg::cross_entropy(x, tgt, o) : tg::cross_entropy(x, flat, o);
        }
      }
      const auto expected = tgtest::to_array(c.at("out"));
      const double d_out = tgtest::max_abs_diff(y.value(), expected);
      CHECK(d_out <= 1e-12 * (1.0 + xt::amax(xt::abs(expected))()));
      t.backward(y, tgtest::to_array(c.at("upstream")));
      const double d_grad = tgtest::max_abs_diff(t.grad(x), tgtest::to_array(c.at("grad_" + key)));
      CHECK(d_grad <= 1e-12);
      auto& w = worst[op];
      w = {std::max(w.first, d_out), std::max(w.second, d_grad)};
    }
  }
  CHECK(n == 42);
  for (const auto& [op, w] : worst)
    WARN(op << " vs PyTorch: max |out diff| " << w.first << ", max |grad diff| " << w.second);
}

TEST_CASE("cross_entropy over (N, C, T) passes gradcheck on odd shapes, with ignore_index and smoothing") {
  struct Case {
    tg::Shape shape;
    Targets targets;
  };
  const std::vector<Case> cases = {
      {{1, 3, 1}, {2}},                       // batch 1, T 1
      {{1, 1, 3}, {0, -100, 0}},              // one class
      {{2, 4, 3}, {3, -100, 0, 1, 2, -100}},  // padded positions
      {{2, 2, 1, 3}, {1, 0, -100, 0, 1, 1}},  // (N, C, d1, d2)
      {{3, 5}, {4, -100, 0}},                 // the flat layout, for comparison
  };
  for (const auto& c : cases) {
    const Arrays x = {randn(c.shape, 81, 2.0)};
    for (const tg::Reduction r : kReductions) {
      for (const double eps : {0.0, 0.3}) {
        INFO("logits " << tg::shape_str(c.shape) << ", " << name(r) << ", eps " << eps);
        const auto o = ce_options(r, eps);
        const Targets tgt = c.targets;
        CHECK_GRADCHECK(
            [o, tgt](tg::Tape<double>&, const Vars& v) { return tg::cross_entropy(v[0], tgt, o); }, x);
      }
    }
    CHECK_GRADCHECK(
        [c](tg::Tape<double>&, const Vars& v) { return tg::nll_loss(v[0], c.targets, tg::Reduction::Mean); },
        x);
  }
}

TEST_CASE("cross_entropy of (N, C, T) equals the (N*T, C) rows of the permuted logits, for every reduction") {
  tg::Tape<double> t;
  auto x = t.input(randn({2, 4, 3}, 82), true);
  auto rows = tg::reshape(tg::permute(x, {0, 2, 1}), {6, 4});
  const xt::xarray<std::int64_t> tgt = {{1, -100, 3}, {0, 2, 2}};
  const Targets flat(tgt.begin(), tgt.end());
  for (const tg::Reduction r : kReductions) {
    INFO(name(r));
    const auto o = ce_options(r, 0.1);
    auto seq = tg::cross_entropy(x, tgt, o);
    CHECK(seq.shape() == (r == tg::Reduction::None ? tg::Shape{2, 3} : tg::Shape{}));
    // (N, T) targets go with the (N*T, C) rows as they are (the documented relaxation).
    xt::xarray<double> as_rows = seq.value();
    if (r == tg::Reduction::None) as_rows.reshape({6});
    CHECK(tgtest::max_abs_diff(as_rows, tg::cross_entropy(rows, tgt, o).value()) < 1e-14);
    CHECK(tgtest::max_abs_diff(seq.value(), tg::cross_entropy(x, flat, o).value()) == 0.0);
  }
  // Mean divides by the 5 counted targets, not the 6 positions.
  const double sum = tg::cross_entropy(x, tgt, ce_options(tg::Reduction::Sum, 0.0)).item();
  CHECK(tg::cross_entropy(x, tgt).item() == Approx(sum / 5).epsilon(1e-14));
}

TEST_CASE("a sequence whose every target is ignored has a NaN mean and a zero gradient, as PyTorch 1.13") {
  tg::Tape<double> t;
  auto x = t.input(randn({2, 3, 4}, 83), true);
  const xt::xarray<std::int64_t> all = xt::xarray<std::int64_t>::from_shape({2, 4}) * 0 - 100;
  auto y = tg::cross_entropy(x, all);
  CHECK(std::isnan(y.item()));
  t.backward(y);
  CHECK(t.grad(x) == xt::zeros<double>({2, 3, 4}));
  CHECK(tg::cross_entropy(x, all, ce_options(tg::Reduction::Sum, 0.1)).item() == 0.0);
  CHECK(tg::cross_entropy(x, all, ce_options(tg::Reduction::None, 0.0)).value() == xt::zeros<double>({2, 4}));
}

TEST_CASE("masked_mean averages only the kept elements; length_mask builds the mask of padded sequences") {
  const xt::xarray<bool> mask = tg::length_mask({3, 1, 0}, 4);
  CHECK(mask == xt::xarray<bool>{
                    {true, true, true, false}, {true, false, false, false}, {false, false, false, false}});
  CHECK(tg::length_mask({}, 5).shape() == tg::Shape({0, 5}));
  tg::Tape<double> t;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  auto x = t.input(xt::xarray<double>{{1, 2, 6, nan}, {5, nan, 1e300, 7}, {nan, 1, 2, 3}}, true);
  auto per_seq = tg::masked_mean(x, mask, 1);
  CHECK(per_seq.value()(0) == 3.0);
  CHECK(per_seq.value()(1) == 5.0);
  CHECK(std::isnan(per_seq.value()(2)));  // an empty sequence: NaN, as a mean of nothing
  auto all = tg::masked_mean(x, mask);
  CHECK(all.item() == Approx(14.0 / 4));
  t.backward(tg::sum(tg::slice(per_seq, 0, 0, 2)) + all);
  const xt::xarray<double> expected = {
      {1.0 / 3 + 0.25, 1.0 / 3 + 0.25, 1.0 / 3 + 0.25, 0}, {1.25, 0, 0, 0}, {0, 0, 0, 0}};
  CHECK(tgtest::max_abs_diff(t.grad(x), expected) < 1e-15);  // padding (even NaN) gets exactly 0
}

TEST_CASE("masked_mean passes gradcheck over all elements and along each axis") {
  // No group along any axis is empty (an empty one is NaN, which gradcheck cannot difference).
  const xt::xarray<bool> mask = {{{true, false, true}, {false, true, true}},
                                 {{true, true, false}, {true, false, true}}};
  const Arrays x = {randn({2, 2, 3}, 84)};
  CHECK_GRADCHECK([mask](tg::Tape<double>&, const Vars& v) { return tg::masked_mean(v[0], mask); }, x);
  for (const std::ptrdiff_t axis : {0, 1, 2, -1}) {
    INFO("axis " << axis);
    CHECK_GRADCHECK(
        [mask, axis](tg::Tape<double>&, const Vars& v) { return tg::masked_mean(v[0], mask, axis); }, x);
  }
  const Arrays one = {randn({1, 1}, 85)};
  const xt::xarray<bool> keep = xt::ones<bool>({1, 1});
  CHECK_GRADCHECK([keep](tg::Tape<double>&, const Vars& v) { return tg::masked_mean(v[0], keep, 1); }, one);
}

TEST_CASE(
    "a (N, C, T) target out of range is a ValueError naming its position; shaped targets of another shape a ShapeError") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>::from_shape({2, 3, 4}), true);
  auto rows = t.input(xt::xarray<float>::from_shape({8, 3}), true);
  const tgtest::TapeSnapshot<float> snap(t);
  expect_error<tg::ValueError>(
      [&] {
        tg::cross_entropy(x, Targets{0, 1, 2, 0, 1, 3, 0, 0});
      },
      {"cross_entropy", "target 3", "index 5", "position (1, 1)", "3 classes"});
  expect_error<tg::ValueError>(
      [&] {
        tg::nll_loss(x, Targets{0, 1, 2, 0, 1, 2, -7, 0});
      },
      {"nll_loss", "target -7", "position (1, 2)"});
  expect_error<tg::ShapeError>([&] { tg::cross_entropy(x, Targets(6, 0)); },
                               {"6 targets", "(2, 3, 4)", "expected 8"});
  const xt::xarray<std::int64_t> transposed = xt::xarray<std::int64_t>::from_shape({4, 2}) * 0;
  expect_error<tg::ShapeError>([&] { tg::cross_entropy(x, transposed); },
                               {"cross_entropy", "targets of shape (4, 2)", "(2, 3, 4)", "expected (2, 4)"});
  const xt::xarray<std::int64_t> seven = xt::xarray<std::int64_t>::from_shape({7}) * 0;
  expect_error<tg::ShapeError>([&] { tg::cross_entropy(rows, seven); }, {"(7)", "(8, 3)", "expected (8)"});
  expect_error<tg::StateError>([&] { tg::cross_entropy(tg::Var<float>(), transposed); }, {"cross_entropy"});
  snap.check_unchanged();
}

TEST_CASE(
    "masked_mean with a mask of another shape or a bad axis, and length_mask with a too-long length, name the problem") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>::from_shape({2, 3}), true);
  const tgtest::TapeSnapshot<double> snap(t);
  expect_error<tg::ShapeError>(
      [&] {
        tg::masked_mean(x, xt::xarray<bool>::from_shape({3, 2}));
      },
      {"masked_mean", "mask of shape (3, 2)", "(2, 3)"});
  const xt::xarray<bool> ok = xt::xarray<bool>::from_shape({2, 3});
  expect_error<tg::ValueError>([&] { tg::masked_mean(x, ok, 2); }, {"masked_mean", "2"});
  expect_error<tg::ValueError>([&] { tg::masked_mean(x, ok, -3); }, {"masked_mean", "-3"});
  expect_error<tg::StateError>([&] { tg::masked_mean(tg::Var<double>(), ok); }, {"masked_mean"});
  snap.check_unchanged();
  expect_error<tg::ValueError>(
      [] {
        tg::length_mask({2, 5, 1}, 4);
      },
      {"length_mask", "lengths[1] = 5", "max_len 4"});
  expect_error<tg::ValueError>([] { tg::length_mask({1}, static_cast<std::size_t>(-1)); }, {"max_len", "-1"});
}
