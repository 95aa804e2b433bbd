// Float32 LayerNorm and BatchNorm at the edges of float's range, against a long double
// reference on the same float inputs: spreads whose squares overflow float (1e19 .. 3e38),
// values near FLT_MAX, subnormal values (with eps = 0 too), tiny spreads around huge means,
// mixed signs, rows of equal values; every kernel block and tail size. Wherever the exact
// result is representable in float, the float ops agree with it to float precision; where it
// is not, the value is Inf and anomaly mode reports it. Also clip_grad_norm's p-norms.
#include <cfloat>
#include <random>

#include "expect_error.hpp"

namespace tg = tapegrad;

namespace {

using LD = long double;

// ---- data ------------------------------------------------------------------------------------
enum class Kind {
  normal,
  spread_1e19,
  spread_1e20,
  spread_1e30,
  spread_3e38,
  near_max,
  near_max_mixed,
  subnormal,
  huge_mean,
  alternating,
  log_uniform,
  equal
};

const char* name(Kind k) {
  static const char* names[] = {"N(0, 1)",           "spread 1e19",        "spread 1e20",     "spread 1e30",
                                "spread 3e38",       "near FLT_MAX",       "near +-FLT_MAX",  "subnormal",
                                "1e20 (1 + 1e-6 z)", "+-1e20 alternating", "+-10^U(-30, 30)", "all 1e20"};
  return names[static_cast<int>(k)];
}

const std::vector<Kind> kKinds = {Kind::spread_1e19, Kind::spread_1e20, Kind::spread_1e30,
                                  Kind::spread_3e38, Kind::near_max,    Kind::near_max_mixed,
                                  Kind::subnormal,   Kind::huge_mean,   Kind::alternating,
                                  Kind::log_uniform, Kind::equal};

float draw(Kind k, std::mt19937_64& rng, std::size_t j) {
  std::uniform_real_distribution<double> u(0.0, 1.0);
  std::normal_distribution<double> z(0.0, 1.0);
  const double sign = u(rng) < 0.5 ? -1.0 : 1.0;
  const auto spread = [&](double s) { return s * (u(rng) - 0.5); };
  switch (k) {
    case Kind::normal:
      return static_cast<float>(z(rng));
    case Kind::spread_1e19:
      return static_cast<float>(spread(1e19));
    case Kind::spread_1e20:
      return static_cast<float>(spread(1e20));
    case Kind::spread_1e30:
      return static_cast<float>(spread(1e30));
    case Kind::spread_3e38:
      return static_cast<float>(spread(3e38));
    case Kind::near_max:
      return static_cast<float>(FLT_MAX * (1 - 1e-6 * u(rng)));
    case Kind::near_max_mixed:
      return static_cast<float>(sign * FLT_MAX * (1 - 1e-3 * u(rng)));
    case Kind::subnormal:
      return static_cast<float>(spread(2e-39));
    case Kind::huge_mean:
      return static_cast<float>(1e20 * (1 + 1e-6 * z(rng)));
    case Kind::alternating:
      return j % 2 ? -1e20f : 1e20f;
    case Kind::log_uniform:
      return static_cast<float>(sign * std::pow(10.0, 60 * u(rng) - 30));
    case Kind::equal:
      return 1e20f;
  }
  return 0;
}

// ---- reference -------------------------------------------------------------------------------
// Two-pass LayerNorm (groups = rows of (N, D)) or BatchNorm (groups = channels of (N, C, L))
// in long double: forward, gradients for upstream g, and per element the size of the terms a
// float result is made of (the scale its rounding error is relative to; float's xhat has an
// absolute error of a few float epsilons, so it counts as |xhat| + 1).
struct Reference {
  std::vector<LD> y, dx, dw, db, mean, var;
  std::vector<LD> y_scale, dx_scale, dw_scale, db_scale;
};

struct Layout {
  std::size_t n, ch, len;
  bool batch;
  std::size_t groups() const { return batch ? ch : n; }
  std::size_t members() const { return batch ? n * len : ch; }
  std::size_t at(std::size_t grp, std::size_t j) const {  // j-th member of group grp
    return batch ? ((j / len) * ch + grp) * len + j % len : grp * ch + j;
  }
  std::size_t param(std::size_t grp, std::size_t k) const { return batch ? grp : k % ch; }
};

Layout layout_of(const xt::xarray<float>& x, bool batch) {
  return {x.shape()[0], x.shape()[1], x.dimension() == 3 ? x.shape()[2] : 1, batch};
}

Reference reference(const xt::xarray<float>& x, const xt::xarray<float>& w, const xt::xarray<float>& b,
                    const xt::xarray<float>& g, bool batch, double eps) {
  const Layout lay = layout_of(x, batch);
  const std::size_t m = lay.members(), np = w.size();
  Reference r;
  for (auto* v : {&r.y, &r.dx, &r.y_scale, &r.dx_scale}) v->assign(x.size(), 0);
  for (auto* v : {&r.dw, &r.db, &r.dw_scale, &r.db_scale}) v->assign(np, 0);
  const auto X = [&](std::size_t k) { return static_cast<LD>(x.data()[k]); };
  for (std::size_t grp = 0; grp < lay.groups(); ++grp) {
    LD mean = 0, var = 0, a1 = 0, a2 = 0, gmax = 0;
    for (std::size_t j = 0; j < m; ++j) mean += X(lay.at(grp, j));
    mean /= static_cast<LD>(m);
    for (std::size_t j = 0; j < m; ++j) var += (X(lay.at(grp, j)) - mean) * (X(lay.at(grp, j)) - mean);
    var /= static_cast<LD>(m);
    r.mean.push_back(mean);
    r.var.push_back(var);
    const LD rstd = 1 / std::sqrt(var + static_cast<LD>(eps));
    for (std::size_t j = 0; j < m; ++j) {
      const std::size_t k = lay.at(grp, j), p = lay.param(grp, k);
      const LD xhat = (X(k) - mean) * rstd, gk = g.data()[k], wk = w.data()[p];
      r.y[k] = xhat * wk + b.data()[p];
      r.y_scale[k] = (std::abs(xhat) + 1) * std::abs(wk) + std::abs(static_cast<LD>(b.data()[p]));
      a1 += gk * wk / static_cast<LD>(m);
      a2 += gk * wk * xhat / static_cast<LD>(m);
      gmax = std::max(gmax, std::abs(gk * wk));
      r.dw[p] += gk * xhat;
      r.db[p] += gk;
      r.dw_scale[p] += std::abs(gk) * (std::abs(xhat) + 1);
      r.db_scale[p] += std::abs(gk);
    }
    for (std::size_t j = 0; j < m; ++j) {
      const std::size_t k = lay.at(grp, j), p = lay.param(grp, k);
      const LD xhat = (X(k) - mean) * rstd;
      r.dx[k] = rstd * (g.data()[k] * w.data()[p] - a1 - xhat * a2);
      r.dx_scale[k] = rstd * gmax * std::sqrt(static_cast<LD>(m));
    }
  }
  return r;
}

// A float result agrees with the exact one: within tol of its scale where the exact value is
// in float's range, +-Inf where it is beyond FLT_MAX. Returns the number of mismatches (the
// first few are reported).
template <class A>
int mismatches(const char* what, const A& got, const std::vector<LD>& ref, const std::vector<LD>& scale,
               double tol) {
  // (no assertion in here: it would take the UNSCOPED_INFO lines meant for the caller's CHECK)
  if (got.size() != ref.size()) {
    UNSCOPED_INFO(what << " has " << got.size() << " elements, expected " << ref.size());
    return 1;
  }
  int bad = 0;
  for (std::size_t i = 0; i < ref.size(); ++i) {
    const LD f = got.data()[i], e = ref[i];
    const bool ok = std::isnan(e)           ? std::isnan(f)
                    : std::abs(e) > FLT_MAX ? std::isinf(f) && (f > 0) == (e > 0)
                                            : std::abs(f - e) <= tol * (std::abs(e) + scale[i]);
    if (!ok && ++bad <= 3) {
      UNSCOPED_INFO(what << "[" << i << "] = " << static_cast<double>(f) << ", exact "
                         << static_cast<double>(e) << " (scale " << static_cast<double>(scale[i]) << ")");
    }
  }
  return bad;
}

// Each group of x is filled by one of `kinds` in turn (N(0, 1) between them), so wide and
// ordinary groups alternate in every call.
xt::xarray<float> make_input(const tg::Shape& s, bool batch, Kind kind, std::uint64_t seed) {
  xt::xarray<float> x = xt::xarray<float>::from_shape(s);
  const Layout lay = layout_of(x, batch);
  std::mt19937_64 rng(seed);
  for (std::size_t grp = 0; grp < lay.groups(); ++grp) {
    const Kind k = grp % 2 ? kind : Kind::normal;
    for (std::size_t j = 0; j < lay.members(); ++j) x.data()[lay.at(grp, j)] = draw(k, rng, j);
  }
  return x;
}

struct Params {
  xt::xarray<float> w, b, g;
};
Params make_params(const xt::xarray<float>& x, std::size_t np, std::uint64_t seed) {
  Params p;
  p.w = tgtest::randn<float>({np}, seed, 0.5) + 1.0f;
  p.b = tgtest::randn<float>({np}, seed + 1);
  p.g = tgtest::randn<float>(x.shape(), seed + 2);
  return p;
}

// Runs the float op (layer_norm over the last dim, or batch_norm) and compares y, dx, dw, db.
int check_op(const xt::xarray<float>& x, bool batch, double eps, std::uint64_t seed) {
  const std::size_t np = batch ? x.shape()[1] : x.shape()[x.dimension() - 1];
  const Params p = make_params(x, np, seed);
  const Reference ref = reference(x, p.w, p.b, p.g, batch, eps);
  tg::Tape<float> t;
  auto xv = t.input(x, true);
  auto wv = t.input(p.w, true), bv = t.input(p.b, true);
  auto y = batch ? tg::batch_norm(xv, wv, bv, eps) : tg::layer_norm(xv, wv, bv, 1, eps);
  t.backward(y, p.g);
  return mismatches("y", y.value(), ref.y, ref.y_scale, 1e-5) +
         mismatches("dx", t.grad(xv), ref.dx, ref.dx_scale, 2e-5) +
         mismatches("dw", t.grad(wv), ref.dw, ref.dw_scale, 2e-5) +
         mismatches("db", t.grad(bv), ref.db, ref.db_scale, 1e-5);
}

}  // namespace

