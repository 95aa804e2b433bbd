#include <cstdio>
#include <limits>
#include <memory>

#include "expect_error.hpp"
#include "support.hpp"
#include "tapegrad/optim/adam.hpp"
#include "tapegrad/optim/clip.hpp"
#include "tapegrad/optim/rmsprop.hpp"
#include "tapegrad/optim/scheduler.hpp"
#include "tapegrad/optim/sgd.hpp"

namespace tg = tapegrad;
using nlohmann::json;

namespace {
std::unique_ptr<tg::Optimizer<double>> make(const std::string& name, const json& o,
                                            std::vector<tg::Parameter<double>*> ps) {
  const double lr = o.at("lr");
  if (name == "SGD") {
    tg::SGDOptions s;
    s.momentum = o.value("momentum", 0.0);
    s.dampening = o.value("dampening", 0.0);
    s.weight_decay = o.value("weight_decay", 0.0);
    s.nesterov = o.value("nesterov", false);
    s.maximize = o.value("maximize", false);
    return std::make_unique<tg::SGD<double>>(ps, lr, s);
  }
  if (name == "Adam" || name == "AdamW") {
    tg::AdamWOptions a;  // AdamW's defaults; Adam's weight_decay default is 0
    if (name == "Adam") a.weight_decay = 0;
    if (o.contains("betas")) a.beta1 = o["betas"][0], a.beta2 = o["betas"][1];
    a.eps = o.value("eps", a.eps);
    a.weight_decay = o.value("weight_decay", a.weight_decay);
    a.amsgrad = o.value("amsgrad", false);
    a.maximize = o.value("maximize", false);
    if (name == "AdamW") return std::make_unique<tg::AdamW<double>>(ps, lr, a);
    return std::make_unique<tg::Adam<double>>(ps, lr, a);
  }
  tg::RMSpropOptions r;
  r.alpha = o.value("alpha", r.alpha);
  r.weight_decay = o.value("weight_decay", 0.0);
  r.momentum = o.value("momentum", 0.0);
  r.centered = o.value("centered", false);
  r.maximize = o.value("maximize", false);
  return std::make_unique<tg::RMSprop<double>>(ps, lr, r);
}
}  // namespace

TEST_CASE("optimizers match PyTorch's parameters after every step, for every option set") {
  const auto fx = tgtest::load_fixture("optim.json");
  for (const auto& c : fx.at("cases")) {
    const std::string name = c.at("optimizer");
    INFO(name << " " << c.at("options").dump());
    std::vector<tg::Parameter<double>> params;
    for (const auto& p : c.at("params")) params.emplace_back(tgtest::to_array(p));
    std::vector<tg::Parameter<double>*> ps = {&params[0], &params[1]};
    auto opt = make(name, c.at("options"), ps);
    for (std::size_t s = 0; s < c.at("grads").size(); ++s) {
      for (std::size_t i = 0; i < 2; ++i) params[i].mutable_grad() = tgtest::to_array(c["grads"][s][i]);
      opt->step();
      for (std::size_t i = 0; i < 2; ++i) {
        INFO("step " << s + 1 << ", parameter " << i);
        CHECK(tgtest::max_abs_diff(params[i].value, tgtest::to_array(c["after"][s][i])) < 1e-12);
      }
    }
  }
}

TEST_CASE("an optimizer's state_dict restores it exactly: a resumed run matches an uninterrupted one") {
  auto run = [](bool interrupt) {
    tg::Parameter<double> w(tgtest::randn({4}, 1));
    auto opt = std::make_unique<tg::Adam<double>>(std::vector<tg::Parameter<double>*>{&w}, 0.05);
    for (int s = 0; s < 6; ++s) {
      if (interrupt && s == 3) {
        const auto saved = opt->state_dict();
        opt = std::make_unique<tg::Adam<double>>(std::vector<tg::Parameter<double>*>{&w}, 0.05);
        opt->load_state_dict(saved);
      }
      w.mutable_grad() = tgtest::randn({4}, 100 + static_cast<std::uint64_t>(s));
      opt->step();
    }
    return w.value;
  };
  CHECK((run(true) == run(false)));
}

