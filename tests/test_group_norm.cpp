// GroupNorm: the fused op (ops/group_norm.hpp) and the module (nn/group_norm.hpp): gradcheck,
// PyTorch 1.13 fixtures, batch independence, float precision, and the bad-input cases.
#include <functional>

#include <xtensor/xview.hpp>

#include "expect_error.hpp"
#include "norm_fixture.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;
using tgtest::max_err;
using tgtest::module_state;
using tgtest::randn;
using tgtest::uniform;
using Vars = std::vector<tg::Var<double>>;
using Arrays = std::vector<xt::xarray<double>>;

namespace {

// The reference in double: each (n, g) group of a (N, C, L) array normalized two-pass.
xt::xarray<double> group_norm_reference(const xt::xarray<double>& x, std::size_t groups, double eps) {
  const std::size_t n = x.shape()[0], ch = x.shape()[1], len = x.dimension() == 3 ? x.shape()[2] : 1;
  const std::size_t dim = ch / groups * len;
  xt::xarray<double> y = xt::xarray<double>::from_shape(x.shape());
  for (std::size_t g = 0; g < n * groups; ++g) {
    const double* xg = x.data() + g * dim;
    double mean = 0, var = 0;
    for (std::size_t i = 0; i < dim; ++i) mean += xg[i];
    mean /= static_cast<double>(dim);
    for (std::size_t i = 0; i < dim; ++i) var += (xg[i] - mean) * (xg[i] - mean);
    var /= static_cast<double>(dim);
    for (std::size_t i = 0; i < dim; ++i) y.data()[g * dim + i] = (xg[i] - mean) / std::sqrt(var + eps);
  }
  return y;
}

}  // namespace

TEST_CASE("group_norm passes gradcheck on odd shapes, groups 1 to C, affine on and off") {
  struct Case {
    tg::Shape shape;
    std::size_t groups;
  };
  for (const Case& k : {Case{{3, 6}, 3}, Case{{2, 6}, 1}, Case{{3, 5}, 5}, Case{{2, 6, 3}, 2},
                        Case{{3, 3, 5}, 3}, Case{{1, 4, 3}, 1}, Case{{2, 9, 1}, 3}, Case{{5, 2, 2}, 2}}) {
    INFO("shape " << tg::shape_str(k.shape) << ", groups " << k.groups);
    const tg::Shape cs{k.shape[1]};
    const Arrays in = {randn(k.shape, 11, 2.0), uniform(cs, 12, 0.5, 1.5), randn(cs, 13)};
    const std::size_t g = k.groups;
    CHECK_GRADCHECK([g](tg::Tape<double>&, const Vars& v) { return tg::group_norm(v[0], g, v[1], v[2]); },
                    in);
    CHECK_GRADCHECK(
        [g](tg::Tape<double>&, const Vars& v) {
          return tg::group_norm(v[0], g, tg::Var<double>(), tg::Var<double>(), 1e-3);
        },
        Arrays{in[0]});
  }
}

TEST_CASE("GroupNorm passes gradcheck_module for input, weight and bias") {
  tg::GroupNorm<double> gn(2, 6);
  gn.weight->value = uniform({6}, 14, 0.5, 1.5);
  gn.bias->value = randn({6}, 15);
  for (const tg::Shape& s : {tg::Shape{3, 6}, tg::Shape{2, 6, 5}}) {
    INFO(tg::shape_str(s));
    const auto r = tg::gradcheck_module(gn, randn(s, 16, 1.5));
    INFO(r.message);
    CHECK(r.ok);
  }
}

