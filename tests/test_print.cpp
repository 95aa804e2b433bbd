// Printing Vars, Parameters and arrays. This program includes only the umbrella header (and
// Catch2): `std::cout << x` must compile without <xtensor/xio.hpp>. The values part of every
// expected string is torch 1.13's repr of the same tensor (torch.tensor(...).__repr__()).
#include <sstream>
#include <string>

#include <catch2/catch.hpp>
#include <tapegrad/tapegrad.hpp>

namespace tg = tapegrad;

namespace {
template <class X>
std::string printed(const X& x) {
  std::ostringstream os;
  os << x;
  return os.str();
}
}  // namespace

TEST_CASE(
    "an xarray prints as torch prints the tensor, with shape and dtype, from the umbrella header alone") {
  const xt::xarray<float> a = {{1.f, 2.5f, 3.f}, {4.f, 5.f, 6.f}};
  CHECK(printed(a) ==
        "xarray([[1.0000, 2.5000, 3.0000],\n"
        "        [4.0000, 5.0000, 6.0000]], shape=(2, 3), dtype=float32)");
  const xt::xarray<double> ints = {1., -2., 3.};
  CHECK(printed(ints) == "xarray([ 1., -2.,  3.], shape=(3,), dtype=float64)");
  CHECK(printed(xt::xarray<double>(1.5)) == "xarray(1.5000, shape=(), dtype=float64)");
  CHECK(printed(xt::xarray<float>::from_shape({0})) == "xarray([], shape=(0,), dtype=float32)");
  CHECK(printed(xt::xarray<float>::from_shape({0, 3})) == "xarray([], shape=(0, 3), dtype=float32)");
  CHECK(printed(xt::xarray<float>{1e-5f, 1.f, 123.f}) ==
        "xarray([1.0000e-05, 1.0000e+00, 1.2300e+02], shape=(3,), dtype=float32)");
  const double inf = std::numeric_limits<double>::infinity();
  CHECK(printed(xt::xarray<double>{std::nan(""), inf, -1.}) ==
        "xarray([nan, inf, -1.], shape=(3,), dtype=float64)");
}

TEST_CASE("a 3-d array and a long vector break lines where torch breaks them") {
  xt::xarray<double> a = xt::arange<double>(24.);
  a.reshape({2, 3, 4});
  a /= 7.;
  CHECK(tg::format_values(a) ==
        "[[[0.0000, 0.1429, 0.2857, 0.4286],\n"
        "         [0.5714, 0.7143, 0.8571, 1.0000],\n"
        "         [1.1429, 1.2857, 1.4286, 1.5714]],\n"
        "\n"
        "        [[1.7143, 1.8571, 2.0000, 2.1429],\n"
        "         [2.2857, 2.4286, 2.5714, 2.7143],\n"
        "         [2.8571, 3.0000, 3.1429, 3.2857]]]");
  const xt::xarray<float> v = xt::arange<float>(30.f) * 0.5f;
  CHECK(tg::format_values(v) ==
        "[ 0.0000,  0.5000,  1.0000,  1.5000,  2.0000,  2.5000,  3.0000,  3.5000,\n"
        "         4.0000,  4.5000,  5.0000,  5.5000,  6.0000,  6.5000,  7.0000,  7.5000,\n"
        "         8.0000,  8.5000,  9.0000,  9.5000, 10.0000, 10.5000, 11.0000, 11.5000,\n"
        "        12.0000, 12.5000, 13.0000, 13.5000, 14.0000, 14.5000]");
}