TEST_CASE("optimizer load_state_dict rejects bad keys and shapes without changing its state") {
  tg::Parameter<double> w(tgtest::randn({4}, 1));
  tg::SGD<double> opt({&w}, 0.1, tg::SGDOptions{0.9});
  w.mutable_grad() = tgtest::randn({4}, 2);
  opt.step();
  const auto good = opt.state_dict();
  auto bad = good;
  bad["state.0.momentum_buffer"] = xt::zeros<double>({5});
  CHECK_THROWS_AS(opt.load_state_dict(bad), tg::ShapeError);
  bad = good;
  bad["state.3.momentum_buffer"] = xt::zeros<double>({4});
  CHECK_THROWS_WITH(opt.load_state_dict(bad), Catch::Contains("state.3.momentum_buffer"));
  CHECK((opt.state_dict().at("state.0.momentum_buffer") == good.at("state.0.momentum_buffer")));
}

TEST_CASE("optimizers reject an empty parameter list and invalid hyper-parameters") {
  tg::Parameter<float> w(xt::zeros<float>({2}));
  CHECK_THROWS_WITH(tg::SGD<float>({}, 0.1), Catch::Contains("empty parameter list"));
  CHECK_THROWS_WITH(tg::SGD<float>({&w}, -0.1), Catch::Contains("learning rate") && Catch::Contains("-0.1"));
  CHECK_THROWS_AS(tg::SGD<float>({&w, &w}, 0.1), tg::ValueError);
  tg::SGDOptions nesterov;
  nesterov.nesterov = true;
  CHECK_THROWS_WITH(tg::SGD<float>({&w}, 0.1, nesterov), Catch::Contains("Nesterov"));
  tg::AdamOptions bad_beta;
  bad_beta.beta2 = 1.0;
  CHECK_THROWS_WITH(tg::Adam<float>({&w}, 0.1, bad_beta), Catch::Contains("beta parameter at index 1"));
  tg::SGD<float> ok({&w}, 0.1);
  CHECK_THROWS_AS(ok.set_lr(-1), tg::ValueError);
  CHECK(ok.lr() == Approx(0.1));
}

TEST_CASE("an optimizer step bumps each parameter's version") {
  tg::Parameter<float> w(xt::zeros<float>({2}));
  tg::SGD<float> opt({&w}, 0.1);
  const auto v = w.version;
  opt.step();
  CHECK(w.version == v + 1);
}

TEST_CASE("LR schedulers follow PyTorch's StepLR, CosineAnnealingLR and LinearLR") {
  const auto fx = tgtest::load_fixture("optim.json").at("schedulers");
  tg::Parameter<double> w(xt::zeros<double>({1}));
  auto check = [&](const json& expected, auto make) {
    tg::SGD<double> opt({&w}, 0.5);
    auto sched = make(opt);
    CHECK(opt.lr() == Approx(expected[0].get<double>()).epsilon(1e-12));
    for (std::size_t e = 1; e < expected.size(); ++e) {
      sched.step();
      INFO("epoch " << e);
      CHECK(opt.lr() == Approx(expected[e].get<double>()).epsilon(1e-10));
    }
  };
  check(fx.at("step"), [](auto& o) { return tg::StepLR<double>(o, 3, 0.5); });
  check(fx.at("cosine"), [](auto& o) { return tg::CosineAnnealingLR<double>(o, 10, 0.01); });
  check(fx.at("linear"), [](auto& o) { return tg::LinearLR<double>(o, 0.1, 1.0, 4); });
}