TEST_CASE("group_norm matches PyTorch's forward values and all gradients") {
  const auto check = [](const nlohmann::json& c, normfx::Comparison& compare) {
    tg::Tape<double> t;
    auto x = normfx::leaf(t, c, "x");
    const bool affine = c.contains("weight");
    const std::size_t groups = c.at("num_groups");
    INFO("x " << tg::shape_str(x.shape()) << ", groups " << groups << (affine ? ", affine" : ""));
    tg::Var<double> w, b;
    if (affine) {
      w = normfx::leaf(t, c, "weight");
      b = normfx::leaf(t, c, "bias");
    }
    normfx::check_out_and_grad_x(compare, c, t, x,
                                 tg::group_norm(x, groups, w, b, c.at("eps").get<double>()));
    if (affine) {
      compare("grad_weight", t.grad(w));
      compare("grad_bias", t.grad(b));
    }
  };
  normfx::check_cases("group_norm.json", 9, "group_norm", check);
}

TEST_CASE("GroupNorm output of one example is bitwise independent of the rest of the batch") {
  for (const tg::Shape& s : {tg::Shape{4, 8}, tg::Shape{4, 8, 5}}) {
    tg::Shape big = s;
    big[0] = 7;
    xt::xarray<double> a = randn(s, 41, 2.0);
    xt::xarray<double> b = randn(big, 42, 50.0);
    xt::view(b, 5) = xt::view(a, 1);
    tg::GroupNorm<double> gn(4, 8);
    gn.weight->value = randn({8}, 43);
    gn.bias->value = randn({8}, 44);
    tg::Tape<double> t;
    auto ya = gn(t, t.input(a));
    auto yb = gn(t, t.input(b));
    const xt::xarray<double> ra = xt::view(ya.value(), 1), rb = xt::view(yb.value(), 5);
    CHECK((ra == rb));
  }
}

TEST_CASE("GroupNorm with one group per channel or one group matches the double reference; float agrees") {
  for (const tg::Shape& s : {tg::Shape{3, 12}, tg::Shape{2, 12, 7}}) {
    for (std::size_t g : {1, 3, 12}) {
      INFO(tg::shape_str(s) << " groups " << g);
      const xt::xarray<double> x = randn(s, 51, 3.0);
      tg::Tape<double> t;
      auto y = tg::group_norm(t.input(x), g, tg::Var<double>(), tg::Var<double>());
      CHECK(max_err(y.value(), group_norm_reference(x, g, 1e-5)) < 1e-13);
      // float32 on 1e4 + 1e-2 z: the pivoted double sums keep float precision
      xt::xarray<float> xf = xt::cast<float>(x * 1e-2 + 1e4);
      tg::Tape<float> tf;
      auto yf = tg::group_norm(tf.input(xf), g, tg::Var<float>(), tg::Var<float>());
      CHECK(max_err(yf.value(), group_norm_reference(xt::cast<double>(xf), g, 1e-5)) < 1e-4);
    }
  }
}

TEST_CASE("float group_norm backward agrees with double on a large offset, affine and not") {
  for (const tg::Shape& s : {tg::Shape{20, 64}, tg::Shape{3, 8, 9}}) {
    INFO(tg::shape_str(s));
    const std::size_t ch = s[1];
    const xt::xarray<double> z = randn(s, 61), up = randn(s, 62), w = uniform({ch}, 63, 0.5, 1.5),
                             bias = randn({ch}, 64);
    const xt::xarray<double> x = z * 1e-2 + 1e4;
    tg::Tape<double> td;
    auto xd = td.input(xt::xarray<double>(xt::cast<double>(xt::xarray<float>(xt::cast<float>(x)))), true);
    auto wd = td.input(w, true), bd = td.input(bias, true);
    td.backward(tg::group_norm(xd, 4, wd, bd), up);
    tg::Tape<float> tf;
    auto xf = tf.input(xt::xarray<float>(xt::cast<float>(x)), true);
    auto wf = tf.input(xt::xarray<float>(xt::cast<float>(w)), true);
    auto bf = tf.input(xt::xarray<float>(xt::cast<float>(bias)), true);
    tf.backward(tg::group_norm(xf, 4, wf, bf), xt::xarray<float>(xt::cast<float>(up)));
    // dx is of order rstd ~ 100: float's relative precision on it
    CHECK(max_err(tf.grad(xf), td.grad(xd)) < 1e-5 * 100 * 10);
    CHECK(max_err(tf.grad(wf), td.grad(wd)) < 1e-4);
    CHECK(max_err(tf.grad(bf), td.grad(bd)) < 1e-4);
  }
}