// ---- LayerNorm ---------------------------------------------------------------------------------

TEST_CASE("float32 layer_norm of [1e20, -1e20, 1e20, -1e20] is [1, -1, 1, -1] with the exact gradient") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>{{1e20f, -1e20f, 1e20f, -1e20f}}, true);
  auto y = tg::layer_norm(x, tg::Var<float>(), tg::Var<float>(), 1);
  CHECK((y.value() == xt::xarray<float>{{1, -1, 1, -1}}));
  t.backward(y, xt::xarray<float>{{1, 0, 0, 0}});
  // dx = rstd (e0 - 1/4 - xhat xhat_0 / 4), rstd = 1e-20
  const xt::xarray<float> dx = t.grad(x);
  const float expected[] = {0.5e-20f, 0, -0.5e-20f, 0};
  for (std::size_t i = 0; i < 4; ++i) CHECK(dx(0, i) == Approx(expected[i]).margin(1e-27));
}

TEST_CASE("float32 layer_norm agrees with long double at float's range edges, on every block and tail size") {
  for (const std::size_t dim : {1, 3, 17, 255, 256, 257, 1000}) {
    for (const Kind kind : kKinds) {
      INFO(dim << " features, " << name(kind));
      const auto x = make_input({4, dim}, false, kind, 7 * dim + static_cast<std::size_t>(kind));
      CHECK(check_op(x, false, 1e-5, dim) == 0);
      if (dim > 1) CHECK(check_op(x, false, 0.0, dim) == 0);  // eps = 0: one value gives 0 / 0
    }
  }
}