TEST_CASE("clip_grad_norm matches PyTorch's total norm and clipped grads") {
  const auto fixture = tgtest::load_fixture("optim.json");  // keep it alive: the loop reads into it
  for (const auto& c : fixture.at("clip")) {
    std::vector<tg::Parameter<double>> ps;
    for (const auto& g : c.at("grads")) {
      ps.emplace_back(xt::zeros<double>(tgtest::to_array(g).shape()));
      ps.back().mutable_grad() = tgtest::to_array(g);
    }
    const double norm_type = c.at("norm_type").is_string() ? std::numeric_limits<double>::infinity()
                                                           : c.at("norm_type").get<double>();
    const double total = tg::clip_grad_norm<double>({&ps[0], &ps[1]}, c.at("max_norm"), norm_type);
    CHECK(total == Approx(c.at("total").get<double>()).epsilon(1e-12));
    for (std::size_t i = 0; i < 2; ++i) {
      CHECK(tgtest::max_abs_diff(ps[i].grad(), tgtest::to_array(c["clipped"][i])) < 1e-12);
    }
  }
}

TEST_CASE("clip_grad_norm with a non-finite norm throws only when asked to") {
  tg::Parameter<float> w(xt::zeros<float>({2}));
  w.mutable_grad() = xt::xarray<float>({1.0f, std::numeric_limits<float>::infinity()});
  CHECK_THROWS_WITH(tg::clip_grad_norm<float>({&w}, 1.0, 2.0, true), Catch::Contains("non-finite"));
  CHECK(w.grad()(0) == 1.0f);  // unchanged by the failed call
  CHECK(std::isinf(tg::clip_grad_norm<float>({&w}, 1.0, 2.0, false)));
}

TEST_CASE("AdamW built from options gets AdamW's weight_decay default 1e-2, as torch.optim.AdamW") {
  // With a zero gradient Adam's step is 0, so one step is the decoupled decay alone:
  // p *= 1 - lr * weight_decay.
  using Params = std::vector<tg::Parameter<double>*>;
  auto after_step = [](auto make) {
    tg::Parameter<double> p(xt::xarray<double>{1.0, -2.0});
    auto opt = make(Params{&p});
    opt.zero_grad();
    opt.step();
    return std::vector<double>(p.value.begin(), p.value.end());
  };
  const double d = 1 - 0.1 * 1e-2;
  const std::vector<double> decayed = {d, -2.0 * d}, kept = {1.0, -2.0};
  CHECK(tg::AdamWOptions().weight_decay == 1e-2);
  CHECK(tg::AdamOptions().weight_decay == 0);
  CHECK(after_step([](Params ps) { return tg::AdamW<double>(ps, 0.1); }) == decayed);
  CHECK(after_step([](Params ps) { return tg::AdamW<double>(ps, 0.1, {}); }) == decayed);
  CHECK(after_step([](Params ps) { return tg::AdamW<double>(ps, 0.1, tg::AdamWOptions()); }) == decayed);
  auto amsgrad = [](Params ps) {
    tg::AdamWOptions o;
    o.amsgrad = true;  // setting another field keeps the default decay
    return tg::AdamW<double>(ps, 0.1, o);
  };
  CHECK(after_step(amsgrad) == decayed);
  auto no_decay = [](Params ps) {
    tg::AdamWOptions o;
    o.weight_decay = 0;
    return tg::AdamW<double>(ps, 0.1, o);
  };
  CHECK(after_step(no_decay) == kept);
  // Code written for the old signature still compiles (with a deprecation warning) and keeps
  // the weight_decay it gives.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  auto old_options = [](Params ps) {
    tg::AdamOptions o;
    o.weight_decay = 0.05;
    return tg::AdamW<double>(ps, 0.1, o);
  };
#pragma GCC diagnostic pop
  const double d2 = 1 - 0.1 * 0.05;
  CHECK(after_step(old_options) == std::vector<double>{d2, -2.0 * d2});
}

