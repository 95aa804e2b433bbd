// The bad-input catalogue for the public headers that test_bad_inputs_ops.cpp and
// test_bad_inputs_training.cpp cover thinly or not at all. Every op names itself when given a bad
// Var; the tape's generations do not wrap; gradcheck refuses to check nothing; random,
// batch-invariant mode, parameters, activations, reductions, dropout, synthetic data, fit,
// metrics logs, progress bars and module checks refuse bad arguments.
//
// As in the other catalogue files, every case asserts the exact exception type, that the
// message names the offending values, and that nothing changed.
#include <cstring>
#include <functional>
#include <limits>
#include <typeinfo>

#include "expect_error.hpp"
#include "support.hpp"

namespace tapegrad::detail {
// The test hook Tape declares a friend: starts a generation as if `g - 1` resets had happened.
struct TapeTestAccess {
  template <class T>
  static void set_generation(Tape<T>& t, std::uint64_t g) {
    t.generation_ = g;
  }
};
}  // namespace tapegrad::detail

namespace tg = tapegrad;
using tgtest::expect_error;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

using tgtest::TapeSnapshot;

// ---- every op names itself for a bad Var ----------------------------------------------------

using V = tg::Var<double>;
using Vs = std::vector<V>;

// An op under test: the name its errors carry, its inputs' shapes, which inputs may be an
// empty Var (an optional bias, h0), and the call.
struct OpCase {
  std::string name;
  std::vector<tg::Shape> shapes;
  std::vector<bool> optional;
  std::function<void(const Vs&)> call;
};

OpCase unary(const std::string& name, std::function<V(const V&)> f) {
  return {name, {{2, 3}}, {false}, [f](const Vs& v) { f(v[0]); }};
}
OpCase binary(const std::string& name, std::function<V(const V&, const V&)> f) {
  return {name, {{2, 3}, {2, 3}}, {false, false}, [f](const Vs& v) { f(v[0], v[1]); }};
}

// Inputs of `c` on tape t, random values, requiring grad.
Vs make_inputs(tg::Tape<double>& t, const OpCase& c) {
  Vs v;
  for (std::size_t k = 0; k < c.shapes.size(); ++k) {
    v.push_back(t.input(tgtest::uniform(c.shapes[k], 100 + k, 0.5, 1.5), true));
  }
  return v;
}

// For each input k of each op: a Var from before tape.reset() (whose slot now holds another
// node), an empty Var, a Var from another tape. Each is a StateError naming the op and input
// k; the tape is unchanged.
void check_bad_vars_are_named(const std::vector<OpCase>& cases) {
  for (const auto& c : cases) {
    for (std::size_t k = 0; k < c.shapes.size(); ++k) {
      INFO(c.name << ", input " << k);
      const std::string input = "input " + std::to_string(k);
      tg::Tape<double> t;
      const V stale = t.input(tgtest::uniform(c.shapes[k], 7, 0.5, 1.5), true);
      t.reset();
      Vs v = make_inputs(t, c);
      t.input(tgtest::uniform({1}, 8, 0.5, 1.5));  // stale's slot index is live again
      TapeSnapshot<double> s(t);
      Vs bad = v;
      bad[k] = stale;
      expect_error<tg::StateError>([&] { c.call(bad); }, {c.name, input, "before tape.reset()"});
      if (!c.optional[k]) {
        bad[k] = V();
        expect_error<tg::StateError>([&] { c.call(bad); }, {c.name, input, "empty"});
      }
      if (k > 0) {
        tg::Tape<double> other;
        bad[k] = other.input(tgtest::uniform(c.shapes[k], 9, 0.5, 1.5), true);
        expect_error<tg::StateError>([&] { c.call(bad); }, {c.name, input, "different tape"});
      }
      s.check_unchanged();
    }
  }
}

}  // namespace

