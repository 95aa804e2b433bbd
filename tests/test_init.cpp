// tapegrad::init against torch.nn.init 1.13 (tests/fixtures/gen_init.py): gains, fans, stds and
// bounds exactly; the drawn values statistically (tapegrad draws its own numbers).
#include <cmath>

#include "expect_error.hpp"

namespace tg = tapegrad;
namespace ti = tapegrad::init;
using tgtest::expect_error;
using tgtest::load_fixture;

namespace {

tg::Shape shape_of(const nlohmann::json& j) {
  tg::Shape s;
  for (const auto& d : j) s.push_back(d.get<std::size_t>());
  return s;
}

struct Stats {
  double mean = 0, sd = 0, min = 0, max = 0;
};

template <class T>
Stats stats(const xt::xarray<T>& a) {
  Stats s;
  s.min = s.max = static_cast<double>(a.data()[0]);
  for (T v : a) {
    s.mean += static_cast<double>(v);
    s.min = std::min(s.min, static_cast<double>(v));
    s.max = std::max(s.max, static_cast<double>(v));
  }
  s.mean /= static_cast<double>(a.size());
  for (T v : a) s.sd += (static_cast<double>(v) - s.mean) * (static_cast<double>(v) - s.mean);
  s.sd = std::sqrt(s.sd / static_cast<double>(a.size() - 1));
  return s;
}

// Our sample of n values against torch's: the means within 6 standard errors, the stds within
// 2 % (the standard error of a sample std is std / sqrt(2n), 0.2 % here).
void check_like_torch(const Stats& ours, const nlohmann::json& torch, std::size_t n) {
  const double sd = torch.at("std").get<double>();
  INFO("ours: mean " << ours.mean << " std " << ours.sd << "; torch: " << torch.dump());
  CHECK(std::abs(ours.mean - torch.at("mean").get<double>()) <
        6 * sd * std::sqrt(2.0 / static_cast<double>(n)));
  CHECK(ours.sd == Approx(sd).epsilon(0.02));
}

template <class T>
xt::xarray<T> empty(const tg::Shape& s) {
  return xt::xarray<T>::from_shape(s);
}

// max |a a^T - scale^2 I| for the rows of a viewed as a matrix of size(0) rows.
template <class T>
double row_orthogonality_error(const xt::xarray<T>& a, double scale) {
  const std::size_t rows = a.shape()[0], cols = a.size() / rows;
  double err = 0;
  for (std::size_t i = 0; i < rows; ++i) {
    for (std::size_t j = 0; j < rows; ++j) {
      double dot = 0;
      for (std::size_t k = 0; k < cols; ++k)
        dot += double(a.data()[i * cols + k]) * double(a.data()[j * cols + k]);
      err = std::max(err, std::abs(dot - (i == j ? scale * scale : 0.0)));
    }
  }
  return err;
}

template <class T>
double column_orthogonality_error(const xt::xarray<T>& a, double scale) {
  xt::xarray<T> t = xt::transpose(a);
  return row_orthogonality_error(xt::xarray<T>(t), scale);
}

}  // namespace

TEST_CASE("init: calculate_gain equals torch's for every nonlinearity") {
  const auto fx = load_fixture("init.json");
  for (const auto& g : fx.at("gains")) {
    const std::string name = g.at("nonlinearity").get<std::string>();
    INFO(name << " " << g.at("param").dump());
    const double ours = g.at("param").is_null() ? ti::calculate_gain(name)
                                                : ti::calculate_gain(name, g.at("param").get<double>());
    CHECK(ours == Approx(g.at("gain").get<double>()).epsilon(1e-15));
  }
  CHECK((ti::calculate_gain("tanh") == 5.0 / 3));
  CHECK((ti::calculate_gain("relu") == std::sqrt(2.0)));
  CHECK((ti::calculate_gain("leaky_relu") == std::sqrt(2.0 / (1 + 0.01 * 0.01))));
  CHECK((ti::calculate_gain("selu") == 0.75));
}

