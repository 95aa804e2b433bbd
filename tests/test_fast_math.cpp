// The float fast paths of the performance work (lib/ops/fast_math.hpp, lib/ops/norm_kernels.cpp)
// against double precision: what they trade for speed must stay within float rounding.
#include <cstring>
#include <limits>

#include "support.hpp"

namespace tg = tapegrad;

namespace {

// Spacing of floats at |v| (the unit in the last place of float(v)).
double ulp_at(double v) {
  const float f = static_cast<float>(std::abs(v));
  return static_cast<double>(std::nextafter(f, std::numeric_limits<float>::infinity()) - f);
}

}  // namespace

TEST_CASE("float tanh is within 1.5 ulp of double tanh over 2^20 floats spread over the whole range") {
  // Every 4096th bit pattern: all exponents, both signs, the subnormals and the saturated
  // tails. (Checked exhaustively over all 2^32 patterns when it was written: max 1.33 ulp.)
  std::vector<float> xs;
  for (std::uint64_t u = 0; u < (1ull << 32); u += 4096) {
    const auto bits = static_cast<std::uint32_t>(u);
    float x;
    std::memcpy(&x, &bits, sizeof x);
    if (std::isfinite(x)) xs.push_back(x);
  }
  xt::xarray<float> in = xt::xarray<float>::from_shape({xs.size()});
  std::copy(xs.begin(), xs.end(), in.data());
  tg::Tape<float> t;
  const auto y = tg::tanh(t.input(in));
  double worst = 0;
  float worst_x = 0;
  std::size_t sign_errors = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    const double ref = std::tanh(static_cast<double>(xs[i]));
    const double err = std::abs(static_cast<double>(y.value()(i)) - ref) / ulp_at(ref);
    if (err > worst) {
      worst = err;
      worst_x = xs[i];
    }
    if (ref != 0 && std::signbit(y.value()(i)) != std::signbit(ref)) ++sign_errors;
  }
  INFO("worst at x = " << worst_x << " of " << xs.size() << " values");
  CHECK(xs.size() > 1000000);
  CHECK(worst <= 1.5);
  CHECK(sign_errors == 0);
}

TEST_CASE("float tanh keeps the special values: signed zeros, infinities, NaN, saturation") {
  const float inf = std::numeric_limits<float>::infinity();
  tg::Tape<float> t;
  const auto y = tg::tanh(t.input(xt::xarray<float>{0.0f, -0.0f, inf, -inf,
                                                    std::numeric_limits<float>::quiet_NaN(), 9.5f,
                                                    -20.0f, 1e-30f}));
  const auto& v = y.value();
  CHECK(v(0) == 0.0f);
  CHECK_FALSE(std::signbit(v(0)));
  CHECK(v(1) == 0.0f);
  CHECK(std::signbit(v(1)));
  CHECK(v(2) == 1.0f);
  CHECK(v(3) == -1.0f);
  CHECK(std::isnan(v(4)));
  CHECK(v(5) == 1.0f);
  CHECK(v(6) == -1.0f);
  CHECK(v(7) == 1e-30f);
}

TEST_CASE("float tanh's gradient is 1 - y^2 of its own output, as before") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>{-3.0f, -0.5f, 0.0f, 0.25f, 2.0f}, true);
  auto y = tg::tanh(x);
  t.backward(y, xt::xarray<float>{1.0f, 2.0f, -1.0f, 0.5f, 3.0f});
  const xt::xarray<float> g{1.0f, 2.0f, -1.0f, 0.5f, 3.0f};
  for (std::size_t i = 0; i < 5; ++i) {
    const float yi = y.value()(i);
    CHECK(t.grad(x)(i) == g(i) * (1.0f - yi * yi));
  }
}

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
