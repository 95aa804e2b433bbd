// The float fast paths of the fused normalization kernels (lib/ops/norm_kernels.cpp) against
// double precision: what they trade for speed must stay within float rounding.
#include "support.hpp"

namespace tg = tapegrad;

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