TEST_CASE(
    "every elementwise, activation, reduction and dropout op names itself and the input for a stale, empty or foreign Var") {
  tg::Generator gen(1);
  std::vector<OpCase> cases = {
      binary("add", [](const V& a, const V& b) { return a + b; }),
      binary("sub", [](const V& a, const V& b) { return a - b; }),
      binary("mul", [](const V& a, const V& b) { return tg::mul(a, b); }),
      binary("div", [](const V& a, const V& b) { return a / b; }),
      unary("add_scalar", [](const V& x) { return x + 1.0; }),
      unary("mul_scalar", [](const V& x) { return x * 2.0; }),
      unary("rsub_scalar", [](const V& x) { return 1.0 - x; }),
      unary("rdiv_scalar", [](const V& x) { return 1.0 / x; }),
      unary("neg", [](const V& x) { return -x; }),
      unary("pow", [](const V& x) { return tg::pow(x, 2.0); }),
      unary("exp", [](const V& x) { return tg::exp(x); }),
      unary("log", [](const V& x) { return tg::log(x); }),
      unary("sqrt", [](const V& x) { return tg::sqrt(x); }),
      unary("abs", [](const V& x) { return tg::abs(x); }),
      unary("clamp", [](const V& x) { return tg::clamp(x, 0.0, 1.0); }),
      unary("clamp", [](const V& x) { return tg::clamp_min(x, 0.0); }),
      unary("clamp", [](const V& x) { return tg::clamp_max(x, 1.0); }),
      unary("relu", [](const V& x) { return tg::relu(x); }),
      unary("leaky_relu", [](const V& x) { return tg::leaky_relu(x); }),
      unary("tanh", [](const V& x) { return tg::tanh(x); }),
      unary("sigmoid", [](const V& x) { return tg::sigmoid(x); }),
      unary("gelu", [](const V& x) { return tg::gelu(x); }),
      unary("gelu_tanh", [](const V& x) { return tg::gelu(x, tg::GeluApprox::Tanh); }),
      unary("elu", [](const V& x) { return tg::elu(x); }),
      unary("softplus", [](const V& x) { return tg::softplus(x); }),
      unary("softmax", [](const V& x) { return tg::softmax(x); }),
      unary("log_softmax", [](const V& x) { return tg::log_softmax(x); }),
      unary("sum", [](const V& x) { return tg::sum(x); }),
      unary("sum", [](const V& x) { return tg::sum(x, {1}); }),
      unary("mean", [](const V& x) { return tg::mean(x); }),
      unary("max", [](const V& x) { return tg::max(x); }),
      unary("min", [](const V& x) { return tg::min(x, {0}); }),
      unary("var", [](const V& x) { return tg::var(x); }),
      unary("dropout", [&gen](const V& x) { return tg::dropout(x, 0.5, true, gen); }),
  };
  check_bad_vars_are_named(cases);
}

TEST_CASE(
    "matmul, linear, the losses, the norm ops and rnn_layer name themselves and the input for a stale, empty or foreign Var") {
  const std::vector<std::int64_t> targets = {0, 2};
  std::vector<OpCase> cases = {
      {"matmul", {{2, 3}, {3, 4}}, {false, false}, [](const Vs& v) { tg::matmul(v[0], v[1]); }},
      {"linear",
       {{2, 3}, {4, 3}, {4}},
       {false, false, true},
       [](const Vs& v) { tg::linear(v[0], v[1], v[2]); }},
      {"cross_entropy", {{2, 3}}, {false}, [&](const Vs& v) { tg::cross_entropy(v[0], targets); }},
      {"nll_loss", {{2, 3}}, {false}, [&](const Vs& v) { tg::nll_loss(v[0], targets); }},
      {"mse_loss", {{2, 3}, {2, 3}}, {false, false}, [](const Vs& v) { tg::mse_loss(v[0], v[1]); }},
      {"binary_cross_entropy_with_logits",
       {{2, 3}, {2, 3}, {3}},
       {false, false, false},
       [](const Vs& v) { tg::binary_cross_entropy_with_logits(v[0], v[1], tg::Reduction::Mean, v[2]); }},
      {"layer_norm",
       {{2, 3}, {3}, {3}},
       {false, true, true},
       [](const Vs& v) { tg::layer_norm(v[0], v[1], v[2], 1); }},
      {"batch_norm",
       {{2, 3}, {3}, {3}},
       {false, true, true},
       [](const Vs& v) { tg::batch_norm(v[0], v[1], v[2]); }},
      {"rnn_layer",
       {{2, 2, 3}, {2, 4}, {4, 3}, {4, 4}, {4}, {4}},
       {false, true, false, false, true, true},
       [](const Vs& v) { tg::rnn_layer(v[0], v[1], v[2], v[3], v[4], v[5]); }},
  };
  check_bad_vars_are_named(cases);
}

