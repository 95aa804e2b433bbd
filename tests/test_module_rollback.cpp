// A forward that throws part-way changes nothing: Tape::truncate, and Sequential rolling back
// the tape and its children's buffers when a later layer throws.
#include <limits>

#include "expect_error.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using tgtest::expect_error;

namespace {

// Passes x through tanh and keeps the output Var, so a test can hold a Var of a node that a
// rolled-back forward recorded.
class Spy : public tg::Module<double> {
 public:
  tg::Var<double> forward(tg::Tape<double>&, const tg::Var<double>& x) override {
    seen = tg::tanh(x);
    return seen;
  }
  std::string type_name() const override { return "Spy"; }
  tg::Var<double> seen;
};

// Every buffer of m, by name, copied: compared with == (bitwise for these finite values).
tg::StateDict<double> buffers(tg::Module<double>& m) {
  tg::StateDict<double> out;
  for (auto& [name, b] : m.named_buffers()) out[name] = *b;
  return out;
}

// A loss that weighs every output element differently (not a plain sum).
tg::Var<double> weighted_loss(tg::Tape<double>& t, const tg::Var<double>& y, std::uint64_t seed) {
  return tg::sum(y * t.constant(tgtest::randn(t.shape(y), seed)));
}

// The parameters' grads, by name.
tg::StateDict<double> grads(tg::Module<double>& m) {
  tg::StateDict<double> out;
  for (auto& [name, p] : m.named_parameters()) out[name] = p->grad();
  return out;
}

}  // namespace

// ---- Tape::truncate ----------------------------------------------------------------------------

TEST_CASE("truncate drops the nodes past n: their Vars stay invalid after new nodes fill the slots") {
  tg::Tape<double> t;
  auto a = t.input(tgtest::randn({3}, 1), true);
  auto b = tg::exp(a);   // index 1
  auto c = b * 2.0;      // index 2
  auto d = tg::tanh(c);  // index 3
  REQUIRE(t.size() == 4);
  t.truncate(2);
  CHECK(t.size() == 2);
  CHECK(t.info(1).op == "exp");
  expect_error<tg::StateError>([&] { t.value(c); }, {"index 2", "tape.truncate()"});
  expect_error<tg::StateError>([&] { tg::exp(d); }, {"exp", "index 3", "tape.truncate()"});

  // New nodes into slots 2 and 3: the old Vars with those indices still refer to nothing.
  auto c2 = tg::log(b);
  auto d2 = tg::tanh(c2);
  REQUIRE(c2.index() == c.index());
  REQUIRE(d2.index() == d.index());
  expect_error<tg::StateError>([&] { c + d2; }, {"add", "index 2"});
  expect_error<tg::StateError>([&] { t.value(d); }, {"index 3"});
  expect_error<tg::StateError>([&] { t.backward(tg::sum(d)); }, {"index 3"});

  // The Vars below n and the new ones work, and backward through them is right:
  // d2 = tanh(log(exp(a))) = tanh(a), so dL/da = w (1 - tanh(a)^2) for L = sum(w d2).
  const xt::xarray<double> w = tgtest::randn({3}, 5);
  t.backward(tg::sum(d2 * t.constant(w)));
  const xt::xarray<double> th = xt::tanh(t.value(a));
  CHECK(tgtest::max_abs_diff(t.grad(a), xt::xarray<double>(w * (1.0 - th * th))) < 1e-12);
  CHECK(tgtest::max_abs_diff(t.value(b), xt::xarray<double>(xt::exp(t.value(a)))) < 1e-14);
}

TEST_CASE("truncate twice, and a stale Var from an earlier truncate stays invalid") {
  tg::Tape<double> t;
  auto a = t.input(tgtest::randn({2}, 1));
  auto b = tg::exp(a);  // index 1, generation g
  t.truncate(1);
  auto b2 = tg::tanh(a);  // index 1 again, a new generation
  auto c2 = tg::exp(b2);  // index 2
  t.truncate(2);          // drops c2 only: b2 stays valid
  CHECK(std::abs(t.value(b2)(0) - std::tanh(t.value(a)(0))) < 1e-14);
  expect_error<tg::StateError>([&] { t.value(b); }, {"index 1"});
  expect_error<tg::StateError>([&] { t.value(c2); }, {"index 2"});
  auto c3 = tg::exp(b2);
  CHECK(c3.index() == 2);
  expect_error<tg::StateError>([&] { t.value(c2); }, {"index 2"});
  CHECK(std::abs(t.value(c3)(1) - std::exp(std::tanh(t.value(a)(1)))) < 1e-14);
}

