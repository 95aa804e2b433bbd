// RMSNorm: the fused op (ops/rms_norm.hpp) and the module (nn/rms_norm.hpp): gradcheck, the
// PyTorch 2.4 formula composed in PyTorch 1.13 (fixtures), batch independence, float
// precision, and the bad-input cases.
#include <xtensor/xview.hpp>

#include "expect_error.hpp"
#include "norm_fixture.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;
using tgtest::max_err;
using tgtest::randn;
using tgtest::uniform;
using Vars = std::vector<tg::Var<double>>;
using Arrays = std::vector<xt::xarray<double>>;

namespace {

// Rows of a (G, D) array scaled by their inverse root mean square, in double.
xt::xarray<double> rms_rows(const xt::xarray<double>& x, double eps) {
  const std::size_t g = x.shape()[0], d = x.shape()[1];
  xt::xarray<double> y = xt::xarray<double>::from_shape(x.shape());
  for (std::size_t r = 0; r < g; ++r) {
    double q = 0;
    for (std::size_t i = 0; i < d; ++i) q += x(r, i) * x(r, i);
    const double s = 1.0 / std::sqrt(q / static_cast<double>(d) + eps);
    for (std::size_t i = 0; i < d; ++i) y(r, i) = x(r, i) * s;
  }
  return y;
}

}  // namespace

TEST_CASE("rms_norm passes gradcheck over odd shapes, normalized dims and affine on/off") {
  struct Case {
    tg::Shape shape;
    std::size_t nd;
  };
  for (const Case& k : {Case{{3, 5}, 1}, Case{{2, 3, 4}, 1}, Case{{2, 3, 4}, 2}, Case{{4, 1}, 1},
                        Case{{1, 7}, 1}, Case{{5}, 1}, Case{{3, 37}, 1}}) {
    INFO("shape " << tg::shape_str(k.shape) << ", normalized_ndim " << k.nd);
    const tg::Shape ns(k.shape.end() - static_cast<std::ptrdiff_t>(k.nd), k.shape.end());
    const Arrays in = {randn(k.shape, 11, 2.0), uniform(ns, 12, 0.5, 1.5)};
    const std::size_t nd = k.nd;
    CHECK_GRADCHECK([nd](tg::Tape<double>&, const Vars& v) { return tg::rms_norm(v[0], v[1], nd, 1e-5); },
                    in);
    CHECK_GRADCHECK(
        [nd](tg::Tape<double>&, const Vars& v) { return tg::rms_norm(v[0], tg::Var<double>(), nd); },
        Arrays{in[0]});
  }
}

TEST_CASE("RMSNorm passes gradcheck_module for input and weight") {
  tg::RMSNorm<double> rn(tg::Shape{3, 5});
  rn.weight->value = uniform({3, 5}, 14, 0.5, 1.5);
  const auto r = tg::gradcheck_module(rn, randn({2, 3, 5}, 16, 1.5));
  INFO(r.message);
  CHECK(r.ok);
}

TEST_CASE("rms_norm matches the PyTorch 2.4 formula composed in PyTorch 1.13: values and all gradients") {
  const auto check = [](const nlohmann::json& c, normfx::Comparison& compare) {
    tg::Tape<double> t;
    auto x = normfx::leaf(t, c, "x");
    const bool affine = c.contains("weight");
    const std::size_t nd = c.at("normalized_ndim");
    INFO("x " << tg::shape_str(x.shape()) << ", nd " << nd << (affine ? ", affine" : ""));
    tg::Var<double> w;
    if (affine) w = normfx::leaf(t, c, "weight");
    const std::optional<double> eps =
        c.at("eps").is_null() ? std::nullopt : std::optional<double>(c.at("eps").get<double>());
    normfx::check_out_and_grad_x(compare, c, t, x, tg::rms_norm(x, w, nd, eps));
    if (affine) compare("grad_weight", t.grad(w));
  };
  normfx::check_cases("rms_norm.json", 8, "rms_norm", check);
}

TEST_CASE("rms_norm's default eps is the dtype's machine epsilon") {
  CHECK(tg::rms_norm_default_eps<float>() == static_cast<double>(std::numeric_limits<float>::epsilon()));
  CHECK(tg::rms_norm_default_eps<double>() == std::numeric_limits<double>::epsilon());
  // A zero row: 0 / sqrt(eps) = 0, and the gradient is 1 / sqrt(eps) (finite: eps > 0).
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>(xt::zeros<float>({1, 4})), true);
  auto y = tg::rms_norm(x, tg::Var<float>(), 1);
  t.backward(y, xt::xarray<float>({{1.f, 0.f, 0.f, 0.f}}));
  CHECK(t.grad(x)(0, 0) == Approx(1.0 / std::sqrt(std::numeric_limits<float>::epsilon())).epsilon(1e-6));
}