TEST_CASE("init: fans, stds and bounds equal torch's") {
  const auto fx = load_fixture("init.json");
  for (const auto& f : fx.at("fans")) {
    const ti::Fans fans = ti::calculate_fan_in_and_fan_out(shape_of(f.at("shape")));
    INFO(f.dump());
    CHECK(fans.fan_in == f.at("fan_in").get<std::size_t>());
    CHECK(fans.fan_out == f.at("fan_out").get<std::size_t>());
  }
  // The bound of each scheme: every drawn value inside it, and the extremes reach it.
  tg::Generator gen(3);
  for (const auto& s : fx.at("schemes")) {
    INFO(s.dump());
    xt::xarray<double> w = empty<double>(shape_of(s.at("shape")));
    const double bound = s.at("bound").get<double>();
    if (s.at("scheme") == "kaiming") {
      const double fan = double(ti::calculate_correct_fan(w.shape(), s.at("mode").get<std::string>()));
      const double sd = ti::calculate_gain(s.at("nonlinearity").get<std::string>(), s.at("a").get<double>()) /
                        std::sqrt(fan);
      CHECK(sd == Approx(s.at("std").get<double>()).epsilon(1e-15));
      ti::kaiming_uniform_(w, s.at("a").get<double>(), s.at("mode").get<std::string>(),
                           s.at("nonlinearity").get<std::string>(), gen);
    } else {
      ti::xavier_uniform_(w, s.at("gain").get<double>(), gen);
    }
    const Stats st = stats(w);
    CHECK(st.min >= -bound);
    CHECK(st.max < bound);
    if (w.size() >= 1000) CHECK(std::max(-st.min, st.max) > 0.99 * bound);
  }
}

TEST_CASE("init: values are distributed as torch's (mean and std of a (256, 512) tensor)") {
  const auto fx = load_fixture("init.json");
  const auto& torch = fx.at("samples");
  const tg::Shape big = shape_of(fx.at("sample_shape"));
  const std::size_t n = 256 * 512;
  tg::Generator gen(11);
  xt::xarray<double> w = empty<double>(big);
  check_like_torch(stats(ti::uniform_(w, -2.0, 3.0, gen)), torch.at("uniform(-2, 3)"), n);
  CHECK(stats(w).min >= -2.0);
  CHECK(stats(w).max < 3.0);
  check_like_torch(stats(ti::normal_(w, 1.0, 0.5, gen)), torch.at("normal(1, 0.5)"), n);
  check_like_torch(stats(ti::xavier_uniform_(w, 2.0, gen)), torch.at("xavier_uniform(gain 2)"), n);
  check_like_torch(stats(ti::xavier_normal_(w, 2.0, gen)), torch.at("xavier_normal(gain 2)"), n);
  check_like_torch(stats(ti::kaiming_uniform_(w, 0.0, "fan_out", "relu", gen)),
                   torch.at("kaiming_uniform(relu, fan_out)"), n);
  check_like_torch(stats(ti::kaiming_normal_(w, 0.0, "fan_in", "relu", gen)),
                   torch.at("kaiming_normal(relu, fan_in)"), n);
  check_like_torch(stats(ti::orthogonal_(w, 1.5, gen)), torch.at("orthogonal(gain 1.5)"), n);
  // float too, with the default arguments (kaiming: leaky_relu with a = 0, fan_in).
  xt::xarray<float> f = empty<float>({300, 400});
  ti::kaiming_normal_(f, 0.0, "fan_in", "leaky_relu", gen);
  CHECK(stats(f).sd == Approx(std::sqrt(2.0 / 400)).epsilon(0.02));
}