TEST_CASE("float32 layer_norm with eps = 0 normalizes subnormal spreads whose variance float cannot hold") {
  // var ~ 1e-79, rstd ~ 1e39 > FLT_MAX, yet xhat is O(1); dx ~ rstd overflows float as exactly.
  const auto x = make_input({6, 33}, false, Kind::subnormal, 3);
  CHECK(check_op(x, false, 0.0, 5) == 0);
  const std::size_t np = 33;
  const Params p = make_params(x, np, 5);
  const Reference ref = reference(x, p.w, p.b, p.g, false, 0.0);
  tg::Tape<float> t;
  auto y = tg::layer_norm(t.input(x), t.input(p.w), t.input(p.b), 1, 0.0);
  CHECK(xt::all(xt::isfinite(y.value())));
  CHECK(mismatches("y", y.value(), ref.y, ref.y_scale, 1e-5) == 0);
}

// ---- BatchNorm ---------------------------------------------------------------------------------

TEST_CASE(
    "float32 batch_norm agrees with long double at float's range edges, batches of 2 to 300, 2-D and 3-D") {
  const std::vector<tg::Shape> shapes = {{2, 45},   {3, 45},   {17, 45},   {255, 13},
                                         {300, 45}, {2, 5, 3}, {7, 4, 17}, {3, 3, 257}};
  for (const auto& s : shapes) {
    for (const Kind kind : kKinds) {
      INFO(tg::shape_str(s) << ", " << name(kind));
      const auto x = make_input(s, true, kind, 11 * s[0] + s[1] + static_cast<std::size_t>(kind));
      CHECK(check_op(x, true, 1e-5, s[0]) == 0);
      CHECK(check_op(x, true, 0.0, s[0]) == 0);
    }
  }
}