TEST_CASE("RMSNorm output of one example is bitwise independent of the rest of the batch") {
  xt::xarray<double> a = randn({4, 3, 8}, 41, 2.0);
  xt::xarray<double> b = randn({6, 3, 8}, 42, 50.0);
  xt::view(b, 2) = xt::view(a, 0);
  tg::RMSNorm<double> rn(tg::Shape{8});
  rn.weight->value = randn({8}, 43);
  tg::Tape<double> t;
  auto ya = rn(t, t.input(a));
  auto yb = rn(t, t.input(b));
  const xt::xarray<double> ra = xt::view(ya.value(), 0), rb = xt::view(yb.value(), 2);
  CHECK((ra == rb));
}

TEST_CASE("float rms_norm agrees with double, also for rows beyond float's squares (1e20)") {
  xt::xarray<double> x = randn({17, 70}, 51, 3.0);
  xt::view(x, 3) *= 1e20;  // squares overflow float: that row is computed in double
  xt::view(x, 5) *= 1e-25;
  const xt::xarray<float> xf = xt::cast<float>(x);
  const xt::xarray<double> up = randn({17, 70}, 52);
  tg::Tape<float> t;
  auto xv = t.input(xf, true);
  auto w = t.input(xt::xarray<float>(xt::cast<float>(uniform({70}, 53, 0.5, 1.5))), true);
  auto y = tg::rms_norm(xv, w, 1, 1e-5);
  const xt::xarray<double> ref = rms_rows(xt::cast<double>(xf), 1e-5) * xt::cast<double>(w.value());
  CHECK(max_err(y.value(), ref) < 1e-5);
  tg::Tape<double> td;
  auto xd = td.input(xt::xarray<double>(xt::cast<double>(xf)), true);
  auto wd = td.input(xt::xarray<double>(xt::cast<double>(w.value())), true);
  td.backward(tg::rms_norm(xd, wd, 1, 1e-5), up);
  t.backward(y, xt::xarray<float>(xt::cast<float>(up)));
  for (std::size_t r : {0, 3, 5}) {
    INFO("row " << r);
    const xt::xarray<double> gd = xt::view(td.grad(xd), r);
    const xt::xarray<double> gf = xt::cast<double>(xt::xarray<float>(xt::view(t.grad(xv), r)));
    CHECK(max_err(gf, gd) <= 1e-5 * xt::amax(xt::abs(gd))() + 1e-30);
  }
  CHECK(max_err(t.grad(w), td.grad(wd)) < 1e-4);
}

TEST_CASE("RMSNorm has PyTorch's state_dict name and repr") {
  tg::RMSNorm<float> rn(tg::Shape{6});
  const auto sd = rn.state_dict();
  CHECK(sd.size() == 1);
  CHECK(sd.count("weight") == 1);
  CHECK(rn.to_string().find("RMSNorm((6,), eps=None, elementwise_affine=True)") != std::string::npos);
  tg::RMSNorm<float> plain(tg::Shape{6}, tg::RMSNormOptions().elementwise_affine(false).eps(1e-6));
  CHECK(plain.state_dict().empty());
}

// ---- bad inputs ----------------------------------------------------------------------------

TEST_CASE("rms_norm with a bad normalized_ndim, weight shape or eps is refused naming them; tape unchanged") {
  tg::Tape<double> t;
  auto x = t.input(randn({2, 5}, 1), true);
  auto w = t.input(randn({4}, 2), true);
  auto empty = t.input(xt::xarray<double>::from_shape({2, 0}), true);
  tgtest::TapeSnapshot<double> s(t);
  const tg::Var<double> none;
  expect_error<tg::ValueError>([&] { tg::rms_norm(x, none, 0); }, {"rms_norm", "normalized_ndim", "(2, 5)"});
  expect_error<tg::ValueError>([&] { tg::rms_norm(x, none, 3); }, {"rms_norm", "got 3"});
  expect_error<tg::ShapeError>([&] { tg::rms_norm(x, w, 1); }, {"rms_norm", "weight", "(4)", "(5)"});
  expect_error<tg::ValueError>([&] { tg::rms_norm(x, none, 1, -1e-3); }, {"rms_norm", "eps"});
  expect_error<tg::ShapeError>([&] { tg::rms_norm(empty, none, 1); }, {"rms_norm", "(2, 0)", "empty"});
  s.check_unchanged();
}

TEST_CASE("RMSNorm over (4) given input (2, 5) is a ShapeError naming both; a bad config is a ValueError") {
  expect_error<tg::ValueError>([] { tg::RMSNorm<double>(tg::Shape{}); }, {"RMSNorm", "normalized_shape"});
  expect_error<tg::ValueError>([] { tg::RMSNorm<double>(tg::Shape{4}, tg::RMSNormOptions().eps(-1.0)); },
                               {"RMSNorm", "eps", "-1"});
  tg::RMSNorm<double> rn(tg::Shape{4});
  tg::Tape<double> t;
  auto x = t.input(randn({2, 5}, 3), true);
  tgtest::TapeSnapshot<double> s(t);
  const auto before = rn.state_dict();
  expect_error<tg::ShapeError>([&] { rn(t, x); }, {"RMSNorm", "(4)", "(2, 5)"});
  s.check_unchanged();
  CHECK((rn.state_dict() == before));
}
