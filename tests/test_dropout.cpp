#include "support.hpp"
#include "tapegrad/ops/dropout.hpp"

namespace tg = tapegrad;

TEST_CASE("dropout keeps about 1 - p of the elements, scaled by 1 / (1 - p), and is identity in eval") {
  tg::Tape<double> t;
  tg::Generator gen(3);
  auto x = t.input(xt::xarray<double>(xt::ones<double>({100, 100})), true);
  auto y = tg::dropout(x, 0.3, true, gen);
  std::size_t kept = 0;
  for (double v : y.value()) {
    if (v != 0) {
      ++kept;
      CHECK(v == Approx(1.0 / 0.7));
    }
  }
  CHECK(kept > 6700);
  CHECK(kept < 7300);
  // the gradient passes exactly where the element was kept, with the same scale
  t.backward(y, xt::xarray<double>(xt::ones<double>({100, 100})));
  CHECK((t.grad(x) == y.value()));
  auto e = tg::dropout(x, 0.3, false, gen);
  CHECK((e.value() == x.value()));
}

TEST_CASE("dropout with the same seed drops the same elements") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>(xt::ones<float>({50})));
  tg::Generator a(9), b(9);
  CHECK((tg::dropout(x, 0.5, true, a).value() == tg::dropout(x, 0.5, true, b).value()));
}

TEST_CASE("dropout with p = 1 zeroes everything; p outside [0, 1] is a ValueError") {
  tg::Tape<float> t;
  tg::Generator gen(1);
  auto x = t.input(xt::xarray<float>(xt::ones<float>({4})));
  CHECK(xt::sum(tg::dropout(x, 1.0, true, gen).value())() == 0.0f);
  const auto n = t.size();
  CHECK_THROWS_WITH(tg::dropout(x, 1.5, true, gen), Catch::Contains("1.5"));
  CHECK(t.size() == n);
}

TEST_CASE("Dropout(p, gen) is seeded by one draw from gen: same Generator seed, same units dropped") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>(xt::ones<float>({64})));
  tg::Generator g1(5), g2(5), g3(6);
  tg::Dropout<float> a(0.5, g1), b(0.5, g2), c(0.5, g3);
  const xt::xarray<float> ya = a(t, x).value();
  CHECK((ya == b(t, x).value()));
  CHECK((ya != c(t, x).value()));  // P(equal) = 2^-64
  // one draw taken: the generators are now where one engine() call leaves a fresh one
  tg::Generator ref(5);
  ref.engine()();
  CHECK(g1.engine()() == ref.engine()());
  // the module holds no reference to its Generator: using it after the Generator is gone is fine
  auto d = [] {
    tg::Generator temp(5);
    return std::make_unique<tg::Dropout<float>>(0.5, temp);
  }();
  CHECK(((*d)(t, x).value() == ya));
  CHECK_THROWS_AS(tg::Dropout<float>(-0.1, g1), tg::ValueError);
}