TEST_CASE("init: orthogonal_ gives orthonormal rows or columns, times gain, for wide, tall and 3-D shapes") {
  tg::Generator gen(5);
  xt::xarray<double> wide = empty<double>({20, 50});
  ti::orthogonal_(wide, 1.0, gen);
  CHECK(row_orthogonality_error(wide, 1.0) < 1e-12);
  xt::xarray<double> tall = empty<double>({50, 20});
  ti::orthogonal_(tall, 2.0, gen);
  CHECK(column_orthogonality_error(tall, 2.0) < 1e-12);
  xt::xarray<double> square = empty<double>({16, 16});
  ti::orthogonal_(square, 1.0, gen);
  CHECK(row_orthogonality_error(square, 1.0) < 1e-12);
  CHECK(column_orthogonality_error(square, 1.0) < 1e-12);
  xt::xarray<double> conv = empty<double>({4, 3, 2});  // 4 rows of 6: orthonormal rows
  ti::orthogonal_(conv, 1.0, gen);
  CHECK(row_orthogonality_error(conv, 1.0) < 1e-12);
  xt::xarray<float> f = empty<float>({32, 64});
  ti::orthogonal_(f, 1.0, gen);
  CHECK(row_orthogonality_error(f, 1.0) < 1e-5);
  // The sign correction makes Q Haar-distributed: an entry's mean over many draws is 0 (without
  // it, Householder's R_00 < 0 convention would bias Q's first column).
  double first = 0;
  for (int k = 0; k < 400; ++k) {
    xt::xarray<double> q = empty<double>({3, 3});
    first += ti::orthogonal_(q, 1.0, gen)(0, 0);
  }
  CHECK(std::abs(first / 400) < 0.1);  // entries have std 1/sqrt(3): the mean's std is 0.029
}

TEST_CASE("init: constant_, zeros_, ones_, eye_, seeding, Parameters and empty tensors") {
  xt::xarray<float> a = empty<float>({2, 3});
  CHECK((ti::constant_(a, 0.25) == xt::xarray<float>{{0.25f, 0.25f, 0.25f}, {0.25f, 0.25f, 0.25f}}));
  CHECK((ti::zeros_(a) == xt::zeros<float>({2, 3})));
  CHECK((ti::ones_(a) == xt::ones<float>({2, 3})));
  CHECK((ti::eye_(a) == xt::xarray<float>{{1, 0, 0}, {0, 1, 0}}));
  xt::xarray<double> b = empty<double>({3, 2});
  CHECK((ti::eye_(b) == xt::xarray<double>{{1, 0}, {0, 1}, {0, 0}}));
  // The same seed draws the same values; another seed others.
  tg::Generator g1(7), g2(7), g3(8);
  xt::xarray<double> x = empty<double>({4, 5}), y = empty<double>({4, 5}), z = empty<double>({4, 5});
  CHECK((ti::xavier_normal_(x, 1.0, g1) == ti::xavier_normal_(y, 1.0, g2)));
  CHECK((ti::xavier_normal_(z, 1.0, g3) != x));
  // A Parameter: filled, and its version bumped so a tape that bound the old value refuses it.
  tg::Parameter<float> p(xt::zeros<float>({8, 4}));
  tg::Tape<float> tape;
  auto loss = tg::sum(tape.param(p));
  ti::kaiming_uniform_(p, std::sqrt(5.0), "fan_in", "leaky_relu", g1);
  CHECK(p.version == 1);
  CHECK(xt::amax(xt::abs(p.value))() > 0);
  CHECK(xt::amax(xt::abs(p.value))() <= 0.5f);  // gain sqrt(1/3), fan_in 4: bound 1/sqrt(4)
  CHECK_THROWS_AS(tape.backward(loss), tg::StateError);
  ti::zeros_(p);
  CHECK(p.version == 2);
  CHECK((ti::orthogonal_(ti::ones_(p)).version == 4));
  // Empty tensors come back unchanged, without a draw.
  tg::Generator g4(7), g5(7);
  xt::xarray<double> e = empty<double>({0, 5});
  ti::kaiming_normal_(e, 0.0, "fan_in", "relu", g4);
  ti::xavier_uniform_(e, 1.0, g4);
  ti::orthogonal_(e, 1.0, g4);
  CHECK(g4.uniform() == g5.uniform());
}