TEST_CASE("float32 batch_norm hands out the batch statistics in double for every range of input") {
  for (const Kind kind : kKinds) {
    INFO(name(kind));
    const auto x = make_input({37, 9}, true, kind, 40 + static_cast<std::size_t>(kind));
    const Params p = make_params(x, 9, 41);
    const Reference ref = reference(x, p.w, p.b, p.g, true, 1e-5);
    tg::Tape<float> t;
    tg::BatchStatistics stats;
    tg::batch_norm(t.input(x), tg::Var<float>(), tg::Var<float>(), 1e-5, stats);
    REQUIRE(stats.var.size() == 9);
    for (std::size_t c = 0; c < 9; ++c) {
      // to float precision: the mean relative to the spread, the variance down to subnormals
      const double sd = std::sqrt(static_cast<double>(ref.var[c]));
      CHECK(stats.mean[c] == Approx(static_cast<double>(ref.mean[c])).epsilon(1e-6).margin(1e-6 * sd));
      CHECK(stats.var[c] == Approx(static_cast<double>(ref.var[c])).epsilon(1e-5).margin(1e-44));
    }
  }
}

namespace {

// BatchNorm1d(C, momentum 0.1) trained on three batches of `kind`, then an eval forward and
// backward: running statistics, eval output and gradients against long double.
int check_module(Kind kind, const tg::Shape& s) {
  const std::size_t ch = s[1];
  tg::BatchNorm1d<float> bn(ch);
  std::vector<LD> rm(ch, 0), rv(ch, 1);
  const LD m = 0.1L, count = static_cast<LD>(s[0] * (s.size() == 3 ? s[2] : 1));
  for (std::uint64_t step = 0; step < 3; ++step) {
    const auto x = make_input(s, true, kind, 50 + step);
    tg::Tape<float> t;
    bn(t, t.input(x));
    const xt::xarray<float> w = xt::ones<float>({ch}), b = xt::zeros<float>({ch});
    const Reference ref = reference(x, w, b, x, true, 1e-5);
    for (std::size_t c = 0; c < ch; ++c) {
      rm[c] = (1 - m) * rm[c] + m * ref.mean[c];
      rv[c] = (1 - m) * rv[c] + m * ref.var[c] * count / (count - 1);
    }
  }
  std::vector<LD> rm_scale(ch), rv_scale(ch);
  for (std::size_t c = 0; c < ch; ++c) {
    rm_scale[c] = std::abs(rm[c]) + 1e-38L;
    rv_scale[c] = 1e-38L;
  }
  return mismatches("running_mean", *bn.running_mean, rm, rm_scale, 1e-6) +
         mismatches("running_var", *bn.running_var, rv, rv_scale, 1e-5);
}

}  // namespace

