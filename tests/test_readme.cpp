// The README's code examples, compiled and run, so the documentation cannot drift from the API.
#include <sstream>

#include "support.hpp"

namespace tg = tapegrad;

TEST_CASE("README: gradients on a tape") {
  tg::Tape<double> t;
  auto x = t.input(xt::xarray<double>{2.0}, /*requires_grad=*/true);
  auto y = t.input(xt::xarray<double>{3.0}, true);
  auto z = x * y + tg::exp(x) / y;
  t.backward(z);
  double dzdx = t.grad(x)(0);
  CHECK(dzdx == Approx(3.0 + std::exp(2.0) / 3.0));
  std::ostringstream out;
  out << t.describe();
  CHECK_THAT(out.str(), Catch::Contains("exp"));
  std::ostringstream printed;
  printed << z << '\n';
  CHECK(printed.str() == "tensor([8.4630], shape=(1,), dtype=float64, grad_fn=<add>)\n");
}

TEST_CASE("README: a model and a training step, as in PyTorch") {
  tg::Generator gen(0);
  tg::Sequential<float> net;
  auto& fc1 = net.emplace_back<tg::Linear<float>>(2, 64, gen);
  net.emplace_back<tg::LayerNorm<float>>(64);
  net.emplace_back<tg::Tanh<float>>();
  net.emplace_back<tg::Linear<float>>(64, 2, gen);
  tg::init::xavier_uniform_(*fc1.weight, tg::init::calculate_gain("tanh"), gen);
  std::ostringstream summary;
  summary << tg::summary(net, {32, 2});
  CHECK_THAT(summary.str(),
             Catch::Contains("├─LayerNorm: 1-2                         [32, 64]                  128\n"));
  CHECK_THAT(summary.str(), Catch::Contains("Total params: 450\n"));
  tg::Adam<float> opt(net.parameters(), 1e-3);

  const auto data = tg::moons<float>(128, 0.1, 1);
  tg::DataLoader<float> loader(data, 16, true, 2);
  tg::Tape<float> tape;
  auto full_loss = [&] {
    tg::NoGradGuard no_grad;
    tape.reset();
    return tg::cross_entropy(net(tape, tape.input(data.inputs())), data.labels()).item();
  };
  const float before = full_loss();
  for (int epoch = 0; epoch < 30; ++epoch) {
    for (auto& batch : loader) {
      tape.reset();
      auto loss = tg::cross_entropy(net(tape, tape.input(batch.inputs)), batch.labels);
      opt.zero_grad();
      tape.backward(loss);
      opt.step();
    }
  }
  CHECK(full_loss() < 0.8f * before);
}

TEST_CASE("README: checking a gradient") {
  auto r = tg::gradcheck(
      [](tg::Tape<double>&, const std::vector<tg::Var<double>>& v) {
        return tg::layer_norm(v[0], tg::Var<double>(), tg::Var<double>(), 1);
      },
      {xt::xarray<double>{{0.5, -1.2, 3.3}, {2.0, -0.7, 1.2}}});
  INFO(r.message);
  CHECK(r.ok);
}