TEST_CASE("maximize matches PyTorch 1.13 for SGD, Adam, AdamW and RMSprop, and ascends") {
  const auto fx = tgtest::load_fixture("optim.json");
  double worst = 0;
  int cases = 0;
  for (const auto& c : fx.at("cases")) {
    if (!c.at("options").value("maximize", false)) continue;
    ++cases;
    std::vector<tg::Parameter<double>> ps;
    for (const auto& p : c.at("params")) ps.emplace_back(tgtest::to_array(p));
    auto opt = make(c.at("optimizer"), c.at("options"), {&ps[0], &ps[1]});
    CHECK(opt->hyperparameters().at("maximize") == 1.0);
    for (std::size_t s = 0; s < c.at("grads").size(); ++s) {
      for (std::size_t k = 0; k < ps.size(); ++k)
        ps[k].mutable_grad() = tgtest::to_array(c.at("grads")[s][k]);
      opt->step();
      for (std::size_t k = 0; k < ps.size(); ++k) {
        worst = std::max(worst, tgtest::max_abs_diff(ps[k].value, tgtest::to_array(c.at("after")[s][k])));
      }
    }
  }
  std::printf("maximize vs PyTorch 1.13 (%d cases, 6 steps): max |param diff| %.3g\n", cases, worst);
  CHECK(cases == 5);
  CHECK(worst < 1e-12);
  // SGD ascends f(w) = w: w grows by lr per step.
  tg::Parameter<double> w(xt::xarray<double>({1.0}));
  tg::SGDOptions up;
  up.maximize = true;
  tg::SGD<double> sgd({&w}, 0.5, up);
  w.mutable_grad() = xt::xarray<double>({1.0});
  sgd.step();
  CHECK(w.value(0) == 1.5);
}

TEST_CASE(
    "an optimizer's hyperparameters are named as PyTorch's, saved in its state_dict and restored on load") {
  tg::Parameter<double> w(tgtest::randn({3}, 1));
  tg::AdamOptions o;
  o.beta1 = 0.8;
  o.amsgrad = true;
  tg::Adam<double> adam({&w}, 0.02, o);
  const tg::Hyperparameters h = adam.hyperparameters();
  CHECK(h == tg::Hyperparameters{{"lr", 0.02},
                                 {"beta1", 0.8},
                                 {"beta2", 0.999},
                                 {"eps", 1e-8},
                                 {"weight_decay", 0.0},
                                 {"amsgrad", 1.0},
                                 {"maximize", 0.0}});
  const auto sd = adam.state_dict();
  CHECK(sd.at("group.beta1")() == 0.8);
  CHECK(sd.at("group.amsgrad")() == 1.0);
  // An Adam built with other hyperparameters takes the saved ones (torch's load_state_dict
  // restores param_groups), and then steps exactly as the original.
  tg::Parameter<double> w2(w.value);
  tg::Adam<double> other({&w2}, 0.5);
  other.load_state_dict(sd);
  CHECK(other.hyperparameters() == h);
  w.mutable_grad() = tgtest::randn({3}, 2);
  w2.mutable_grad() = w.grad();
  adam.step();
  other.step();
  CHECK((w.value == w2.value));
  // A state from before hyperparameters were saved (no "group.*") keeps the built ones.
  auto old = sd;
  for (const char* k :
       {"group.beta1", "group.beta2", "group.eps", "group.weight_decay", "group.amsgrad", "group.maximize"}) {
    old.erase(k);
  }
  tg::Adam<double> third({&w2}, 0.5);
  third.load_state_dict(old);
  CHECK(third.hyperparameters().at("beta1") == 0.9);
  CHECK(third.lr() == 0.02);
  // set_hyperparameters: some of them, all or nothing.
  tg::SGD<double> sgd({&w}, 0.1);
  sgd.set_hyperparameters({{"momentum", 0.9}, {"nesterov", 1}, {"lr", 0.3}});
  CHECK(sgd.hyperparameters().at("nesterov") == 1.0);
  CHECK(sgd.lr() == 0.3);
}

