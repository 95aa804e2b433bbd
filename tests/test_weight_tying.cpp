// Weight tying: one module used at two places of a model. As in PyTorch, parameters() and
// named_parameters() list each parameter once (first occurrence), so an optimizer accepts the
// list; state_dict() keeps both names, and load_state_dict() takes them.
#include "support.hpp"

namespace tg = tapegrad;

namespace {

// Sequential{lin, tanh, lin} with the same Linear(3, 3) at 0 and 2.
struct TiedNet {
  std::shared_ptr<tg::Linear<double>> lin;
  tg::Sequential<double> net;
  explicit TiedNet(std::uint64_t seed) {
    tg::Generator gen(seed);
    lin = std::make_shared<tg::Linear<double>>(3, 3, tg::LinearOptions(), gen);
    net.push_back(lin).push_back(std::make_shared<tg::Tanh<double>>()).push_back(lin);
  }
};

const xt::xarray<double> kX = tgtest::randn({4, 3}, 21);
const xt::xarray<double> kY = tgtest::randn({4, 3}, 22);

// The same computation written by hand with two untied copies (W1, b1) and (W2, b2):
// y = tanh(x W1^T + b1) W2^T + b2, loss = mse(y, target).
struct Untied {
  tg::Parameter<double> w1, b1, w2, b2;
  Untied(const tg::Parameter<double>& w, const tg::Parameter<double>& b)
      : w1(w.value), b1(b.value), w2(w.value), b2(b.value) {}
  double loss_and_grads() {
    for (auto* p : {&w1, &b1, &w2, &b2}) p->zero_grad();
    tg::Tape<double> t;
    auto x = t.input(kX);
    auto h = tg::tanh(tg::add(tg::matmul(x, tg::transpose(t.param(w1), 0, 1)), t.param(b1)));
    auto y = tg::add(tg::matmul(h, tg::transpose(t.param(w2), 0, 1)), t.param(b2));
    auto loss = tg::mse_loss(y, t.input(kY));
    t.backward(loss);
    return loss.item();
  }
};

double tied_loss(TiedNet& m, tg::Tape<double>& t) {
  auto loss = tg::mse_loss(m.net(t, t.input(kX)), t.input(kY));
  t.backward(loss);
  return loss.item();
}

}  // namespace

TEST_CASE("a model that uses one Linear twice lists its parameters once, in first-occurrence order") {
  TiedNet m(1);
  const auto params = m.net.parameters();
  REQUIRE(params.size() == 2);
  CHECK(params[0] == m.lin->weight);
  CHECK(params[1] == m.lin->bias);
  const auto named = m.net.named_parameters();
  REQUIRE(named.size() == 2);
  CHECK(named[0].first == "0.weight");
  CHECK(named[1].first == "0.bias");
  CHECK(m.net.num_parameters() == 12);
  CHECK(m.net.named_children().size() == 2);  // "0" (the Linear) and "1" (Tanh), not "2"
  CHECK(m.net.named_children()[1].first == "1");
}

TEST_CASE("a tied model's state_dict keeps both names, as PyTorch's does, and loads back") {
  TiedNet m(2);
  const auto sd = m.net.state_dict();
  CHECK(sd.size() == 4);
  for (const char* k : {"0.weight", "0.bias", "2.weight", "2.bias"}) CHECK(sd.count(k) == 1);
  CHECK((sd.at("0.weight") == sd.at("2.weight")));

  TiedNet other(3);
  other.net.load_state_dict(sd);
  CHECK((other.lin->weight->value == m.lin->weight->value));
  CHECK((other.lin->bias->value == m.lin->bias->value));
  auto missing = sd;
  missing.erase("2.weight");  // strict: every name is expected
  CHECK_THROWS_AS(other.net.load_state_dict(missing), tg::ValueError);
}