// Shape ops read the input's shape before record(): they check it with Tape::of first.
TEST_CASE("shape ops name themselves and the input for a stale, empty or foreign Var") {
  std::vector<OpCase> cases = {
      unary("reshape",
            [](const V& x) {
              return tg::reshape(x, {3, 2});
            }),
      unary("flatten", [](const V& x) { return tg::flatten(x); }),
      unary("squeeze", [](const V& x) { return tg::squeeze(x); }),
      unary("unsqueeze", [](const V& x) { return tg::unsqueeze(x, 0); }),
      unary("transpose", [](const V& x) { return tg::transpose(x, 0, 1); }),
      unary("permute",
            [](const V& x) {
              return tg::permute(x, {1, 0});
            }),
      unary("slice", [](const V& x) { return tg::slice(x, 1, 0, 2); }),
      unary("select", [](const V& x) { return tg::select(x, 0, 1); }),
      unary("index_select",
            [](const V& x) {
              return tg::index_select(x, 1, {0, 2});
            }),
      unary("split", [](const V& x) { return tg::split(x, 1, 0)[0]; }),
      binary("concat",
             [](const V& a, const V& b) {
               return tg::concat(Vs{a, b});
             }),
      binary("stack",
             [](const V& a, const V& b) {
               return tg::stack(Vs{a, b});
             }),
  };
  check_bad_vars_are_named(cases);
}

// ---- the tape's generations --------------------------------------------------------------------

TEST_CASE("a Var kept across 2^32 resets is still stale: generations are 64-bit and do not wrap") {
  tg::Tape<double> t;
  t.reset();
  t.reset();                                                    // generation 3
  const V old = tg::exp(t.input(tgtest::randn({3}, 1), true));  // index 1, generation 3
  // As if 2^32 resets had happened: with 32-bit generations the new one would equal old's.
  tg::detail::TapeTestAccess::set_generation(t, (std::uint64_t{1} << 32) + 2);
  t.reset();
  const V fresh = t.input(tgtest::randn({3}, 2), true);
  const V fresh2 = tg::tanh(fresh);  // slot 1 recorded again
  CHECK(fresh2.index() == old.index());
  TapeSnapshot<double> s(t);
  expect_error<tg::StateError>([&] { t.value(old); }, {"before tape.reset()", "index 1"});
  expect_error<tg::StateError>([&] { old + fresh2; }, {"add", "input 0", "before tape.reset()"});
  CHECK((t.value(fresh2) == xt::tanh(tgtest::randn({3}, 2))));
  s.check_unchanged();
  // Generations near the 32-bit limit work as any other: reset and truncate invalidate.
  tg::detail::TapeTestAccess::set_generation(t, 0xFFFFFFFFull);
  t.reset();
  const V a = t.input(tgtest::randn({3}, 3), true);
  t.reset();  // generation 2^32
  const V b = t.input(tgtest::randn({3}, 4), true);
  CHECK_THROWS_AS(t.value(a), tg::StateError);
  CHECK(t.value(b).size() == 3);
}

// ---- gradcheck -------------------------------------------------------------------------------

TEST_CASE("gradcheck with nothing to check is a ValueError, as in PyTorch, not a pass") {
  int calls = 0;
  auto f = [&](tg::Tape<double>&, const Vs& v) {
    ++calls;
    return v[0] * v[1];
  };
  const std::vector<xt::xarray<double>> inputs = {tgtest::randn({3}, 1), tgtest::randn({3}, 2)};
  tg::GradcheckOptions none;
  none.wrt = {false, false};
  expect_error<tg::ValueError>([&] { tg::gradcheck(f, inputs, none); },
                               {"gradcheck", "nothing to check", "none of the 2 inputs"});
  none.fast_mode = true;
  expect_error<tg::ValueError>([&] { tg::gradcheck(f, inputs, none); }, {"gradcheck", "nothing to check"});
  CHECK(calls == 0);  // refused before evaluating anything
  // As in PyTorch, differentiated inputs or an output with no elements are not "nothing to
  // check": their Jacobian is empty, and the check passes (concat/split pieces of size 0).
  const std::vector<xt::xarray<double>> empty = {xt::zeros<double>({0}), xt::zeros<double>({0})};
  CHECK(tg::gradcheck(f, empty).ok);
  auto empty_out = [](tg::Tape<double>&, const Vs& v) { return tg::slice(v[0], 0, 0, 0); };
  CHECK(tg::gradcheck(empty_out, {tgtest::randn({3}, 1)}).ok);
}