TEST_CASE("truncate to the current size changes nothing, past it is a ValueError, to 0 is like reset") {
  tg::Tape<double> t;
  auto a = t.input(tgtest::randn({2}, 1));
  auto b = tg::exp(a);
  const std::string table = t.describe();
  t.truncate(2);
  CHECK(t.describe() == table);
  CHECK(std::abs(t.value(b)(0) - std::exp(t.value(a)(0))) < 1e-14);
  expect_error<tg::ValueError>([&] { t.truncate(3); }, {"truncate", "3", "only 2"});
  CHECK(t.describe() == table);
  t.truncate(0);
  CHECK(t.size() == 0);
  expect_error<tg::StateError>([&] { t.value(a); }, {"index 0"});
  auto a2 = t.input(tgtest::randn({2}, 2));
  CHECK(a2.index() == 0);
  expect_error<tg::StateError>([&] { t.value(a); }, {"index 0"});
}

TEST_CASE("truncate forgets the bind_param entries whose Var it dropped and keeps the others") {
  tg::Tape<double> t;
  tg::Parameter<double> p(tgtest::randn({3}, 1)), q(tgtest::randn({3}, 2));
  auto vp = t.input(tgtest::randn({3}, 3), true);  // index 0
  t.bind_param(p, vp);
  auto vq = t.input(tgtest::randn({3}, 4), true);  // index 1
  t.bind_param(q, vq);
  t.truncate(1);
  CHECK(t.param(p).index() == vp.index());  // still bound
  auto bound_q = t.param(q);                // binds q itself again, not the dropped vq
  CHECK(t.info(bound_q.index()).is_param);
  CHECK(t.value(bound_q) == q.value);
  // backward reaches q's own grad, not a stale input leaf
  t.backward(tg::sum(bound_q * t.constant(xt::xarray<double>{1.0, 2.0, 3.0})));
  CHECK(q.grad() == xt::xarray<double>{1.0, 2.0, 3.0});
}

// ---- Sequential -------------------------------------------------------------------------------

TEST_CASE(
    "a Sequential whose last Linear does not match throws a ShapeError and leaves tape and buffers as they were") {
  tg::Generator gen(7);
  auto l0 = std::make_shared<tg::Linear<double>>(4, 8, tg::LinearOptions(), gen);
  auto bn = std::make_shared<tg::BatchNorm1d<double>>(8);
  auto act = std::make_shared<tg::Tanh<double>>();
  auto spy = std::make_shared<Spy>();
  auto bad = std::make_shared<tg::Linear<double>>(7, 2, tg::LinearOptions(), gen);
  auto good = std::make_shared<tg::Linear<double>>(8, 2, tg::LinearOptions(), gen);
  tg::Sequential<double> wrong({l0, bn, act, spy, bad});
  tg::Sequential<double> right({l0, bn, act, good});
  wrong.train();

  // Give the running statistics non-default values first: one good forward.
  const xt::xarray<double> x_value = tgtest::randn({5, 4}, 11);
  {
    tg::Tape<double> warm;
    right(warm, warm.input(tgtest::randn({5, 4}, 12)));
  }
  REQUIRE(bn->num_batches_tracked->operator()() == 1);

  tg::Tape<double> t;
  auto x = t.input(x_value, true);
  auto x2 = x * 1.0;  // an earlier op node, to show it survives
  const std::size_t size_before = t.size();
  const std::string table_before = t.describe();
  const auto buffers_before = buffers(wrong);
  const std::string msg =
      expect_error<tg::ShapeError>([&] { wrong(t, x2); }, {"Linear", "in_features=7", "(5, 8)"});
  // The exception is the Linear's own, unchanged: the same message as calling it directly.
  {
    tg::Tape<double> u;
    auto h = u.input(xt::xarray<double>(xt::zeros<double>({5, 8})));
    CHECK(expect_error<tg::ShapeError>([&] { (*bad)(u, h); }, {}) == msg);
  }
  CHECK(t.size() == size_before);
  CHECK(t.describe() == table_before);
  CHECK(buffers(wrong) == buffers_before);  // running_mean, running_var, num_batches_tracked
  CHECK(bn->num_batches_tracked->operator()() == 1);
  CHECK(t.value(x) == x_value);  // earlier Vars are valid
  CHECK(t.info(x2.index()).op == "mul_scalar");
  REQUIRE(spy->seen.defined());
  expect_error<tg::StateError>([&] { t.value(spy->seen); }, {"tape.truncate()"});

  // The same tape then records the right model; the slots the failed forward used are reused.
  for (auto* p : right.parameters()) p->zero_grad();
  auto y = right(t, x2);
  expect_error<tg::StateError>([&] { t.value(spy->seen); }, {"tape.truncate()"});
  t.backward(weighted_loss(t, y, 21));
  const auto grads_here = grads(right);
  const xt::xarray<double> dx_here = t.grad(x);
  const xt::xarray<double> y_here = t.value(y);
  const auto buffers_after_one = buffers(right);

  // ... and gives what a fresh tape gives, bit for bit (the running statistics aside: they
  // moved by one more batch, from the same state as before the failed call).
  for (auto* p : right.parameters()) p->zero_grad();
  tg::Tape<double> fresh;
  auto fx = fresh.input(x_value, true);
  for (auto& [name, b] : bn->named_buffers()) *b = buffers_before.at("1." + name);
  auto fy = right(fresh, fx * 1.0);
  fresh.backward(weighted_loss(fresh, fy, 21));
  CHECK(fresh.value(fy) == y_here);
  CHECK(fresh.grad(fx) == dx_here);
  CHECK(grads(right) == grads_here);
  CHECK(buffers(right) == buffers_after_one);
}