TEST_CASE("BatchNorm1d running statistics of float32 models agree with long double after three steps") {
  // A spread of 1e20 gives a batch variance of ~8e38 > FLT_MAX: a float batch_var is Inf, while
  // the running variance, 0.1 of it (unbiased) plus 0.9 of the old one, is finite.
  for (const Kind kind : kKinds) {
    for (const tg::Shape& s : {tg::Shape{2, 9}, tg::Shape{40, 9}, tg::Shape{5, 9, 7}}) {
      INFO(name(kind) << ", " << tg::shape_str(s));
      CHECK(check_module(kind, s) == 0);
    }
  }
}

TEST_CASE("float32 batch_norm_eval with running statistics at float's range edges agrees with long double") {
  // y = (x - rm) / sqrt(rv + eps) w + b with rm ~ 1e20 and rv up to 3e38, or rv subnormal and
  // eps = 0; gradients for x, w, b.
  for (const double eps : {1e-5, 0.0}) {
    for (const Kind kind : kKinds) {
      INFO(name(kind) << ", eps " << eps);
      const auto x = make_input({6, 8}, true, kind, 60);
      const auto stats_src = make_input({5, 8}, true, kind, 61);
      const Params p = make_params(x, 8, 62);
      const Reference st = reference(stats_src, p.w, p.b, stats_src, true, eps);
      xt::xarray<float> rm = xt::zeros<float>({8}), rv = xt::zeros<float>({8});
      for (std::size_t c = 0; c < 8; ++c) {
        rm(c) = static_cast<float>(st.mean[c]);
        rv(c) = static_cast<float>(std::min<LD>(st.var[c], FLT_MAX));
      }
      // Exact: the same affine map per channel, with the float running statistics as given.
      std::vector<LD> y(x.size()), ys(x.size()), dx(x.size()), dxs(x.size());
      std::vector<LD> dw(8, 0), db(8, 0), dws(8, 0), dbs(8, 0);
      for (std::size_t k = 0; k < x.size(); ++k) {
        const std::size_t c = k % 8;
        const LD rstd = 1 / std::sqrt(static_cast<LD>(rv(c)) + static_cast<LD>(eps));
        const LD xhat = (static_cast<LD>(x.data()[k]) - rm(c)) * rstd, g = p.g.data()[k];
        y[k] = xhat * p.w(c) + p.b(c);
        ys[k] = std::abs(xhat * p.w(c)) + std::abs(static_cast<LD>(p.b(c)));
        dx[k] = g * p.w(c) * rstd;
        dxs[k] = std::abs(dx[k]);
        dw[c] += g * xhat;
        dws[c] += std::abs(g * xhat);
        db[c] += g;
        dbs[c] += std::abs(g);
      }
      tg::Tape<float> t;
      auto xv = t.input(x, true);
      auto wv = t.input(p.w, true), bv = t.input(p.b, true);
      auto out = tg::batch_norm_eval(xv, wv, bv, rm, rv, eps);
      t.backward(out, p.g);
      CHECK(mismatches("y", out.value(), y, ys, 1e-5) == 0);
      CHECK(mismatches("dx", t.grad(xv), dx, dxs, 1e-5) == 0);
      CHECK(mismatches("dw", t.grad(wv), dw, dws, 1e-5) == 0);
      CHECK(mismatches("db", t.grad(bv), db, dbs, 1e-5) == 0);
    }
  }
}