TEST_CASE(
    "gradcheck with a zero, negative or NaN eps, or a negative or NaN tolerance, is a ValueError naming it") {
  auto f = [](tg::Tape<double>&, const Vs& v) { return tg::exp(v[0]); };
  const std::vector<xt::xarray<double>> x = {tgtest::randn({3}, 1)};
  for (double eps : {0.0, -1e-6, kNaN, kInf}) {
    tg::GradcheckOptions o;
    o.eps = eps;
    expect_error<tg::ValueError>([&] { tg::gradcheck(f, x, o); }, {"gradcheck", "eps", std::to_string(eps)});
  }
  tg::GradcheckOptions a;
  a.atol = -1;
  expect_error<tg::ValueError>([&] { tg::gradcheck(f, x, a); }, {"gradcheck", "atol -1"});
  tg::GradcheckOptions r;
  r.rtol = kNaN;
  expect_error<tg::ValueError>([&] { tg::gradcheck(f, x, r); }, {"gradcheck", "rtol nan"});
}

TEST_CASE(
    "taylor_test with a non-positive, infinite or repeated step, or a NaN min_order, is a ValueError naming it") {
  auto f = [](tg::Tape<double>&, const Vs& v) { return tg::exp(v[0]); };
  const std::vector<xt::xarray<double>> x = {tgtest::randn({3}, 1)};
  tg::TaylorOptions o;
  o.steps = {1e-1, 0.0};
  expect_error<tg::ValueError>([&] { tg::taylor_test(f, x, o); }, {"taylor_test", "step 1", "0.0"});
  o.steps = {kInf, 1e-1};
  expect_error<tg::ValueError>([&] { tg::taylor_test(f, x, o); }, {"taylor_test", "step 0", "inf"});
  o.steps = {1e-1, 1e-1};
  expect_error<tg::ValueError>([&] { tg::taylor_test(f, x, o); }, {"taylor_test", "step 1", "0.1"});
  o.steps = {1e-1, 5e-2};
  o.min_order = kNaN;
  expect_error<tg::ValueError>([&] { tg::taylor_test(f, x, o); }, {"taylor_test", "min_order", "nan"});
  o.steps = {1e-1};
  expect_error<tg::ValueError>([&] { tg::taylor_test(f, x, o); }, {"taylor_test", "2 step sizes"});
}

// ---- core/random.hpp -------------------------------------------------------------------------

TEST_CASE(
    "a Generator refuses below(0), a reversed or infinite uniform range and a negative or NaN std; its state is unchanged") {
  tg::Generator g(42);
  tg::Generator same(42);
  expect_error<tg::ValueError>([&] { g.below(0); }, {"below", "n = 0"});
  expect_error<tg::ValueError>([&] { g.uniform(1.0, 0.0); }, {"uniform", "lo 1.0", "hi 0.0"});
  expect_error<tg::ValueError>([&] { g.uniform(0.0, kInf); }, {"uniform", "inf"});
  expect_error<tg::ValueError>([&] { g.uniform(kNaN, 1.0); }, {"uniform", "nan"});
  expect_error<tg::ValueError>([&] { g.normal(0.0, -1.0); }, {"normal", "std -1.0"});
  expect_error<tg::ValueError>([&] { g.normal(kNaN, 1.0); }, {"normal", "mean nan"});
  expect_error<tg::ValueError>([&] { tg::uniform_array<float>({3}, 2.0, -2.0, g); },
                               {"uniform_array", "lo 2.0", "hi -2.0"});
  expect_error<tg::ValueError>([&] { tg::normal_array<double>({3}, 0.0, kInf, g); }, {"normal", "std inf"});
  CHECK(g.uniform() == same.uniform());  // nothing was drawn by the refused calls
  CHECK(g.normal() == same.normal());
  CHECK(g.uniform(2.0, 2.0) == 2.0);  // an empty-width range is fine
}

// ---- core/batch_invariant.hpp ----------------------------------------------------------------

TEST_CASE(
    "in batch-invariant mode a shape mismatch is still a ShapeError naming the shapes; the tape is unchanged") {
  tg::BatchInvariantGuard on;
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({2, 3}, 1));
  auto w = t.input(tgtest::randn({4, 5}, 2));
  auto b = t.input(tgtest::randn({3}, 3));
  const std::size_t nodes = t.size();
  expect_error<tg::ShapeError>([&] { tg::matmul(x, w); }, {"matmul", "(2, 3)", "(4, 5)"});
  expect_error<tg::ShapeError>([&] { tg::linear(x, w); }, {"linear", "(2, 3)", "(4, 5)"});
  auto w_ok = t.input(tgtest::randn({4, 3}, 4));
  expect_error<tg::ShapeError>([&] { tg::linear(x, w_ok, b); }, {"linear", "bias", "(4)", "(3)"});
  CHECK(t.size() == nodes + 1);  // only w_ok was recorded
  CHECK(tg::batch_invariant());
}