TEST_CASE("nested Sequentials roll back every level: the inner one's BatchNorm and the outer one's") {
  tg::Generator gen(3);
  auto inner_ok = std::make_shared<tg::Sequential<double>>();
  inner_ok->emplace_back<tg::Linear<double>>(3, 6, tg::LinearOptions(), gen);
  auto& bn_a = inner_ok->emplace_back<tg::BatchNorm1d<double>>(6);
  auto inner_bad = std::make_shared<tg::Sequential<double>>();
  auto& bn_b = inner_bad->emplace_back<tg::BatchNorm1d<double>>(6);
  auto& spy = inner_bad->emplace_back<Spy>();
  inner_bad->emplace_back<tg::Linear<double>>(5, 1, tg::LinearOptions(), gen);  // wants 5, gets 6
  tg::Sequential<double> outer({inner_ok, inner_bad});

  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({4, 3}, 1), true);
  const auto before = buffers(outer);
  REQUIRE(before.size() == 6);  // 0.1.running_mean ... 1.0.num_batches_tracked
  expect_error<tg::ShapeError>([&] { outer(t, x); }, {"Linear", "in_features=5", "(4, 6)"});
  CHECK(t.size() == 1);
  CHECK(buffers(outer) == before);
  CHECK((*bn_a.num_batches_tracked)() == 0);
  CHECK((*bn_b.num_batches_tracked)() == 0);
  expect_error<tg::StateError>([&] { t.value(spy.seen); }, {"tape.truncate()"});

  // The inner Sequential on its own rolls back just its own part.
  auto h = (*inner_ok)(t, x);
  const std::size_t after_ok = t.size();
  const auto before_inner = buffers(*inner_bad);
  CHECK((*bn_a.num_batches_tracked)() == 1);
  expect_error<tg::ShapeError>([&] { (*inner_bad)(t, h); }, {"in_features=5"});
  CHECK(t.size() == after_ok);
  CHECK(buffers(*inner_bad) == before_inner);
  CHECK((*bn_a.num_batches_tracked)() == 1);  // outside the failed Sequential: kept
  CHECK(t.shape(h) == tg::Shape{4, 6});
}