TEST_CASE("a tied model's gradient is the sum over both uses, equal to an untied computation by hand") {
  TiedNet m(4);
  Untied u(*m.lin->weight, *m.lin->bias);
  tg::Tape<double> t;
  m.net.zero_grad();
  const double loss = tied_loss(m, t);
  const double loss_by_hand = u.loss_and_grads();
  CHECK(loss == Approx(loss_by_hand).epsilon(1e-14));
  CHECK(tgtest::max_abs_diff(m.lin->weight->grad(), xt::xarray<double>(u.w1.grad() + u.w2.grad())) < 1e-12);
  CHECK(tgtest::max_abs_diff(m.lin->bias->grad(), xt::xarray<double>(u.b1.grad() + u.b2.grad())) < 1e-12);
  CHECK(tgtest::max_abs_diff(u.w1.grad(), u.w2.grad()) > 1e-6);  // both uses contribute
}

TEST_CASE("SGD over a tied model's parameters trains it end to end like the untied computation") {
  TiedNet m(5);
  Untied u(*m.lin->weight, *m.lin->bias);
  tg::SGD<double> opt(m.net.parameters(), 0.1, tg::SGDOptions{0.9});
  std::vector<double> w_buf(m.lin->weight->size(), 0.0), b_buf(m.lin->bias->size(), 0.0);
  double first = 0, last = 0;
  tg::Tape<double> t;
  for (int step = 0; step < 20; ++step) {
    t.reset();
    opt.zero_grad();
    last = tied_loss(m, t);
    if (step == 0) first = last;
    opt.step();
    // By hand: SGD with momentum on the summed gradient, both copies kept equal.
    u.loss_and_grads();
    const xt::xarray<double> gw = u.w1.grad() + u.w2.grad();
    const xt::xarray<double> gb = u.b1.grad() + u.b2.grad();
    for (std::size_t j = 0; j < gw.size(); ++j) {
      w_buf[j] = step == 0 ? gw.data()[j] : 0.9 * w_buf[j] + gw.data()[j];
      u.w1.value.data()[j] -= 0.1 * w_buf[j];
    }
    for (std::size_t j = 0; j < gb.size(); ++j) {
      b_buf[j] = step == 0 ? gb.data()[j] : 0.9 * b_buf[j] + gb.data()[j];
      u.b1.value.data()[j] -= 0.1 * b_buf[j];
    }
    u.w2.value = u.w1.value;
    u.b2.value = u.b1.value;
  }
  CHECK(last < first);
  CHECK(tgtest::max_abs_diff(m.lin->weight->value, u.w1.value) < 1e-12);
  CHECK(tgtest::max_abs_diff(m.lin->bias->value, u.b1.value) < 1e-12);
}

TEST_CASE("a tied model and its optimizer survive a checkpoint round trip") {
  const auto dir = tgtest::scratch_dir("weight_tying", "roundtrip");
  const std::string path = (dir / "tied.safetensors").string();
  TiedNet m(6);
  tg::Adam<double> opt(m.net.parameters(), 0.01);
  tg::Tape<double> t;
  for (int step = 0; step < 3; ++step) {
    t.reset();
    opt.zero_grad();
    tied_loss(m, t);
    opt.step();
  }
  tg::save_checkpoint(path, m.net, &opt, 3);

  TiedNet restored(7);
  tg::Adam<double> opt2(restored.net.parameters(), 0.5);
  CHECK(tg::load_checkpoint(path, restored.net, &opt2) == 3);
  CHECK((restored.lin->weight->value == m.lin->weight->value));
  CHECK((restored.lin->bias->value == m.lin->bias->value));
  CHECK((opt2.state_dict() == opt.state_dict()));
  // One more step on each gives the same parameters: the state was restored exactly.
  for (auto* mm : {&m, &restored}) {
    t.reset();
    mm->net.zero_grad();
    tied_loss(*mm, t);
  }
  opt.step();
  opt2.step();
  CHECK((restored.lin->weight->value == m.lin->weight->value));
  std::filesystem::remove_all(dir);
}