// ---- anomaly mode where the exact result is beyond float ----------------------------------------

TEST_CASE("anomaly mode reports a float32 layer_norm output beyond FLT_MAX and records nothing") {
  // xhat = +-1, w = b = 3e38: y = 6e38 (Inf in float) or 0.
  const xt::xarray<float> x{{1e20f, -1e20f, 1e20f, -1e20f}};
  const xt::xarray<float> w = xt::full_like(xt::xarray<float>(xt::zeros<float>({4})), 3e38f);
  tg::Tape<float> t;
  auto y = tg::layer_norm(t.input(x), t.input(w), t.input(w), 1);
  CHECK(std::isinf(y.value()(0, 0)));
  CHECK(y.value()(0, 1) == 0.0f);
  t.set_detect_anomaly(true);
  auto xv = t.input(x);
  auto wv = t.input(w);
  const std::size_t size = t.size();
  tgtest::expect_error<tg::NumericalError>([&] { tg::layer_norm(xv, wv, wv, 1); },
                                           {"layer_norm", "NaN or Inf", "(1, 4)"});
  CHECK(t.size() == size);
}

TEST_CASE("anomaly mode reports a float32 layer_norm input gradient beyond FLT_MAX in backward") {
  // Subnormal values with eps = 0: y is finite, but dx ~ rstd ~ 1e39 is not.
  const auto x = make_input({2, 16}, false, Kind::subnormal, 9);
  tg::Tape<float> t;
  t.set_detect_anomaly(true);
  auto xv = t.input(x, true);
  auto y = tg::layer_norm(xv, tg::Var<float>(), tg::Var<float>(), 1, 0.0);
  CHECK(xt::all(xt::isfinite(y.value())));
  tgtest::expect_error<tg::NumericalError>(
      [&] {
        t.backward(y, tgtest::randn<float>({2, 16}, 3));
      },
      {"backward of 'layer_norm'", "NaN or Inf"});
}

TEST_CASE("anomaly mode reports a float32 batch variance beyond FLT_MAX and leaves the outputs untouched") {
  const xt::xarray<float> x{{1e20f, 1.0f}, {-1e20f, 2.0f}};  // channel 0: var 1e40
  xt::xarray<float> mean{7.0f, 7.0f}, var{7.0f, 7.0f};
  tg::Tape<float> t;
  t.set_detect_anomaly(true);
  auto xv = t.input(x);
  const std::size_t size = t.size();
  tgtest::expect_error<tg::NumericalError>(
      [&] { tg::batch_norm(xv, tg::Var<float>(), tg::Var<float>(), 1e-5, &mean, &var); },
      {"batch_norm", "batch variance", "channel 0", "(2, 2)"});
  CHECK(t.size() == size);
  CHECK((mean == xt::xarray<float>{7.0f, 7.0f}));
  CHECK((var == xt::xarray<float>{7.0f, 7.0f}));
  t.set_detect_anomaly(false);
  auto y = tg::batch_norm(xv, tg::Var<float>(), tg::Var<float>(), 1e-5, &mean, &var);
  CHECK(std::isinf(var(0)));  // the exact value, beyond float
  CHECK(y.value()(0, 0) == 1.0f);
  CHECK(y.value()(1, 0) == -1.0f);
}