TEST_CASE("a BNRNN followed by a mismatched Linear: its running statistics are restored") {
  tg::Generator gen(5);
  auto rnn = std::make_shared<tg::BNRNN<double>>(3, 4, tg::BNRNNOptions().max_length(3), gen);
  tg::Sequential<double> net({rnn, std::make_shared<tg::Linear<double>>(5, 2, tg::LinearOptions(), gen)});
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({3, 2, 3}, 2), true);  // (T, N, I)
  const auto before = buffers(net);
  expect_error<tg::ShapeError>([&] { net(t, x); }, {"Linear", "(3, 2, 4)"});
  CHECK(t.size() == 1);
  CHECK(buffers(net) == before);
  // (the BNRNN did update them: called alone it changes them)
  tg::Tape<double> u;
  (*rnn)(u, u.input(tgtest::randn({3, 2, 3}, 2)));
  CHECK(buffers(net) != before);
}

TEST_CASE(
    "anomaly mode stopping an LNRNN or a BNRNN part-way inside a Sequential leaves the tape as it was") {
  tg::Generator gen(9);
  tg::Sequential<double> ln_net, bn_net;
  ln_net.emplace_back<tg::LNRNN<double>>(3, 4, tg::LNRNNOptions(), gen);
  bn_net.emplace_back<tg::BNRNN<double>>(3, 4, tg::BNRNNOptions().max_length(4), gen);
  tg::Tape<double> t;
  xt::xarray<double> xv = tgtest::randn({4, 2, 3}, 3);
  // Inf in one input: the input projection's GEMM, after the parameters are bound, stops it.
  xv(2, 1, 0) = std::numeric_limits<double>::infinity();
  auto x = t.input(xv);
  t.set_detect_anomaly(true);
  for (tg::Sequential<double>* net : {&ln_net, &bn_net}) {
    const auto before = buffers(*net);
    const std::string table = t.describe();
    expect_error<tg::NumericalError>([&] { (*net)(t, x); }, {"anomaly"});
    CHECK(t.describe() == table);
    CHECK(buffers(*net) == before);
  }
}

TEST_CASE("a BatchNorm1d called directly validates before it updates its running statistics") {
  tg::BatchNorm1d<double> bn(3);
  tg::Tape<double> t;
  const auto before = buffers(bn);
  auto wrong_channels = t.input(tgtest::randn({4, 2}, 1));
  auto one_row = t.input(tgtest::randn({1, 3}, 2));
  const std::size_t size = t.size();
  expect_error<tg::ShapeError>([&] { bn(t, wrong_channels); }, {"BatchNorm1d", "(4, 2)"});
  expect_error<tg::StateError>([&] { bn(t, one_row); }, {"BatchNorm1d", "(1, 3)"});
  CHECK(t.size() == size);
  CHECK(buffers(bn) == before);
}

TEST_CASE("a Sequential that succeeds keeps what its children recorded and updated") {
  tg::Generator gen(2);
  tg::Sequential<double> net;
  net.emplace_back<tg::Linear<double>>(2, 3, tg::LinearOptions(), gen);
  auto& bn = net.emplace_back<tg::BatchNorm1d<double>>(3);
  tg::Tape<double> t;
  auto y = net(t, t.input(tgtest::randn({4, 2}, 1)));
  CHECK(t.shape(y) == tg::Shape{4, 3});
  CHECK((*bn.num_batches_tracked)() == 1);
  CHECK(xt::amax(xt::abs(*bn.running_mean))() > 0);
}

TEST_CASE("a module called directly leaves the tape as it was when its forward throws after binding") {
  // Anomaly mode stops a Linear's op after its weight and bias are bound as leaves; the call
  // through operator() drops them again.
  tg::Generator gen(4);
  tg::Linear<double> lin(3, 2, tg::LinearOptions(), gen);
  tg::Tape<double> t;
  xt::xarray<double> xv = tgtest::randn({2, 3}, 5);
  xv(1, 2) = std::numeric_limits<double>::infinity();
  auto x = t.input(xv);
  t.set_detect_anomaly(true);
  const std::string table = t.describe();
  expect_error<tg::NumericalError>([&] { lin(t, x); }, {"anomaly"});
  CHECK(t.describe() == table);
  CHECK(t.size() == 1);
  // x is still usable, and a good call records as usual.
  t.set_detect_anomaly(false);
  auto y = lin(t, t.input(tgtest::randn({2, 3}, 6)));
  CHECK(t.shape(y) == tg::Shape{2, 2});
  CHECK(t.shape(x) == tg::Shape{2, 3});
}
