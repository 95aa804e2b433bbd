// The bad-input catalogue for ops, the tape and modules. Recurrent modules, training
// (optimizers, schedulers, clipping, gradcheck), data and files: test_bad_inputs_training.cpp;
// the rest of the public API: test_bad_inputs_api.cpp.
//
// Every case asserts three things: the exception's exact type, that its message names the
// offending shapes / values / keys, and that nothing changed: the tape (size and contents),
// parameter values and grads, buffers. Each case builds everything it uses itself.
#include <typeinfo>

#include "expect_error.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using Catch::Contains;

using tgtest::expect_error;

namespace {

using tgtest::TapeSnapshot;

// A module's parameters, their grads and its buffers, by name.
template <class T>
std::map<std::string, xt::xarray<T>> module_state(tg::Module<T>& m) {
  std::map<std::string, xt::xarray<T>> s = m.state_dict();
  for (auto& [name, p] : m.named_parameters()) s["grad:" + name] = p->grad();
  return s;
}

tg::Tape<double> g_other_tape;  // "a different tape" for the cross-tape cases

}  // namespace

// ---- elementwise, matmul, reductions ----------------------------------------------------------

TEST_CASE("adding (2, 3) and (4) is a ShapeError naming both shapes, and the tape is unchanged") {
  tg::Tape<double> t;
  auto a = t.input(tgtest::randn({2, 3}, 1), true);
  auto b = t.input(tgtest::randn({4}, 2), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>([&] { a + b; }, {"add", "(2, 3)", "(4)"});
  expect_error<tg::ShapeError>([&] { tg::mul(b, a); }, {"mul", "(4)", "(2, 3)"});
  s.check_unchanged();
}

TEST_CASE("matmul of (3, 4) and (5, 2) is a ShapeError naming both shapes, and the tape is unchanged") {
  tg::Tape<double> t;
  auto a = t.input(tgtest::randn({3, 4}, 1), true);
  auto b = t.input(tgtest::randn({5, 2}, 2), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>([&] { tg::matmul(a, b); }, {"matmul", "inner dimensions", "(3, 4)", "(5, 2)"});
  s.check_unchanged();
}

TEST_CASE("reducing a 2-D Var over axis 2 or -3 is a ValueError naming the op, the axis and the rank") {
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({2, 3}, 1), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>([&] { tg::sum(x, {2}); }, {"sum", "axis 2", "2"});
  expect_error<tg::ValueError>([&] { tg::mean(x, {-3}); }, {"mean", "-3"});
  expect_error<tg::ValueError>([&] { tg::max(x, {0, 5}); }, {"max", "5"});
  expect_error<tg::ValueError>([&] { tg::var(x, {7}, true); }, {"var", "7"});
  s.check_unchanged();
}

// ---- normalization modules -------------------------------------------------------------------

TEST_CASE("LayerNorm over (4) given input (2, 5) is a ShapeError naming both, and changes nothing") {
  tg::Tape<double> t;
  tg::LayerNorm<double> ln(tg::Shape{4});
  auto x = t.input(tgtest::randn({2, 5}, 1), true);
  const auto before = module_state(ln);
  TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>([&] { ln(t, x); }, {"LayerNorm", "normalized_shape=(4)", "(2, 5)"});
  // Trailing dims that match in size but not in position are refused too: (3, 4) vs (4, 3).
  tg::LayerNorm<double> ln2({3, 4});
  auto y = t.input(tgtest::randn({2, 4, 3}, 2), true);
  TapeSnapshot<double> s2(t);
  expect_error<tg::ShapeError>([&] { ln2(t, y); }, {"(3, 4)", "(2, 4, 3)"});
  s2.check_unchanged();
  CHECK((module_state(ln) == before));
}

TEST_CASE(
    "BatchNorm1d training on a batch of one is a StateError naming the input size; running stats are untouched") {
  tg::Tape<double> t;
  tg::BatchNorm1d<double> bn(8);
  // Move the statistics off their initial values first, so "untouched" is not trivially true.
  bn(t, t.input(tgtest::randn({4, 8}, 1)));
  t.reset();
  const auto before = module_state(bn);
  auto x = t.input(tgtest::randn({1, 8}, 2), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::StateError>([&] { bn(t, x); }, {"BatchNorm1d", "more than 1 value per channel", "(1, 8)"});
  // (1, C, 1) is one value per channel as well.
  auto x3 = t.input(tgtest::randn({1, 8, 1}, 3), true);
  TapeSnapshot<double> s3(t);
  expect_error<tg::StateError>([&] { bn(t, x3); }, {"(1, 8, 1)"});
  s3.check_unchanged();
  CHECK((module_state(bn) == before));
  CHECK((*bn.num_batches_tracked)() == 1.0);
}

TEST_CASE("BatchNorm1d training on an empty batch is a StateError naming the shape, and changes nothing") {
  tg::Tape<double> t;
  tg::BatchNorm1d<double> bn(3);
  const auto before = module_state(bn);
  auto x = t.input(xt::xarray<double>::from_shape({0, 3}), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::StateError>([&] { bn(t, x); }, {"BatchNorm1d", "(0, 3)"});
  s.check_unchanged();
  CHECK((module_state(bn) == before));
}

TEST_CASE(
    "BatchNorm1d(3) given 4 channels, or a 4-D input, is a ShapeError naming the expected and actual shapes") {
  tg::Tape<double> t;
  tg::BatchNorm1d<double> bn(3);
  const auto before = module_state(bn);
  auto x = t.input(tgtest::randn({5, 4}, 1), true);
  auto x4 = t.input(tgtest::randn({2, 3, 2, 2}, 2), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>([&] { bn(t, x); }, {"BatchNorm1d", "(N, 3)", "(5, 4)"});
  expect_error<tg::ShapeError>([&] { bn(t, x4); }, {"(2, 3, 2, 2)"});
  bn.eval();  // the running-statistics path checks too
  expect_error<tg::ShapeError>([&] { bn(t, x); }, {"(5, 4)"});
  s.check_unchanged();
  bn.train();
  CHECK((module_state(bn) == before));
}

TEST_CASE("Linear(3, 2) given input (5, 4) is a ShapeError naming in_features and the input shape") {
  tg::Tape<double> t;
  tg::Generator gen(7);
  tg::Linear<double> lin(3, 2, {}, gen);
  const auto before = module_state(lin);
  auto x = t.input(tgtest::randn({5, 4}, 1), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>([&] { lin(t, x); }, {"Linear", "in_features=3", "(5, 4)"});
  s.check_unchanged();
  CHECK((module_state(lin) == before));
}

TEST_CASE("a negative or NaN eps for LayerNorm and BatchNorm1d is a ValueError at construction") {
  // Regression: the modules passed eps to the fused ops unchecked, so the error came from the op
  // after forward had already bound weight and bias: two stray nodes on the tape.
  expect_error<tg::ValueError>([] { tg::LayerNorm<double>(tg::Shape{4}, tg::LayerNormOptions().eps(-1e-5)); },
                               {"LayerNorm", "eps", "-0.00001"});
  expect_error<tg::ValueError>([] { tg::BatchNorm1d<double>(4, tg::BatchNormOptions().eps(-1)); },
                               {"BatchNorm1d", "eps", "-1"});
  expect_error<tg::ValueError>([] { tg::BatchNorm1d<float>(4, tg::BatchNormOptions().eps(std::nan(""))); },
                               {"eps", "nan"});
}

// ---- losses ------------------------------------------------------------------------------------

TEST_CASE("cross_entropy with target 3 or -2 for 3 classes is a ValueError naming the index and value") {
  tg::Tape<double> t;
  auto logits = t.input(tgtest::randn({2, 3}, 1), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>(
      [&] {
        tg::cross_entropy(logits, {0, 3});
      },
      {"cross_entropy", "target 3", "index 1", "3 classes"});
  expect_error<tg::ValueError>([&] { tg::cross_entropy(logits, {-2, 1}); }, {"target -2", "index 0"});
  expect_error<tg::ValueError>([&] { tg::nll_loss(logits, {1, 7}); }, {"nll_loss", "target 7"});
  s.check_unchanged();
}

TEST_CASE("cross_entropy with 3 targets for a batch of 2 is a ShapeError naming both lengths") {
  tg::Tape<double> t;
  auto logits = t.input(tgtest::randn({2, 3}, 1), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>(
      [&] {
        tg::cross_entropy(logits, {0, 1, 2});
      },
      {"cross_entropy", "3 targets", "(2, 3)", "expected 2"});
  expect_error<tg::ShapeError>([&] { tg::cross_entropy(logits, {}); }, {"0 targets"});
  s.check_unchanged();
}

TEST_CASE("cross_entropy of an empty batch (0, 3) is a ValueError naming the shape") {
  tg::Tape<double> t;
  auto logits = t.input(xt::xarray<double>::from_shape({0, 3}), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>([&] { tg::cross_entropy(logits, {}); },
                               {"cross_entropy", "empty batch", "(0, 3)"});
  s.check_unchanged();
}

TEST_CASE("mse_loss of (4, 1) against (4) is a ShapeError naming both (stricter than PyTorch)") {
  tg::Tape<double> t;
  auto y = t.input(tgtest::randn({4, 1}, 1), true);
  auto target = t.input(tgtest::randn({4}, 2));
  TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>([&] { tg::mse_loss(y, target); }, {"mse_loss", "(4, 1)", "(4)"});
  s.check_unchanged();
}

// ---- the tape ------------------------------------------------------------------------------------

TEST_CASE("backward twice without retain_graph is a StateError that says so, and keeps the first gradients") {
  tg::Tape<double> t;
  tg::Parameter<double> w(tgtest::randn({3}, 1));
  auto x = t.input(tgtest::randn({3}, 2), true);
  auto loss = tg::sum(tg::tanh(x * t.param(w)));
  t.backward(loss);
  const xt::xarray<double> gx = t.grad(x), gw = w.grad();
  TapeSnapshot<double> s(t);
  expect_error<tg::StateError>([&] { t.backward(loss); }, {"backward", "second time", "retain_graph"});
  s.check_unchanged();
  CHECK(t.grad(x) == gx);
  CHECK((w.grad() == gw));
}

TEST_CASE("backward on a (2, 3) output without an upstream gradient is a ShapeError naming the shape") {
  tg::Tape<double> t;
  tg::Parameter<double> w(tgtest::randn({2, 3}, 1));
  auto y = tg::exp(t.param(w));
  TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>([&] { t.backward(y); }, {"backward", "one-element", "(2, 3)", "upstream"});
  expect_error<tg::ShapeError>(
      [&] {
        t.backward(y, xt::xarray<double>::from_shape({3, 2}));
      },
      {"upstream gradient has shape (3, 2)", "(2, 3)"});
  s.check_unchanged();
  CHECK((w.grad() == xt::zeros<double>({2, 3})));
  t.backward(y, xt::ones<double>({2, 3}));  // the graph was not freed by the failed calls
  CHECK((w.grad() == xt::exp(w.value)));
}

TEST_CASE("a Var from a different tape is a StateError naming the op and the input") {
  tg::Tape<double> t;
  auto a = t.input(tgtest::randn({3}, 1), true);
  auto b = g_other_tape.input(tgtest::randn({3}, 2), true);
  TapeSnapshot<double> s(t);
  TapeSnapshot<double> so(g_other_tape);
  expect_error<tg::StateError>([&] { a + b; }, {"add", "index 0", "different tape"});
  expect_error<tg::StateError>([&] { t.backward(b); }, {"different tape"});
  tg::LayerNorm<double> ln(tg::Shape{3});
  expect_error<tg::StateError>([&] { ln(t, b); }, {"different tape"});
  s.check_unchanged();
  so.check_unchanged();
}

TEST_CASE(
    "a Var recorded before tape.reset() is a StateError naming its index, even when its slot is reused") {
  tg::Tape<double> t;
  auto old = tg::exp(t.input(tgtest::randn({3}, 1), true));
  t.reset();
  auto fresh = t.input(tgtest::randn({3}, 2), true);
  auto fresh2 = tg::exp(fresh);  // now index 1 is live again, but `old` is stale
  TapeSnapshot<double> s(t);
  expect_error<tg::StateError>([&] { old + fresh2; }, {"add", "index 1", "before tape.reset()"});
  expect_error<tg::StateError>([&] { t.value(old); }, {"before tape.reset()"});
  expect_error<tg::StateError>([&] { tg::Var<double>().tape(); }, {"empty", "default-constructed"});
  s.check_unchanged();
}

TEST_CASE("a parameter changed in place after recording makes backward a StateError naming the versions") {
  tg::Tape<double> t;
  tg::Parameter<double> w(tgtest::randn({3}, 1));
  auto loss = tg::sum(tg::exp(t.param(w)));
  w.value(0) += 1;
  w.bump();
  expect_error<tg::StateError>([&] { t.backward(loss); }, {"modified in place", "version 0 -> 1", "(3)"});
  CHECK((w.grad() == xt::zeros<double>({3})));
}

TEST_CASE(
    "anomaly mode: log of a negative number is a NumericalError naming the op and its index; nothing is recorded") {
  tg::Tape<double> t;
  t.set_detect_anomaly(true);
  auto x = t.input(xt::xarray<double>{1.0, -2.0, 3.0}, true);
  auto y = tg::mul_scalar(x, 2.0);
  TapeSnapshot<double> s(t);
  expect_error<tg::NumericalError>([&] { tg::log(y); },
                                   {"anomaly", "forward of 'log'", "tape index 2", "(3)"});
  expect_error<tg::NumericalError>([&] { tg::div(y, tg::mul_scalar(x, 0.0)); }, {"'div'"});
  // mul_scalar(x, 0) was recorded (finite); div was not.
  CHECK(t.size() == s.size + 1);
}

TEST_CASE(
    "anomaly mode: sqrt at 0 makes backward a NumericalError naming the op; parameter grads are untouched") {
  tg::Tape<double> t;
  t.set_detect_anomaly(true);
  tg::Parameter<double> w(xt::xarray<double>{0.0, 4.0});
  tg::Parameter<double> v(xt::xarray<double>{1.0, 2.0});
  w.mutable_grad() = {0.5, 0.5};        // a grad accumulated earlier must survive the failed backward
  auto r = tg::sqrt(t.param(w));        // d sqrt / dw = inf at 0
  auto loss = tg::sum(r * t.param(v));  // v is recorded after sqrt: its leaf is reached first
  TapeSnapshot<double> s(t);
  expect_error<tg::NumericalError>([&] { t.backward(loss); },
                                   {"anomaly", "backward of 'sqrt'", "tape index 1"});
  s.check_unchanged();
  CHECK((w.grad() == xt::xarray<double>{0.5, 0.5}));
  CHECK((v.grad() == xt::zeros<double>({2})));
}

// ---- shape ops ------------------------------------------------------------------------------------

TEST_CASE("reshaping (2, 3) into (4, 2) or (4, -1) is a ShapeError naming both and the element count") {
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({2, 3}, 1), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>(
      [&] {
        tg::reshape(x, {4, 2});
      },
      {"reshape", "(2, 3)", "6 elements", "(4, 2)"});
  expect_error<tg::ShapeError>([&] { tg::reshape(x, {4, -1}); }, {"(2, 3)", "(4, -1)"});
  expect_error<tg::ValueError>([&] { tg::reshape(x, {-1, -1}); }, {"only one dim can be -1"});
  s.check_unchanged();
}

TEST_CASE(
    "select index 3 or -4 of an axis of size 3 is a ValueError naming the index, the axis size and the shape") {
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({2, 3}, 1), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>([&] { tg::select(x, 1, 3); }, {"select", "index 3", "size 3", "(2, 3)"});
  expect_error<tg::ValueError>([&] { tg::select(x, -1, -4); }, {"index -4"});
  expect_error<tg::ValueError>([&] { tg::select(x, 2, 0); }, {"select", "axis 2"});
  expect_error<tg::ValueError>(
      [&] {
        tg::index_select(x, 0, {0, 2});
      },
      {"index_select", "index 2", "position 1"});
  s.check_unchanged();
}

TEST_CASE("slice with step 0 or an axis out of range is a ValueError naming it") {
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({2, 3}, 1), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>([&] { tg::slice(x, 1, 0, 2, 0); }, {"slice", "step", "0", "(2, 3)"});
  expect_error<tg::ValueError>([&] { tg::slice(x, 3, 0, 1); }, {"slice", "axis 3"});
  s.check_unchanged();
}

TEST_CASE(
    "concat of (2, 3) and (2, 4) along axis 0, or of different ranks, is a ShapeError naming the shapes") {
  tg::Tape<double> t;
  auto a = t.input(tgtest::randn({2, 3}, 1), true);
  auto b = t.input(tgtest::randn({2, 4}, 2), true);
  auto c = t.input(tgtest::randn({6}, 3), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ShapeError>(
      [&] {
        tg::concat<double>({a, b}, 0);
      },
      {"concat", "(2, 3)", "input 1", "(2, 4)"});
  expect_error<tg::ShapeError>([&] { tg::concat<double>({a, c}, 0); }, {"concat", "(6)"});
  expect_error<tg::ShapeError>([&] { tg::stack<double>({a, b}); }, {"stack", "(2, 4)"});
  expect_error<tg::ValueError>([&] { tg::concat<double>({}, 0); }, {"concat", "empty list"});
  expect_error<tg::ValueError>(
      [&] {
        tg::split(a, std::vector<std::size_t>{1, 1}, 1);
      },
      {"split", "sum to 2"});
  s.check_unchanged();
}

TEST_CASE("permute with a repeated axis and transpose of a missing axis are ValueErrors naming the dims") {
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({2, 3, 4}, 1), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>(
      [&] {
        tg::permute(x, {0, 1, 1});
      },
      {"permute", "[0, 1, 1]", "not a permutation"});
  expect_error<tg::ValueError>([&] { tg::transpose(x, 0, 3); }, {"transpose", "axis 3"});
  s.check_unchanged();
}

// ---- elementwise ops with bad constants ------------------------------------------------------------

TEST_CASE("clamp with min 2 greater than max 1 is a ValueError naming both bounds") {
  tg::Tape<double> t;
  auto x = t.input(tgtest::randn({4}, 1), true);
  TapeSnapshot<double> s(t);
  expect_error<tg::ValueError>([&] { tg::clamp(x, 2.0, 1.0); }, {"clamp", "min 2", "max 1"});
  s.check_unchanged();
}

TEST_CASE("dropout with p outside [0, 1] or NaN is a ValueError naming p, in the op and the module") {
  tg::Tape<double> t;
  tg::Generator gen(3);
  auto x = t.input(tgtest::randn({4}, 1), true);
  TapeSnapshot<double> s(t);
  const std::uint64_t probe = tg::Generator(gen).below(1000000);
  for (double p : {-0.1, 1.5, std::nan("")}) {
    expect_error<tg::ValueError>([&] { tg::dropout(x, p, true, gen); }, {"dropout", "between 0 and 1"});
    expect_error<tg::ValueError>([&] { tg::Dropout<double> d(p); }, {"Dropout"});
  }
  expect_error<tg::ValueError>([&] { tg::dropout(x, 1.5, true, gen); }, {"1.5"});
  s.check_unchanged();
  CHECK(gen.below(1000000) == probe);  // the generator did not advance
}

// ---- state dicts --------------------------------------------------------------------------------------

namespace {
std::shared_ptr<tg::Sequential<double>> small_model() {
  tg::Generator gen(11);
  auto m = std::make_shared<tg::Sequential<double>>();
  m->emplace_back<tg::Linear<double>>(3, 4, tg::LinearOptions(), gen);
  m->emplace_back<tg::BatchNorm1d<double>>(4);
  return m;
}
}  // namespace

TEST_CASE("load_state_dict with a missing key is a ValueError listing it, and the model is unchanged") {
  auto m = small_model();
  const auto before = module_state(*m);
  auto sd = m->state_dict();
  sd.erase("1.running_var");
  sd.erase("0.bias");
  for (auto& [k, v] : sd) v += 1.0;  // every other entry would change the model
  expect_error<tg::ValueError>(
      [&] { m->load_state_dict(sd); },
      {"load_state_dict", "Sequential", "missing key(s)", "\"0.bias\"", "\"1.running_var\""});
  CHECK((module_state(*m) == before));
}

TEST_CASE("load_state_dict with an unexpected key is a ValueError listing it, and the model is unchanged") {
  auto m = small_model();
  const auto before = module_state(*m);
  auto sd = m->state_dict();
  sd["2.weight"] = xt::ones<double>({4});
  sd["0.weight"] += 1.0;
  expect_error<tg::ValueError>([&] { m->load_state_dict(sd); }, {"unexpected key(s)", "\"2.weight\""});
  CHECK((module_state(*m) == before));
}

TEST_CASE("load_state_dict with a mis-shaped tensor is a ShapeError naming the key and both shapes") {
  auto m = small_model();
  const auto before = module_state(*m);
  auto sd = m->state_dict();
  sd["0.weight"] = xt::ones<double>({3, 4});  // transposed
  sd["1.bias"] += 1.0;
  expect_error<tg::ShapeError>([&] { m->load_state_dict(sd); },
                               {"size mismatch for 0.weight", "shape (3, 4)", "current model is (4, 3)"});
  CHECK((module_state(*m) == before));
}