TEST_CASE("opt.state(param) shows a parameter's named buffers, as PyTorch's opt.state[p]") {
  tg::Parameter<double> a(tgtest::randn({2, 3}, 1)), b(tgtest::randn({4}, 2));
  tg::Adam<double> adam({&a, &b}, 0.01);
  CHECK(adam.state(a).empty());  // before the first step, as PyTorch's empty dict
  a.mutable_grad() = tgtest::randn({2, 3}, 3);
  b.mutable_grad() = tgtest::randn({4}, 4);
  adam.step();
  adam.step();
  const auto& st = adam.state(a);
  CHECK(st.size() == 3);
  CHECK(st.at("step")() == 2.0);
  CHECK(st.at("exp_avg").shape() == a.value.shape());
  CHECK((st.at("exp_avg_sq") == adam.state_dict().at("state.0.exp_avg_sq")));
  CHECK(adam.index_of(b) == 1);
  tg::Parameter<double> c(tgtest::randn({4}, 5));
  tg::SGD<double> sgd({&c}, 0.1, tg::SGDOptions{0.9});
  c.mutable_grad() = tgtest::randn({4}, 6);
  sgd.step();
  CHECK((sgd.state(c).at("momentum_buffer") == c.grad()));
}

TEST_CASE(
    "opt.state of a foreign parameter, an unknown hyperparameter or a bad value is a ValueError naming it; nothing changes") {
  tg::Parameter<double> a(tgtest::randn({2, 3}, 1)), stranger(tgtest::randn({5}, 2));
  tg::SGD<double> sgd({&a}, 0.1, tg::SGDOptions{0.9});
  tgtest::expect_error<tg::ValueError>([&] { sgd.state(stranger); },
                                       {"SGD", "shape (5)", "not one of the optimizer's 1 parameters"});
  const auto before = sgd.hyperparameters();
  tgtest::expect_error<tg::ValueError>(
      [&] {
        sgd.set_hyperparameters({{"lr", 0.5}, {"betas", 0.9}});
      },
      {"unknown hyperparameter \"betas\"", "momentum"});
  tgtest::expect_error<tg::ValueError>(
      [&] {
        sgd.set_hyperparameters({{"lr", 0.5}, {"nesterov", 2}});
      },
      {"nesterov", "0 or 1", "2.0"});
  tgtest::expect_error<tg::ValueError>(
      [&] {
        sgd.set_hyperparameters({{"lr", 0.5}, {"momentum", -1}});
      },
      {"momentum", "-1"});
  tgtest::expect_error<tg::ValueError>(
      [&] {
        sgd.set_hyperparameters({{"lr", -0.5}, {"momentum", 0.5}});
      },
      {"learning rate", "-0.5"});
  tg::Adam<double> adam({&a}, 0.01);
  tgtest::expect_error<tg::ValueError>(
      [&] {
        adam.set_hyperparameters({{"beta2", 1.0}});
      },
      {"beta parameter at index 1", "1.0"});
  CHECK(sgd.hyperparameters() == before);
  CHECK(adam.hyperparameters().at("beta2") == 0.999);
  // A saved state whose hyperparameter is refused changes nothing either.
  a.mutable_grad() = tgtest::randn({2, 3}, 3);
  sgd.step();
  const auto good = sgd.state_dict();
  auto bad = good;
  bad["group.dampening"] = xt::xarray<double>(1.5);
  bad["lr"] = xt::xarray<double>(0.7);
  tgtest::expect_error<tg::ValueError>([&] { sgd.load_state_dict(bad); }, {"dampening", "1.5"});
  bad = good;
  bad["group.momentum"] = xt::xarray<double>({0.1, 0.2});
  tgtest::expect_error<tg::ShapeError>([&] { sgd.load_state_dict(bad); },
                                       {"group.momentum", "one number", "(2)"});
  CHECK(sgd.state_dict() == good);
}