TEST_CASE("a float GroupNorm group with a spread beyond 1e19 is computed in double: finite and exact") {
  xt::xarray<float> x = {{3e19f, -3e19f, 1e19f, 0.f}, {1.f, 2.f, 3.f, 4.f}};
  tg::Tape<float> t;
  auto xv = t.input(x, true);
  auto y = tg::group_norm(xv, 1, tg::Var<float>(), tg::Var<float>());
  const xt::xarray<double> ref = group_norm_reference(xt::cast<double>(x), 1, 1e-5);
  CHECK(max_err(y.value(), ref) < 1e-6);
  t.backward(y, xt::xarray<float>({{1.f, 0.f, 0.f, 0.f}, {0.f, 1.f, 0.f, 0.f}}));
  for (float v : t.grad(xv)) CHECK(std::isfinite(v));
}

TEST_CASE("GroupNorm has PyTorch's state_dict names and is the same in train and eval mode") {
  tg::GroupNorm<float> gn(3, 6);
  const auto sd = gn.state_dict();
  CHECK(sd.size() == 2);
  CHECK(sd.count("weight") == 1);
  CHECK(sd.count("bias") == 1);
  CHECK(gn.to_string().find("GroupNorm(3, 6, eps=") != std::string::npos);
  tg::GroupNorm<float> plain(3, 6, tg::GroupNormOptions().affine(false));
  CHECK(plain.state_dict().empty());
  const xt::xarray<float> x = randn<float>({2, 6, 4}, 71);
  tg::Tape<float> t;
  const xt::xarray<float> train = gn(t, t.input(x)).value();
  gn.eval();
  const xt::xarray<float> ev = gn(t, t.input(x)).value();
  CHECK((train == ev));
}

// ---- bad inputs ----------------------------------------------------------------------------

TEST_CASE(
    "group_norm with channels not divisible by num_groups, 0 groups, 4-D or empty input is refused; tape unchanged") {
  tg::Tape<double> t;
  auto x = t.input(randn({2, 6, 3}, 1), true);
  tgtest::TapeSnapshot<double> s(t);
  const tg::Var<double> none;
  expect_error<tg::ValueError>([&] { tg::group_norm(x, 4, none, none); },
                               {"group_norm", "divisible by num_groups", "(2, 6, 3)", "num_groups=4"});
  expect_error<tg::ValueError>([&] { tg::group_norm(x, 0, none, none); }, {"group_norm", "num_groups=0"});
  auto x4 = t.input(randn({2, 6, 3, 2}, 2), true);
  auto empty = t.input(xt::xarray<double>::from_shape({0, 6}), true);
  auto one = t.input(randn({1, 3}, 3), true);
  tgtest::TapeSnapshot<double> s2(t);
  expect_error<tg::ShapeError>([&] { tg::group_norm(x4, 3, none, none); },
                               {"group_norm", "4-D", "(2, 6, 3, 2)"});
  expect_error<tg::ShapeError>([&] { tg::group_norm(empty, 3, none, none); },
                               {"group_norm", "non-empty", "(0, 6)"});
  expect_error<tg::ValueError>([&] { tg::group_norm(one, 3, none, none); },
                               {"group_norm", "more than 1 value per channel", "(1, 3)"});
  auto w = t.input(randn({5}, 4), true), b = t.input(randn({5}, 5), true);
  tgtest::TapeSnapshot<double> s3(t);
  expect_error<tg::ShapeError>([&] { tg::group_norm(x, 3, w, b); }, {"group_norm", "weight", "(5)", "(6)"});
  expect_error<tg::ValueError>([&] { tg::group_norm(x, 3, w, none); }, {"group_norm", "weight only"});
  expect_error<tg::ValueError>([&] { tg::group_norm(x, 3, none, none, -1.0); }, {"group_norm", "eps", "-1"});
  s3.check_unchanged();
}

