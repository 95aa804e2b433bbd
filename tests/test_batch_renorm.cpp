// BatchRenorm1d and GhostBatchNorm1d (nn/batch_renorm.hpp, nn/ghost_batch_norm.hpp): the
// paper's algorithms composed in PyTorch 1.13 (fixtures), gradcheck, the BatchNorm1d
// equivalences, the warm-up schedule, and the bad-input cases.
#include <cstring>

#include "expect_error.hpp"
#include "norm_fixture.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;
using tgtest::module_state;
using tgtest::randn;
using tgtest::uniform;

namespace {

template <class T>
bool same_bits(const xt::xarray<T>& a, const xt::xarray<T>& b) {
  return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

// Runs `steps` training steps of a and b on the same batches (loss: a random projection), and
// checks outputs, input gradients, parameter gradients and state for the same bits.
template <class T>
void check_same_as_batch_norm(tg::Module<T>& a, tg::Module<T>& b, const tg::Shape& shape, int steps) {
  for (int s = 0; s < steps; ++s) {
    const xt::xarray<T> x = randn<T>(shape, 100 + static_cast<std::uint64_t>(s), 2.0);
    const xt::xarray<T> up = randn<T>(shape, 200 + static_cast<std::uint64_t>(s));
    tg::Tape<T> ta, tb;
    auto xa = ta.input(x, true), xb = tb.input(x, true);
    auto ya = a(ta, xa), yb = b(tb, xb);
    CHECK(same_bits(ya.value(), yb.value()));
    ta.backward(ya, up);
    tb.backward(yb, up);
    CHECK(same_bits(ta.grad(xa), tb.grad(xb)));
    const auto sa = module_state(a), sb = module_state(b);
    REQUIRE(sa.size() == sb.size());
    for (const auto& [k, v] : sa) {
      INFO(k);
      CHECK(same_bits(v, sb.at(k)));
    }
  }
  a.eval();
  b.eval();
  tg::Tape<T> ta, tb;
  const xt::xarray<T> x = randn<T>(shape, 300, 2.0);
  CHECK(same_bits(a(ta, ta.input(x)).value(), b(tb, tb.input(x)).value()));
}

}  // namespace

// ---- BatchRenorm1d -------------------------------------------------------------------------

TEST_CASE("BatchRenorm1d matches the paper's algorithm composed in PyTorch: values, gradients, statistics") {
  const auto check = [](const nlohmann::json& c, normfx::Comparison& compare) {
    const tg::Shape xs = tgtest::to_array(c.at("x")).shape();
    const std::size_t ch = xs[1];
    const bool affine = c.contains("weight");
    INFO("x " << tg::shape_str(xs) << (affine ? " affine" : "") << " r_max " << c.at("r_max").get<double>());
    tg::BatchRenorm1d<double> m(ch, tg::BatchRenormOptions()
                                        .eps(c.at("eps"))
                                        .momentum(c.at("momentum"))
                                        .affine(affine)
                                        .r_max(c.at("r_max"))
                                        .d_max(c.at("d_max")));
    normfx::load_affine(m, c);
    *m.running_mean = tgtest::to_array(c.at("running_mean0"));
    *m.running_var = tgtest::to_array(c.at("running_var0"));
    tg::Tape<double> t;
    normfx::check_training_step(compare, c, m, t);
    CHECK((*m.num_batches_tracked)() == 1.0);
    normfx::check_eval(compare, c, m, t);
  };
  normfx::check_cases("batch_renorm.json", 5, "BatchRenorm1d", check);
}

// r and d are stop_gradient constants: where they are not clipped they move with x, and finite
// differences see that while the analytic gradient (by design) does not. So the check runs
// where both are clipped (locally constant): running statistics far from the batch's, and
// r_max = 1, d_max = 0 (BatchNorm). The fixtures cover the unclipped case.
TEST_CASE("BatchRenorm1d passes gradcheck_module where r and d are clipped") {
  for (const tg::Shape& s : {tg::Shape{5, 3}, tg::Shape{3, 3, 4}, tg::Shape{2, 3, 1}}) {
    for (double r_max : {1.0, 1.3, 4.0}) {
      INFO(tg::shape_str(s) << " r_max " << r_max);
      tg::BatchRenorm1d<double> m(3, tg::BatchRenormOptions().r_max(r_max).d_max(r_max - 1.0));
      m.weight->value = uniform({3}, 1, 0.5, 1.5);
      m.bias->value = randn({3}, 2);
      *m.running_mean = xt::xarray<double>({100.0, -100.0, 50.0});
      *m.running_var = xt::xarray<double>({1e-4, 1e-4, 1e-4});
      const auto r = tg::gradcheck_module(m, randn(s, 5, 1.5));
      INFO(r.message);
      CHECK(r.ok);
    }
  }
}

TEMPLATE_TEST_CASE("BatchRenorm1d with r_max = 1 and d_max = 0 gives BatchNorm1d's bits", "", float, double) {
  using T = TestType;
  for (bool affine : {true, false}) {
    for (const tg::Shape& s : {tg::Shape{6, 4}, tg::Shape{3, 4, 5}}) {
      INFO(tg::shape_str(s) << " affine " << affine);
      tg::BatchNorm1d<T> bn(4, tg::BatchNormOptions().affine(affine));
      tg::BatchRenorm1d<T> br(4, tg::BatchRenormOptions().affine(affine).r_max(1.0).d_max(0.0));
      if (affine) {
        bn.weight->value = randn<T>({4}, 7);
        br.weight->value = bn.weight->value;
        bn.bias->value = randn<T>({4}, 8);
        br.bias->value = bn.bias->value;
      }
      check_same_as_batch_norm<T>(br, bn, s, 3);
    }
  }
}

TEST_CASE("the Batch Renorm warm-up schedule is the paper's: 1 and 0, then linear to 3 at 40k and 5 at 25k") {
  const tg::BatchRenormSchedule s;
  CHECK(s.r_max(0) == 1.0);
  CHECK(s.d_max(5000) == 0.0);
  CHECK(s.r_max(40000) == 3.0);
  CHECK(s.d_max(25000) == 5.0);
  CHECK(s.d_max(100000) == 5.0);
  CHECK(s.r_max(22500) == Approx(2.0));
  CHECK(s.d_max(15000) == Approx(2.5));
  tg::BatchRenorm1d<float> m(3);
  s.apply(m, 5000);
  CHECK(m.r_max() == 1.0);
  CHECK(m.d_max() == 0.0);
  s.apply(m, 60000);
  CHECK(m.r_max() == 3.0);
  CHECK(m.d_max() == 5.0);
  const auto sd = m.state_dict();
  for (const char* k : {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"}) {
    INFO(k);
    CHECK(sd.count(k) == 1);
  }
  CHECK(sd.size() == 5);
}

TEST_CASE(
    "BatchRenorm1d training on a batch of one, a wrong channel count or bad limits is refused; nothing changes") {
  tg::BatchRenorm1d<double> m(3);
  tg::Tape<double> t;
  m(t, t.input(randn({4, 3}, 1)));
  t.reset();
  const auto before = module_state(m);
  auto one = t.input(randn({1, 3}, 2), true);
  auto one3 = t.input(randn({1, 3, 1}, 3), true);
  auto empty = t.input(xt::xarray<double>::from_shape({0, 3}), true);
  auto wrong = t.input(randn({4, 5}, 4), true);
  tgtest::TapeSnapshot<double> s(t);
  expect_error<tg::StateError>([&] { m(t, one); },
                               {"BatchRenorm1d", "more than 1 value per channel", "(1, 3)"});
  expect_error<tg::StateError>([&] { m(t, one3); }, {"BatchRenorm1d", "(1, 3, 1)"});
  expect_error<tg::StateError>([&] { m(t, empty); }, {"BatchRenorm1d", "(0, 3)"});
  expect_error<tg::ShapeError>([&] { m(t, wrong); }, {"BatchRenorm1d", "(N, 3)", "(4, 5)"});
  expect_error<tg::ValueError>([&] { m.set_limits(0.5, 1.0); }, {"BatchRenorm1d", "r_max=0.5"});
  expect_error<tg::ValueError>([&] { m.set_limits(2.0, -1.0); }, {"BatchRenorm1d", "d_max=-1"});
  s.check_unchanged();
  CHECK((module_state(m) == before));
  CHECK(m.r_max() == 3.0);
  expect_error<tg::ValueError>([] { tg::BatchRenorm1d<double>(3, tg::BatchRenormOptions().momentum(2.0)); },
                               {"BatchRenorm1d", "momentum"});
}

// ---- GhostBatchNorm1d ----------------------------------------------------------------------

TEST_CASE("GhostBatchNorm1d matches BatchNorm1d over torch.chunk in PyTorch: values, gradients, statistics") {
  const auto check = [](const nlohmann::json& c, normfx::Comparison& compare) {
    const xt::xarray<double> x1 = tgtest::to_array(c.at("x1"));
    const std::size_t ch = x1.shape()[1], vbs = c.at("virtual_batch_size");
    const bool affine = c.at("affine");
    INFO("x " << tg::shape_str(x1.shape()) << " vbs " << vbs);
    const std::optional<double> momentum =
        c.at("momentum").is_null() ? std::nullopt : std::optional<double>(c.at("momentum").get<double>());
    tg::GhostBatchNorm1d<double> m(ch, vbs, tg::BatchNormOptions().momentum(momentum).affine(affine));
    normfx::load_affine(m, c);
    tg::Tape<double> t;
    normfx::check_training_step(compare, c, m, t);
    CHECK((*m.num_batches_tracked)() == c.at("num_batches_tracked").get<double>());
    normfx::check_eval(compare, c, m, t);
  };
  normfx::check_cases("ghost_batch_norm.json", 5, "GhostBatchNorm1d", check);
}

TEST_CASE("GhostBatchNorm1d passes gradcheck_module over several chunks") {
  for (const tg::Shape& s : {tg::Shape{7, 3}, tg::Shape{5, 2, 3}}) {
    INFO(tg::shape_str(s));
    tg::GhostBatchNorm1d<double> m(s[1], 4);  // chunks of 4 and 3; of 3 and 2
    m.weight->value = uniform({s[1]}, 1, 0.5, 1.5);
    m.bias->value = randn({s[1]}, 2);
    const auto r = tg::gradcheck_module(m, randn(s, 3, 1.5));
    INFO(r.message);
    CHECK(r.ok);
  }
}

TEMPLATE_TEST_CASE("GhostBatchNorm1d with one chunk gives BatchNorm1d's bits", "", float, double) {
  using T = TestType;
  for (const tg::Shape& s : {tg::Shape{6, 4}, tg::Shape{3, 4, 5}}) {
    INFO(tg::shape_str(s));
    tg::BatchNorm1d<T> bn(4);
    tg::GhostBatchNorm1d<T> gb(4, 8);
    bn.weight->value = randn<T>({4}, 7);
    gb.weight->value = bn.weight->value;
    check_same_as_batch_norm<T>(gb, bn, s, 3);
  }
}

TEST_CASE(
    "GhostBatchNorm1d with a chunk of one example, a wrong channel count or bad config is refused; nothing changes") {
  tg::GhostBatchNorm1d<double> m(3, 4);
  tg::Tape<double> t;
  m(t, t.input(randn({8, 3}, 1)));
  t.reset();
  const auto before = module_state(m);
  auto ragged = t.input(randn({9, 3}, 2), true);  // chunks of 3: fine; 13 -> 4, 4, 4, 1: not
  CHECK(m(t, ragged).value().shape() == tg::Shape{9, 3});
  t.reset();
  const auto after_ragged = module_state(m);
  auto bad = t.input(randn({13, 3}, 3), true);
  auto one = t.input(randn({1, 3}, 4), true);
  auto empty = t.input(xt::xarray<double>::from_shape({0, 3}), true);
  auto wrong = t.input(randn({4, 2}, 5), true);
  CHECK((*m.num_batches_tracked)() == 2.0 + 3.0);
  tgtest::TapeSnapshot<double> s(t);
  expect_error<tg::StateError>([&] { m(t, bad); },
                               {"GhostBatchNorm1d", "(13, 3)", "chunks of 4", "the last of 1"});
  expect_error<tg::StateError>([&] { m(t, one); }, {"GhostBatchNorm1d", "(1, 3)"});
  expect_error<tg::StateError>([&] { m(t, empty); }, {"GhostBatchNorm1d", "(0, 3)"});
  expect_error<tg::ShapeError>([&] { m(t, wrong); }, {"GhostBatchNorm1d", "(N, 3)", "(4, 2)"});
  s.check_unchanged();
  CHECK((module_state(m) == after_ragged));
  CHECK(!(before == after_ragged));
  expect_error<tg::ValueError>([] { tg::GhostBatchNorm1d<double>(3, 0); },
                               {"GhostBatchNorm1d", "virtual_batch_size"});
  expect_error<tg::ValueError>(
      [] { tg::GhostBatchNorm1d<double>(3, 4, tg::BatchNormOptions().track_running_stats(false)); },
      {"GhostBatchNorm1d", "track_running_stats"});
}

TEST_CASE(
    "GhostBatchNorm1d in anomaly mode refuses a running_var update to Inf in a later chunk; nothing changes") {
  tg::GhostBatchNorm1d<float> m(2, 2);
  tg::Tape<float> t;
  t.set_detect_anomaly(true);
  m(t, t.input(randn<float>({4, 2}, 1)));  // two chunks, both fine
  t.reset();
  std::map<std::string, xt::xarray<float>> before = m.state_dict();
  // The second chunk's variance (~1e77 in double) leaves float's range; the first one's does not.
  auto x = t.input(xt::xarray<float>({{1.f, 2.f}, {3.f, 5.f}, {3e38f, 1.f}, {-3e38f, 2.f}}), true);
  const std::size_t size = t.size();
  expect_error<tg::NumericalError>([&] { m(t, x); }, {"GhostBatchNorm1d", "running_var", "channel 0"});
  CHECK(t.size() == size);
  const auto after = m.state_dict();
  for (const auto& [k, v] : before) {
    INFO(k);
    CHECK(same_bits(v, after.at(k)));
  }
}
