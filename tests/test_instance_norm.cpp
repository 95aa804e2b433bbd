// InstanceNorm1d (nn/instance_norm.hpp): PyTorch 1.13 fixtures (outputs, gradients, running
// statistics, eval), gradcheck, batch independence, and the bad-input cases.
#include <xtensor/xview.hpp>

#include "expect_error.hpp"
#include "norm_fixture.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;
using tgtest::module_state;
using tgtest::randn;
using tgtest::uniform;

TEST_CASE("InstanceNorm1d matches PyTorch: outputs, all gradients, running statistics and eval") {
  const auto check = [](const nlohmann::json& c, normfx::Comparison& compare) {
    const xt::xarray<double> x1 = tgtest::to_array(c.at("x1"));
    const std::size_t ch = x1.shape()[1];
    const bool affine = c.at("affine"), track = c.at("track_running_stats");
    INFO("x " << tg::shape_str(x1.shape()) << (affine ? " affine" : "") << (track ? " track" : ""));
    tg::InstanceNorm1d<double> m(ch, tg::InstanceNormOptions()
                                         .eps(c.at("eps"))
                                         .momentum(c.at("momentum"))
                                         .affine(affine)
                                         .track_running_stats(track));
    normfx::load_affine(m, c);
    tg::Tape<double> t;
    normfx::check_training_step(compare, c, m, t);
    CHECK(!m.running_mean == !track);
    if (track) CHECK((*m.num_batches_tracked)() == 0.0);  // F.instance_norm does not count
    normfx::check_eval(compare, c, m, t);
  };
  normfx::check_cases("instance_norm.json", 5, "InstanceNorm1d", check);
}

TEST_CASE("InstanceNorm1d passes gradcheck_module in training and in eval with running statistics") {
  for (bool track : {false, true}) {
    tg::InstanceNorm1d<double> m(3, tg::InstanceNormOptions().affine(true).track_running_stats(track));
    m.weight->value = uniform({3}, 1, 0.5, 1.5);
    m.bias->value = randn({3}, 2);
    for (const tg::Shape& s : {tg::Shape{2, 3, 5}, tg::Shape{1, 3, 2}, tg::Shape{3, 3, 7}}) {
      INFO(tg::shape_str(s) << " track " << track);
      m.train();
      auto r = tg::gradcheck_module(m, randn(s, 3, 2.0));
      INFO(r.message);
      CHECK(r.ok);
      m.eval();
      r = tg::gradcheck_module(m, randn(s, 4, 2.0));
      INFO(r.message);
      CHECK(r.ok);
    }
  }
}

TEST_CASE("InstanceNorm1d output of one example is bitwise independent of the rest of the batch") {
  xt::xarray<double> a = randn({3, 4, 6}, 41, 2.0);
  xt::xarray<double> b = randn({5, 4, 6}, 42, 40.0);
  xt::view(b, 4) = xt::view(a, 2);
  tg::InstanceNorm1d<double> m(4, tg::InstanceNormOptions().affine(true));
  m.weight->value = randn({4}, 43);
  tg::Tape<double> t;
  const xt::xarray<double> ra = xt::view(m(t, t.input(a)).value(), 2);
  const xt::xarray<double> rb = xt::view(m(t, t.input(b)).value(), 4);
  CHECK((ra == rb));
}

TEST_CASE("InstanceNorm1d has PyTorch's state_dict names") {
  tg::InstanceNorm1d<float> plain(4);
  CHECK(plain.state_dict().empty());
  tg::InstanceNorm1d<float> full(4, tg::InstanceNormOptions().affine(true).track_running_stats(true));
  const auto sd = full.state_dict();
  CHECK(sd.size() == 5);
  for (const char* k : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}) {
    INFO(k);
    CHECK(sd.count(k) == 1);
  }
}

// ---- bad inputs ----------------------------------------------------------------------------

TEST_CASE(
    "InstanceNorm1d with L = 1 in training, a wrong channel count, 2-D or empty input is refused; nothing changes") {
  tg::InstanceNorm1d<double> m(3, tg::InstanceNormOptions().affine(true).track_running_stats(true));
  tg::Tape<double> t;
  m(t, t.input(randn({2, 3, 4}, 1)));  // running statistics off their initial values
  t.reset();
  const auto before = module_state(m);
  auto one = t.input(randn({2, 3, 1}, 2), true);
  auto wrong = t.input(randn({2, 4, 5}, 3), true);
  auto flat = t.input(randn({2, 3}, 4), true);
  auto empty = t.input(xt::xarray<double>::from_shape({0, 3, 4}), true);
  tgtest::TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>([&] { m(t, one); },
                               {"InstanceNorm1d", "more than 1 spatial element when training", "(2, 3, 1)"});
  expect_error<tg::ShapeError>([&] { m(t, wrong); }, {"InstanceNorm1d", "(N, 3, L)", "(2, 4, 5)"});
  expect_error<tg::ShapeError>([&] { m(t, flat); }, {"InstanceNorm1d", "(2, 3)"});
  expect_error<tg::ShapeError>([&] { m(t, empty); }, {"InstanceNorm1d", "(0, 3, 4)"});
  s.check_unchanged();
  CHECK((module_state(m) == before));
  // eval with running statistics takes L = 1 (as PyTorch); without them it is refused too
  m.eval();
  CHECK(m(t, one).value().shape() == tg::Shape{2, 3, 1});
  tg::InstanceNorm1d<double> untracked(3);
  untracked.eval();
  expect_error<tg::ValueError>([&] { untracked(t, one); }, {"spatial element", "(2, 3, 1)"});
  expect_error<tg::ValueError>([] { tg::InstanceNorm1d<double>(3, tg::InstanceNormOptions().momentum(1.5)); },
                               {"InstanceNorm1d", "momentum", "1.5"});
  expect_error<tg::ValueError>([] { tg::InstanceNorm1d<double>(0); }, {"InstanceNorm1d", "num_features"});
}