// ---- core/parameter.hpp, nn/activation.hpp ----------------------------------------------------

TEST_CASE(
    "a Parameter whose value was replaced by another shape is a StateError when bound, until zero_grad") {
  tg::Parameter<double> p(tgtest::randn({2, 3}, 1));
  p.value = tgtest::randn({4}, 2);
  tg::Tape<double> t;
  TapeSnapshot<double> s(t);
  expect_error<tg::StateError>([&] { t.param(p); },
                               {"param", "value has shape (4)", "grad has shape (2, 3)", "zero_grad"});
  s.check_unchanged();
  p.zero_grad();
  CHECK(t.param(p).shape() == tg::Shape{4});
}

TEST_CASE(
    "activation modules name the op for an input from a reset tape, and softmax modules refuse a missing axis") {
  tg::Tape<double> t;
  const V old = t.input(tgtest::randn({2, 3}, 1));
  t.reset();
  t.input(tgtest::randn({2, 3}, 2));
  TapeSnapshot<double> s(t);
  tg::ReLU<double> relu;
  tg::Tanh<double> tanh;
  expect_error<tg::StateError>([&] { relu(t, old); }, {"relu", "input 0", "before tape.reset()"});
  expect_error<tg::StateError>([&] { tanh(t, old); }, {"tanh", "input 0", "before tape.reset()"});
  const V x = t.input(tgtest::randn({2, 3}, 3));
  TapeSnapshot<double> s2(t);
  expect_error<tg::ValueError>([&] { tg::softmax(x, 2); }, {"softmax", "2"});
  expect_error<tg::ValueError>([&] { tg::log_softmax(x, -3); }, {"log_softmax", "-3"});
  s2.check_unchanged();
}

// ---- ops/reduce.hpp, ops/dropout.hpp ------------------------------------------------------------