TEST_CASE("more than 1000 elements are summarized with ... and 3 edge items, as torch does") {
  xt::xarray<float> big = xt::arange<float>(2000.f);
  big.reshape({40, 50});
  CHECK(tg::format_values(big) ==
        "[[0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 4.7000e+01, 4.8000e+01,\n"
        "         4.9000e+01],\n"
        "        [5.0000e+01, 5.1000e+01, 5.2000e+01,  ..., 9.7000e+01, 9.8000e+01,\n"
        "         9.9000e+01],\n"
        "        [1.0000e+02, 1.0100e+02, 1.0200e+02,  ..., 1.4700e+02, 1.4800e+02,\n"
        "         1.4900e+02],\n"
        "        ...,\n"
        "        [1.8500e+03, 1.8510e+03, 1.8520e+03,  ..., 1.8970e+03, 1.8980e+03,\n"
        "         1.8990e+03],\n"
        "        [1.9000e+03, 1.9010e+03, 1.9020e+03,  ..., 1.9470e+03, 1.9480e+03,\n"
        "         1.9490e+03],\n"
        "        [1.9500e+03, 1.9510e+03, 1.9520e+03,  ..., 1.9970e+03, 1.9980e+03,\n"
        "         1.9990e+03]]");
  const xt::xarray<double> line = xt::linspace<double>(0., 1., 1500);
  CHECK(printed(line) ==
        "xarray([0.0000e+00, 6.6711e-04, 1.3342e-03,  ..., 9.9867e-01, 9.9933e-01,\n"
        "        1.0000e+00], shape=(1500,), dtype=float64)");
  const xt::xarray<float> ones = xt::ones<float>({10, 10, 12});
  const std::string block =
      "[[1., 1., 1.,  ..., 1., 1., 1.],\n"
      "         [1., 1., 1.,  ..., 1., 1., 1.],\n"
      "         [1., 1., 1.,  ..., 1., 1., 1.],\n"
      "         ...,\n"
      "         [1., 1., 1.,  ..., 1., 1., 1.],\n"
      "         [1., 1., 1.,  ..., 1., 1., 1.],\n"
      "         [1., 1., 1.,  ..., 1., 1., 1.]]";
  const std::string sep = ",\n\n        ";
  CHECK(tg::format_values(ones) == "[" + block + sep + block + sep + block + sep + "..." + sep + block + sep +
                                       block + sep + block + "]");
}

TEST_CASE("a Var prints its values, shape, dtype and requires_grad or the op that recorded it") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>{{1.f, 2.f}, {3.f, 4.f}}, true);
  auto c = t.constant(xt::xarray<float>{{1.f, 0.f}, {0.f, 1.f}});
  CHECK(printed(x) ==
        "tensor([[1., 2.],\n        [3., 4.]], shape=(2, 2), dtype=float32, requires_grad=True)");
  CHECK(printed(c) == "tensor([[1., 0.],\n        [0., 1.]], shape=(2, 2), dtype=float32)");
  CHECK(printed(tg::matmul(x, c)) ==
        "tensor([[1., 2.],\n        [3., 4.]], shape=(2, 2), dtype=float32, grad_fn=<matmul>)");
  tg::Tape<double> td;
  CHECK(printed(td.scalar(0.25)) == "tensor(0.2500, shape=(), dtype=float64)");
  auto s = tg::sum(td.input(xt::xarray<double>{0.5, 0.25}, true));
  CHECK(printed(s) == "tensor(0.7500, shape=(), dtype=float64, grad_fn=<sum>)");
}

TEST_CASE("a long suffix moves to its own line when it would pass 80 columns, as in torch") {
  tg::Tape<double> t;
  const xt::xarray<double> v = xt::arange<double>(30.) * 0.5;
  const std::string s = printed(t.input(v, true));
  // torch: "... 14.5000],\n       dtype=torch.float64, requires_grad=True)" (its dtype suffix is longer)
  const std::string tail = "14.5000], shape=(30,),\n       dtype=float64, requires_grad=True)";
  CHECK(s.substr(s.size() - tail.size()) == tail);
}

TEST_CASE("a Parameter prints as torch's 'Parameter containing:' and its tensor") {
  tg::Parameter<float> p(xt::xarray<float>{0.5f, -1.f});
  CHECK(printed(p) ==
        "Parameter containing:\ntensor([ 0.5000, -1.0000], shape=(2,), dtype=float32, requires_grad=True)");
  p.requires_grad = false;
  CHECK(printed(p) == "Parameter containing:\ntensor([ 0.5000, -1.0000], shape=(2,), dtype=float32)");
}

TEST_CASE("printing a stale or empty Var says so instead of throwing") {
  tg::Tape<float> t;
  auto x = t.input(xt::xarray<float>{1.f}, true);
  auto y = x * 2.0;
  t.reset();
  t.input(xt::xarray<float>{5.f});  // the slot of x is recorded again
  CHECK(
      printed(x) ==
      "<stale Var (index 0): recorded before tape.reset() or dropped by tape.truncate(); its value is gone>");
  CHECK(printed(y).rfind("<stale Var (index 1)", 0) == 0);
  CHECK(printed(tg::Var<float>()) == "<empty Var>");
  CHECK(t.size() == 1);
}
