// The README's code examples, compiled and run, so the documentation cannot drift from the API.
#include <sstream>

#include "support.hpp"

namespace tg = tapegrad;

TEST_CASE("README: gradients on a tape") {
  tg::Tape<double> t;
  auto x = t.name(t.input(xt::xarray<double>{2.0}, /*requires_grad=*/true), "x");
  auto y = t.name(t.input(xt::xarray<double>{3.0}, true), "y");
  auto z = t.name(x * y + tg::exp(x) / y, "z");
  t.backward(z);
  double dzdx = t.grad(x)(0);
  CHECK(dzdx == Approx(3.0 + std::exp(2.0) / 3.0));
  std::ostringstream out;
  out << t.describe({true, true});
  out << z << '\n';
  // The README shows GCC's order (the right operand of + first); clang records x * y first.
  const bool right_first = t.info(2).op == "exp";
  const std::string head =
      "index  name  op                 shape            parents        requires_grad  value    grad\n"
      "    0  x     input              (1)              -              yes            [2]      [5.463]\n"
      "    1  y     input              (1)              -              yes            [3]      [1.179]\n";
  const std::string gcc =
      "    2        exp                (1)              0              yes            [7.389]  [0.3333]\n"
      "    3        div                (1)              2,1            yes            [2.463]  [1]\n"
      "    4        mul                (1)              0,1            yes            [6]      [1]\n"
      "    5  z     add                (1)              4,3            yes            [8.463]  [1]\n";
  const std::string clang =
      "    2        mul                (1)              0,1            yes            [6]      [1]\n"
      "    3        exp                (1)              0              yes            [7.389]  [0.3333]\n"
      "    4        div                (1)              3,1            yes            [2.463]  [1]\n"
      "    5  z     add                (1)              2,4            yes            [8.463]  [1]\n";
  CHECK(out.str() ==
        head + (right_first ? gcc : clang) + "tensor([8.4630], shape=(1,), dtype=float64, grad_fn=<add>)\n");
#if defined(__GNUC__) && !defined(__clang__)
  CHECK(right_first);  // the README's table is GCC's
#endif
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

TEST_CASE("README: train_epoch with hooks, a OneCycleLR schedule and a checkpoint") {
  tg::Generator gen(0);
  tg::Sequential<float> net;
  net.emplace_back<tg::Linear<float>>(2, 16, tg::LinearOptions(), gen);
  net.emplace_back<tg::Tanh<float>>();
  net.emplace_back<tg::Linear<float>>(16, 2, tg::LinearOptions(), gen);
  tg::Adam<float> opt(net.parameters(), 1e-3);
  const auto data = tg::moons<float>(64, 0.1, 1);
  tg::DataLoader<float> loader(data, 16, true, 2);
  tg::Tape<float> tape;
  const auto dir = tgtest::scratch_dir("readme", "hooks");
  const std::string path = (dir / "run.safetensors").string();

  const tg::LossFn<float> loss_fn = [&](tg::Tape<float>& t, const tg::Batch<float>& b) {
    return tg::cross_entropy(net(t, t.input(b.inputs)), b.labels);
  };
  tg::OneCycleLR<float> sched(opt, /*max_lr=*/0.01, /*total_steps=*/10 * loader.size());
  tg::StepHooks<float> hooks;
  hooks.before_step = [](std::size_t, double, tg::Optimizer<float>& o) {
    tg::clip_grad_norm(o.params(), 1.0);
  };
  hooks.after_step = [&](std::size_t, double, tg::Optimizer<float>&) { sched.step(); };
  for (int epoch = 0; epoch < 10; ++epoch) tg::train_epoch(loader, opt, tape, loss_fn, hooks);
  tg::save_checkpoint(path, net, opt, sched, /*step=*/10 * loader.size());
  tg::Adam<float> opt2(net.parameters(), 0.5);
  tg::OneCycleLR<float> sched2(opt2, 0.3, 7);
  std::int64_t step = tg::load_checkpoint(path, net, opt2, sched2);
  CHECK(step == 40);
  CHECK(sched2.last_epoch() == 40);
  CHECK(opt2.lr() == Approx(sched.lr_at(40)));
  CHECK(sched2.state_dict() == sched.state_dict());
  std::filesystem::remove_all(dir);
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