TEST_CASE(
    "init: fan-based schemes and orthogonal_ refuse 0-d and 1-d tensors with a ValueError like torch's") {
  tg::Generator gen(1), fresh(1);
  xt::xarray<double> v = xt::xarray<double>{1.0, 2.0, 3.0};
  xt::xarray<double> s = xt::xarray<double>(4.0);
  const xt::xarray<double> v0 = v;
  for (xt::xarray<double>* a : {&v, &s}) {
    const std::string shape = tg::shape_str(a->shape());
    expect_error<tg::ValueError>([&] { ti::xavier_uniform_(*a, 1.0, gen); },
                                 {"xavier_uniform_", "fewer than 2 dimensions", shape});
    expect_error<tg::ValueError>([&] { ti::xavier_normal_(*a, 1.0, gen); },
                                 {"fewer than 2 dimensions", shape});
    expect_error<tg::ValueError>([&] { ti::kaiming_uniform_(*a, 0.0, "fan_in", "relu", gen); },
                                 {"fewer than 2 dimensions", shape});
    expect_error<tg::ValueError>([&] { ti::kaiming_normal_(*a, 0.0, "fan_out", "relu", gen); },
                                 {"fewer than 2 dimensions", shape});
    expect_error<tg::ValueError>([&] { ti::orthogonal_(*a, 1.0, gen); },
                                 {"orthogonal_", "2 or more dimensions", shape});
    expect_error<tg::ValueError>([&] { ti::eye_(*a); }, {"eye_", "2 dimensions", shape});
    expect_error<tg::ValueError>([&] { ti::calculate_fan_in_and_fan_out(a->shape()); }, {shape});
  }
  CHECK((v == v0));
  CHECK(s() == 4.0);
  CHECK(gen.uniform() == fresh.uniform());  // nothing was drawn
}

TEST_CASE(
    "init: an unknown nonlinearity or mode, a reversed range, a negative std or gain is a ValueError naming it") {
  tg::Generator gen(2), fresh(2);
  xt::xarray<double> w = xt::zeros<double>({3, 4});
  tg::Parameter<double> p(xt::zeros<double>({3, 4}));
  expect_error<tg::ValueError>([&] { ti::calculate_gain("gelu"); },
                               {"unsupported nonlinearity 'gelu'", "leaky_relu"});
  expect_error<tg::ValueError>([&] { ti::kaiming_uniform_(w, 0.0, "fan_in", "swish", gen); }, {"'swish'"});
  expect_error<tg::ValueError>([&] { ti::kaiming_normal_(w, 0.0, "fan_avg", "relu", gen); },
                               {"mode 'fan_avg'", "fan_in, fan_out"});
  expect_error<tg::ValueError>([&] { ti::kaiming_uniform_(p, NAN, "fan_in", "leaky_relu", gen); },
                               {"negative_slope", "nan"});
  expect_error<tg::ValueError>([&] { ti::uniform_(w, 1.0, -1.0, gen); }, {"uniform_", "a 1", "b -1"});
  expect_error<tg::ValueError>([&] { ti::uniform_(p, 0.0, INFINITY, gen); }, {"uniform_", "inf"});
  expect_error<tg::ValueError>([&] { ti::normal_(w, 0.0, -0.5, gen); }, {"normal_", "std", "-0.5"});
  expect_error<tg::ValueError>([&] { ti::normal_(w, NAN, 1.0, gen); }, {"normal_", "mean", "nan"});
  expect_error<tg::ValueError>([&] { ti::xavier_uniform_(w, -1.0, gen); }, {"xavier_uniform_", "gain", "-1"});
  expect_error<tg::ValueError>([&] { ti::xavier_normal_(p, INFINITY, gen); },
                               {"xavier_normal_", "gain", "inf"});
  expect_error<tg::ValueError>([&] { ti::orthogonal_(w, NAN, gen); }, {"orthogonal_", "gain", "nan"});
  CHECK((w == xt::zeros<double>({3, 4})));
  CHECK((p.value == xt::zeros<double>({3, 4})));
  CHECK(p.version == 0);
  CHECK(gen.uniform() == fresh.uniform());
}
