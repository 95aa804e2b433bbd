#include <limits>
#include <memory>

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
    return std::make_unique<tg::SGD<double>>(ps, lr, s);
  }
  if (name == "Adam" || name == "AdamW") {
    tg::AdamWOptions a;  // AdamW's defaults; Adam's weight_decay default is 0
    if (name == "Adam") a.weight_decay = 0;
    if (o.contains("betas")) a.beta1 = o["betas"][0], a.beta2 = o["betas"][1];
    a.eps = o.value("eps", a.eps);
    a.weight_decay = o.value("weight_decay", a.weight_decay);
    a.amsgrad = o.value("amsgrad", false);
    if (name == "AdamW") return std::make_unique<tg::AdamW<double>>(ps, lr, a);
    return std::make_unique<tg::Adam<double>>(ps, lr, a);
  }
  tg::RMSpropOptions r;
  r.alpha = o.value("alpha", r.alpha);
  r.weight_decay = o.value("weight_decay", 0.0);
  r.momentum = o.value("momentum", 0.0);
  r.centered = o.value("centered", false);
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