TEST_CASE(
    "anomaly mode refuses a BatchNorm1d step whose running variance would overflow float, changing nothing") {
  // Channel 0: var = 2.25e76 (spread 3e38), so running_var = 0.9 + 0.1 * 2 * 2.25e76.
  const xt::xarray<float> x{{1.5e38f, 1.0f}, {-1.5e38f, 2.0f}};
  tg::BatchNorm1d<float> bn(2);
  tg::Tape<float> t;
  t.set_detect_anomaly(true);
  auto xv = t.input(x);
  const std::size_t size = t.size();
  tgtest::expect_error<tg::NumericalError>([&] { bn(t, xv); }, {"BatchNorm1d", "running_var", "channel 0"});
  CHECK(t.size() == size);
  CHECK((*bn.running_mean == xt::xarray<float>{0, 0}));
  CHECK((*bn.running_var == xt::xarray<float>{1, 1}));
  CHECK((*bn.num_batches_tracked)() == 0.0f);
  t.set_detect_anomaly(false);
  auto y = bn(t, xv);
  CHECK(y.value()(0, 0) == 1.0f);
  CHECK(y.value()(1, 0) == -1.0f);
  CHECK(std::isinf((*bn.running_var)(0)));  // the exact value, beyond float
  CHECK((*bn.running_var)(1) == Approx(0.95));
}

// ---- clip_grad_norm ----------------------------------------------------------------------------

TEST_CASE(
    "clip_grad_norm of float32 gradients near float's range edges agrees with long double for p = 2, 20, 100 and inf") {
  for (const double scale : {1e20, 3e37, 1e-20, 1e-40}) {
    for (const double p : {2.0, 20.0, 100.0, HUGE_VAL}) {
      INFO("grads ~ " << scale << ", p = " << p);
      tg::Parameter<float> a(tgtest::randn<float>({7, 3}, 1)), b(tgtest::randn<float>({5}, 2));
      a.mutable_grad() = xt::cast<float>(tgtest::randn<double>({7, 3}, 3, scale));
      b.mutable_grad() = xt::cast<float>(tgtest::randn<double>({5}, 4, scale));
      LD sum = 0, mx = 0;
      for (const auto* prm : {&a, &b}) {
        for (const float g : prm->grad()) {
          mx = std::max(mx, std::abs(static_cast<LD>(g)));
          sum += std::pow(std::abs(static_cast<LD>(g)), static_cast<LD>(p == HUGE_VAL ? 1 : p));
        }
      }
      const LD exact = p == HUGE_VAL ? mx : std::pow(sum, 1 / static_cast<LD>(p));
      const double total = tg::clip_grad_norm<float>({&a, &b}, 1.0, p, true);
      CHECK(total == Approx(static_cast<double>(exact)).epsilon(1e-12));
    }
  }
}

TEST_CASE("SequenceBatchNorm's running variance stays finite when a float batch variance exceeds FLT_MAX") {
  // Values +-3e19 over a batch of 2: the biased batch variance 9e38 is beyond FLT_MAX, the
  // update 0.9 * 1 + 0.1 * 9e38 * 2 = 1.8e38 is not.
  tg::SequenceBatchNorm<float> bn(1, 1, 1.0, 1e-5, 0.1);
  bn.train();
  tg::Tape<float> t;
  xt::xarray<float> x = xt::xarray<float>::from_shape({1, 2, 1});  // (T = 1, N = 2, H = 1)
  x(0, 0, 0) = 3e19f;
  x(0, 1, 0) = -3e19f;
  bn(t, t.input(x));
  const double expect = 0.9 * 1.0 + 0.1 * 9e38 * 2.0;
  REQUIRE(std::isfinite(bn.running_var(0, 0)));
  CHECK(static_cast<double>(bn.running_var(0, 0)) == Approx(expect).epsilon(1e-6));
  CHECK(bn.running_mean(0, 0) == 0.0f);
}