TEST_CASE("GroupNorm(3, 6) given 4 channels or a 4-D input is a ShapeError; a bad config is a ValueError") {
  expect_error<tg::ValueError>([] { tg::GroupNorm<double>(4, 6); },
                               {"GroupNorm", "divisible", "num_channels=6", "num_groups=4"});
  expect_error<tg::ValueError>([] { tg::GroupNorm<double>(0, 6); }, {"GroupNorm", "num_groups=0"});
  expect_error<tg::ValueError>([] { tg::GroupNorm<double>(3, 6, tg::GroupNormOptions().eps(std::nan(""))); },
                               {"GroupNorm", "eps"});
  tg::GroupNorm<double> gn(3, 6);
  tg::Tape<double> t;
  gn(t, t.input(randn({2, 6}, 6)));  // a first call, so "unchanged" is not trivially true
  const auto before = module_state(gn);
  auto x = t.input(randn({2, 4, 3}, 7), true);
  auto x4 = t.input(randn({2, 6, 3, 1}, 8), true);
  auto empty = t.input(xt::xarray<double>::from_shape({0, 6, 2}), true);
  tgtest::TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>([&] { gn(t, x); }, {"GroupNorm", "(N, 6)", "(2, 4, 3)"});
  expect_error<tg::ShapeError>([&] { gn(t, x4); }, {"GroupNorm", "(2, 6, 3, 1)"});
  expect_error<tg::ShapeError>([&] { gn(t, empty); }, {"group_norm", "(0, 6, 2)"});
  s.check_unchanged();
  CHECK((module_state(gn) == before));
}

TEST_CASE(
    "group_norm and rms_norm name themselves and the input for a stale or foreign Var; tape unchanged") {
  using V = tg::Var<double>;
  struct Op {
    const char* name;
    std::vector<tg::Shape> shapes;
    std::function<void(const std::vector<V>&)> call;
  };
  const std::vector<Op> ops = {
      {"group_norm",
       {{2, 4, 3}, {4}, {4}},
       [](const std::vector<V>& v) { tg::group_norm(v[0], 2, v[1], v[2]); }},
      {"rms_norm", {{2, 4}, {4}}, [](const std::vector<V>& v) { tg::rms_norm(v[0], v[1], 1); }}};
  for (const Op& op : ops) {
    for (std::size_t k = 0; k < op.shapes.size(); ++k) {
      INFO(op.name << " input " << k);
      tg::Tape<double> t;
      const V stale = t.input(randn(op.shapes[k], 7), true);
      t.reset();
      std::vector<V> v;
      for (std::size_t j = 0; j < op.shapes.size(); ++j)
        v.push_back(t.input(randn(op.shapes[j], 8 + j), true));
      t.input(randn({1}, 20));  // stale's slot is live again
      tgtest::TapeSnapshot<double> s(t);
      std::vector<V> bad = v;
      bad[k] = stale;
      const std::string input = "input " + std::to_string(k);
      expect_error<tg::StateError>([&] { op.call(bad); }, {op.name, input, "before tape.reset()"});
      if (k > 0) {
        tg::Tape<double> other;
        bad[k] = other.input(randn(op.shapes[k], 9), true);
        expect_error<tg::StateError>([&] { op.call(bad); }, {op.name, input, "different tape"});
      } else {
        bad[k] = V();
        expect_error<tg::StateError>([&] { op.call(bad); }, {op.name, input, "empty"});
      }
      s.check_unchanged();
    }
  }
}