TEST_CASE(
    "max and min over an axis of size 0 are ValueErrors naming the axis and the shape; the tape is unchanged") {
  tg::Tape<double> t;
  const V x = t.input(xt::zeros<double>({2, 0}), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>([&] { tg::max(x, {1}); }, {"max", "axis 1", "(2, 0)"});
  expect_error<tg::ValueError>([&] { tg::min(x); }, {"min", "(2, 0)"});
  expect_error<tg::ValueError>([&] { tg::sum(x, {0, 0}); }, {"sum"});
  s.check_unchanged();
}

TEST_CASE("dropout with p outside [0, 1] draws nothing from the generator and records nothing") {
  tg::Tape<double> t;
  const V x = t.input(tgtest::randn({4}, 1));
  tg::Generator g(3), same(3);
  TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>([&] { tg::dropout(x, 1.5, true, g); }, {"dropout", "1.5"});
  expect_error<tg::ValueError>([&] { tg::dropout(x, kNaN, true, g); }, {"dropout", "nan"});
  s.check_unchanged();
  CHECK(g.uniform() == same.uniform());
}

// ---- data/synthetic.hpp -------------------------------------------------------------------------

TEST_CASE(
    "synthetic data sets with no examples or a negative, NaN or infinite noise are ValueErrors naming the argument") {
  expect_error<tg::ValueError>([] { tg::two_spirals<float>(0, 0.1, 1); },
                               {"two_spirals", "n_per_class", "0"});
  expect_error<tg::ValueError>([] { tg::moons<float>(10, -0.1, 1); }, {"moons", "noise", "-0.1"});
  expect_error<tg::ValueError>([] { tg::moons<float>(10, kNaN, 1); }, {"moons", "noise", "nan"});
  expect_error<tg::ValueError>([] { tg::gaussian_blobs<float>(10, 0, 2, 1.0, 1); },
                               {"gaussian_blobs", "centers", "0"});
  expect_error<tg::ValueError>([] { tg::gaussian_blobs<float>(10, 2, 2, kInf, 1); },
                               {"gaussian_blobs", "std", "inf"});
  expect_error<tg::ValueError>([] { tg::adding_problem<float>(10, 0, 1); }, {"adding_problem"});
  expect_error<tg::ValueError>([] { tg::sine_next_step<float>(0, 5, 1); }, {"sine_next_step"});
  expect_error<tg::ValueError>([] { tg::parity<float>(10, 0, 1); }, {"parity"});
}

// ---- train/fit.hpp, train/metrics_log.hpp, train/progress.hpp ---------------------------------

TEST_CASE(
    "argmax_rows of a non-matrix and classification_accuracy of an empty or unlabelled set name the problem") {
  expect_error<tg::ShapeError>(
      [] {
        tg::argmax_rows<float>(xt::zeros<float>({2, 3, 4}));
      },
      {"argmax_rows", "(2, 3, 4)"});
  tg::Sequential<float> net;
  net.emplace_back<tg::Linear<float>>(2, 2);
  const tg::Dataset<float> unlabelled(tgtest::randn<float>({3, 2}, 1));
  expect_error<tg::StateError>([&] { tg::classification_accuracy(net, unlabelled); },
                               {"classification_accuracy", "no labels"});
  const auto before = net.state_dict();
  CHECK((net.state_dict() == before));
}

TEST_CASE(
    "a metrics log refuses an empty row, a repeated or comma-holding column and a changed header; the file keeps its rows") {
  const auto dir = tgtest::scratch_dir("bad_inputs_api", "metrics");
  const std::string path = (dir / "m.csv").string();
  tg::MetricsLog log(path);
  log.write({{"step", 1}, {"loss", 0.5}});
  const std::string before = tgtest::read_bytes(path);
  expect_error<tg::ValueError>([&] { log.write({}); }, {"at least one column"});
  expect_error<tg::ValueError>([&] { log.write({{"step", 2}, {"step", 3}}); }, {"\"step\"", "twice"});
  expect_error<tg::ValueError>([&] { log.write({{"a,b", 2}}); }, {"a,b"});
  expect_error<tg::ValueError>(
      [&] {
        log.write({{"step", 2}, {"acc", 0.9}});
      },
      {"row 2", "step", "acc", "loss"});
  CHECK(tgtest::read_bytes(path) == before);
  CHECK(log.rows() == 1);
  expect_error<tg::IoError>([&] { tg::MetricsLog((dir / "missing" / "m.csv").string()); },
                            {"MetricsLog", "missing"});
  std::filesystem::remove_all(dir);
}

// A finite duration too large for long long must not go through llround (whose result is then
// unspecified; glibc: LLONG_MIN, printing negative hours).
TEST_CASE("format_duration of a huge finite duration is not a negative time") {
  const std::string s = tg::format_duration(1e300);
  INFO(s);
  CHECK(s.find('-') == std::string::npos);
  tg::ProgressInfo p;
  p.epoch = 1;
  p.epochs = 1;
  p.step = 5;
  p.total_steps = 3;  // more steps than announced: the remaining count must not wrap around
  p.elapsed_seconds = 1;
  const std::string line = tg::format_progress(p);
  INFO(line);
  CHECK(line.find("ETA 5") == std::string::npos);
  CHECK(line.find('-') == std::string::npos);
}

// ---- nn/module_check.hpp -------------------------------------------------------------------------

TEST_CASE(
    "gradcheck_module with an input of the wrong shape is the module's ShapeError; its buffers are unchanged") {
  tg::Generator gen(1);
  tg::Sequential<double> net;
  net.emplace_back<tg::Linear<double>>(3, 2, tg::LinearOptions(), gen);
  net.emplace_back<tg::BatchNorm1d<double>>(2);
  const auto before = net.state_dict();
  expect_error<tg::ShapeError>(
      [&] {
        tg::gradcheck_module(net, tgtest::randn({4, 5}, 2));
      },
      {"Linear", "(4, 5)"});
  tg::GradcheckOptions o;
  o.eps = -1;
  expect_error<tg::ValueError>(
      [&] {
        tg::gradcheck_module(net, tgtest::randn({4, 3}, 2), o);
      },
      {"gradcheck", "eps"});
  CHECK((net.state_dict() == before));
}

// ---- class 5: only tapegrad errors escape --------------------------------------------------------

// Both used .at(), so an index out of range escaped as std::out_of_range.
TEST_CASE(
    "Tape::node and Sequential::operator[] out of range are ValueErrors naming the index and the size") {
  tg::Tape<double> t;
  t.input(tgtest::randn({2}, 1));
  expect_error<tg::ValueError>([&] { t.node(5); }, {"5", "1"});
  tg::Sequential<double> net;
  net.emplace_back<tg::Tanh<double>>();
  expect_error<tg::ValueError>([&] { net[3]; }, {"3", "1"});
}
