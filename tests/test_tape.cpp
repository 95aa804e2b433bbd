#include <catch2/catch.hpp>

#include "tapegrad/tapegrad.hpp"

namespace tg = tapegrad;

TEST_CASE("backward of a small expression gives the hand-computed derivatives") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{2.0}, true);
  auto y = t.input(xt::xarray<double>{3.0}, true);
  auto z = x * y + tg::exp(x) / y;  // dz/dx = y + e^x / y, dz/dy = x - e^x / y^2
  t.backward(z);
  CHECK(t.grad(x)(0) == Approx(3.0 + std::exp(2.0) / 3.0));
  CHECK(t.grad(y)(0) == Approx(2.0 - std::exp(2.0) / 9.0));
}
