// OneCycleLR and ReduceLROnPlateau against PyTorch 1.13 (tests/fixtures/schedulers.json, made by
// gen_schedulers.py), every scheduler's state_dict / load_state_dict, a schedule resumed from a
// checkpoint that continues exactly, and their bad inputs.
#include <cstdio>
#include <limits>
#include <memory>

#include "expect_error.hpp"
#include "support.hpp"

namespace tg = tapegrad;
using nlohmann::json;
using tgtest::expect_error;

namespace {

struct OneParam {
  tg::Parameter<double> w{xt::xarray<double>({1.0, -2.0})};
  std::vector<tg::Parameter<double>*> list() { return {&w}; }
};

// The fixture's optimizers: SGD with momentum 0.9, Adam, RMSprop with momentum 0.5 (lr 0.123).
std::unique_ptr<tg::Optimizer<double>> make_optimizer(const std::string& name, OneParam& p) {
  if (name == "SGD") return std::make_unique<tg::SGD<double>>(p.list(), 0.123, tg::SGDOptions{0.9});
  if (name == "Adam") return std::make_unique<tg::Adam<double>>(p.list(), 0.123);
  tg::RMSpropOptions o;
  o.momentum = 0.5;
  return std::make_unique<tg::RMSprop<double>>(p.list(), 0.123, o);
}

tg::OneCycleOptions one_cycle_options(const json& a) {
  tg::OneCycleOptions o;
  o.total_steps = a.value("total_steps", std::int64_t{0});
  o.epochs = a.value("epochs", std::int64_t{0});
  o.steps_per_epoch = a.value("steps_per_epoch", std::int64_t{0});
  o.pct_start = a.value("pct_start", o.pct_start);
  o.anneal_strategy = a.value("anneal_strategy", std::string("cos")) == "cos" ? tg::AnnealStrategy::cos
                                                                              : tg::AnnealStrategy::linear;
  o.cycle_momentum = a.value("cycle_momentum", true);
  o.base_momentum = a.value("base_momentum", o.base_momentum);
  o.max_momentum = a.value("max_momentum", o.max_momentum);
  o.div_factor = a.value("div_factor", o.div_factor);
  o.final_div_factor = a.value("final_div_factor", o.final_div_factor);
  o.three_phase = a.value("three_phase", false);
  return o;
}

double momentum_of(const tg::Optimizer<double>& opt) {
  const auto h = opt.hyperparameters();
  return h.count("beta1") ? h.at("beta1") : h.at("momentum");
}

tg::PlateauOptions plateau_options(const json& a) {
  tg::PlateauOptions o;
  o.mode = a.value("mode", std::string("min")) == "min" ? tg::PlateauMode::min : tg::PlateauMode::max;
  o.factor = a.value("factor", o.factor);
  o.patience = a.value("patience", o.patience);
  o.threshold = a.value("threshold", o.threshold);
  o.threshold_mode = a.value("threshold_mode", std::string("rel")) == "rel" ? tg::ThresholdMode::rel
                                                                            : tg::ThresholdMode::abs;
  o.cooldown = a.value("cooldown", o.cooldown);
  o.min_lr = a.value("min_lr", o.min_lr);
  o.eps = a.value("eps", o.eps);
  return o;
}

}  // namespace

TEST_CASE("OneCycleLR's lr and momentum (beta1 for Adam) match PyTorch 1.13 at every step") {
  const auto fx = tgtest::load_fixture("schedulers.json");
  double lr_diff = 0, momentum_diff = 0;
  int clamped = 0;
  for (const auto& c : fx.at("one_cycle")) {
    INFO(c.at("optimizer").get<std::string>() << " " << c.at("args").dump());
    OneParam p;
    auto opt = make_optimizer(c.at("optimizer"), p);
    const double momentum_before = momentum_of(*opt);
    tg::OneCycleLR<double> sched(*opt, c.at("args").at("max_lr").get<double>(),
                                 one_cycle_options(c.at("args")));
    const auto& lrs = c.at("lrs");
    const auto& moms = c.at("momenta");
    CHECK(sched.total_steps() == c.at("total_steps").get<std::int64_t>());
    for (std::size_t k = 0; k < lrs.size(); ++k) {
      if (k > 0) sched.step();
      // PyTorch's negative lr at step total_steps of a linear anneal is 0 here (one_cycle.hpp).
      const double want = std::max(lrs[k].get<double>(), 0.0);
      clamped += want != lrs[k].get<double>();
      lr_diff = std::max(lr_diff, std::abs(opt->lr() - want));
      momentum_diff = std::max(momentum_diff, std::abs(momentum_of(*opt) - moms[k].get<double>()));
      CHECK(opt->lr() == Approx(want).epsilon(1e-14));
    }
    if (!c.at("args").value("cycle_momentum", true)) CHECK(momentum_of(*opt) == momentum_before);
    const double lr = opt->lr();
    expect_error<tg::ValueError>([&] { sched.step(); }, {c.at("past_end_error").get<std::string>()});
    CHECK(opt->lr() == lr);
    CHECK(sched.last_epoch() == c.at("total_steps").get<std::int64_t>());
  }
  std::printf(
      "OneCycleLR vs PyTorch 1.13: max |lr diff| %.3g, max |momentum diff| %.3g (%d negative lrs as 0)\n",
      lr_diff, momentum_diff, clamped);
  CHECK(clamped == 2);  // the two linear cases' last step
  CHECK(lr_diff <= 1e-16);
  CHECK(momentum_diff <= 1e-15);
}

TEST_CASE("ReduceLROnPlateau's lr sequence and final state match PyTorch 1.13") {
  const auto fx = tgtest::load_fixture("schedulers.json");
  double diff = 0;
  for (const auto& c : fx.at("plateau")) {
    INFO(c.at("args").dump());
    OneParam p;
    tg::SGD<double> opt(p.list(), 0.1, tg::SGDOptions{0.9});
    tg::ReduceLROnPlateau<double> sched(opt, plateau_options(c.at("args")));
    const auto& metrics = c.at("metrics");
    for (std::size_t k = 0; k < metrics.size(); ++k) {
      sched.step(metrics[k].get<double>());
      diff = std::max(diff, std::abs(opt.lr() - c.at("lrs")[k].get<double>()));
    }
    const auto& fin = c.at("final");
    CHECK(sched.best() == fin.at("best").get<double>());
    CHECK(sched.num_bad_epochs() == fin.at("num_bad_epochs").get<std::int64_t>());
    CHECK(sched.cooldown_counter() == fin.at("cooldown_counter").get<std::int64_t>());
    CHECK(sched.last_epoch() == fin.at("last_epoch").get<std::int64_t>());
  }
  std::printf("ReduceLROnPlateau vs PyTorch 1.13: max |lr diff| %.3g\n", diff);
  CHECK(diff == 0);
}

TEST_CASE("ReduceLROnPlateau never counts a NaN metric as better, and reads the optimizer's current lr") {
  OneParam p;
  tg::SGD<double> opt(p.list(), 0.1);
  tg::PlateauOptions o;
  o.patience = 1;
  tg::ReduceLROnPlateau<double> sched(opt, o);
  sched.step(1.0);
  sched.step(std::numeric_limits<double>::quiet_NaN());
  CHECK(sched.num_bad_epochs() == 1);
  CHECK(sched.best() == 1.0);
  opt.set_lr(0.5);  // another schedule changed it
  sched.step(std::numeric_limits<double>::quiet_NaN());
  CHECK(opt.lr() == Approx(0.05));
}

TEST_CASE("every scheduler's state_dict uses PyTorch's keys and load_state_dict restores it exactly") {
  OneParam p;
  tg::SGD<double> opt(p.list(), 0.1, tg::SGDOptions{0.9});
  tg::CosineAnnealingLR<double> cosine(opt, 10, 0.001);
  for (int i = 0; i < 3; ++i) cosine.step();
  auto s = cosine.state_dict();
  CHECK(s ==
        tg::SchedulerState{
            {"T_max", "10"}, {"eta_min", "0.001"}, {"base_lrs", "0.10000000000000001"}, {"last_epoch", "3"}});
  tg::SGD<double> opt2(p.list(), 0.7);
  tg::CosineAnnealingLR<double> fresh(opt2, 99);
  fresh.load_state_dict(s);
  CHECK(fresh.state_dict() == s);
  CHECK(fresh.last_epoch() == 3);
  CHECK(fresh.lr_at(4) == cosine.lr_at(4));

  tg::StepLR<double> step_lr(opt, 3, 0.5);
  CHECK(step_lr.state_dict().count("step_size"));
  CHECK(step_lr.state_dict().at("gamma") == "0.5");
  tg::LinearLR<double> linear(opt, 0.25, 1.0, 4);
  CHECK(linear.state_dict().at("start_factor") == "0.25");
  CHECK(linear.state_dict().at("total_iters") == "4");

  tg::OneCycleLR<double> one(opt, 0.1, 20);
  for (int i = 0; i < 5; ++i) one.step();
  tg::OneCycleLR<double> one2(opt2, 0.3, 7);
  one2.load_state_dict(one.state_dict());
  CHECK(one2.state_dict() == one.state_dict());
  CHECK(one2.state_dict().at("anneal_strategy") == "cos");
  for (std::int64_t e = 0; e <= 20; ++e) CHECK(one2.lr_at(e) == one.lr_at(e));

  tg::ReduceLROnPlateau<double> plateau(opt);
  CHECK(plateau.state_dict().at("best") == "inf");
  plateau.step(0.5);
  plateau.step(0.7);
  tg::PlateauOptions mx;
  mx.mode = tg::PlateauMode::max;
  tg::ReduceLROnPlateau<double> plateau2(opt2, mx);
  plateau2.load_state_dict(plateau.state_dict());
  CHECK(plateau2.state_dict() == plateau.state_dict());
  CHECK(plateau2.options().mode == tg::PlateauMode::min);
  CHECK(plateau2.num_bad_epochs() == 1);
}

namespace {

// A small net trained `steps` steps with Adam and a per-step scheduler made by make_sched;
// when `resume_at` is in range the run is saved to a checkpoint there and everything (model,
// optimizer, scheduler) is rebuilt from scratch with other settings and loaded from it.
// Returns the lr seen at every step and the final weights.
template <class MakeSched>
std::pair<std::vector<double>, tg::StateDict<float>> run(int steps, int resume_at, MakeSched make_sched) {
  const auto dir = tgtest::scratch_dir("lr_schedulers", "resume");
  const std::string path = (dir / "ck.safetensors").string();
  tg::Generator gen(7);
  auto net = std::make_shared<tg::Sequential<float>>();
  net->emplace_back<tg::Linear<float>>(3, 4, tg::LinearOptions(), gen);
  net->emplace_back<tg::Tanh<float>>();
  net->emplace_back<tg::Linear<float>>(4, 2, tg::LinearOptions(), gen);
  auto opt = std::make_unique<tg::Adam<float>>(net->parameters(), 0.05);
  auto sched = make_sched(*opt);
  std::vector<double> lrs;
  for (int s = 0; s < steps; ++s) {
    if (s == resume_at) {
      tg::save_checkpoint(path, *net, *opt, *sched, s);
      tg::Generator other(99);
      auto fresh = std::make_shared<tg::Sequential<float>>();
      fresh->emplace_back<tg::Linear<float>>(3, 4, tg::LinearOptions(), other);
      fresh->emplace_back<tg::Tanh<float>>();
      fresh->emplace_back<tg::Linear<float>>(4, 2, tg::LinearOptions(), other);
      tg::AdamOptions different;
      different.beta2 = 0.5;
      auto fresh_opt = std::make_unique<tg::Adam<float>>(fresh->parameters(), 0.9, different);
      auto fresh_sched = make_sched(*fresh_opt);
      CHECK(tg::load_checkpoint(path, *fresh, *fresh_opt, *fresh_sched) == s);
      net = fresh;
      sched = std::move(fresh_sched);  // before the optimizer it points at is replaced
      opt = std::move(fresh_opt);
    }
    tgtest::train_steps(*net, *opt, 1, 1000 + static_cast<std::uint64_t>(s));
    lrs.push_back(opt->lr());
    sched->step();
  }
  std::filesystem::remove_all(dir);
  return {lrs, net->state_dict()};
}

}  // namespace

TEST_CASE(
    "a schedule resumed from a checkpoint continues exactly: same lrs and weights as an uninterrupted run") {
  const auto cosine = [](tg::Optimizer<float>& o) {
    return std::make_unique<tg::CosineAnnealingLR<float>>(o, 12);
  };
  const auto one_cycle = [](tg::Optimizer<float>& o) {
    return std::make_unique<tg::OneCycleLR<float>>(o, 0.1, 12);
  };
  const auto straight = run(12, -1, cosine);
  const auto resumed = run(12, 5, cosine);
  CHECK(straight.first == resumed.first);
  tgtest::check_bitwise_same(straight.second, resumed.second);
  CHECK(straight.first[5] != straight.first[4]);  // the schedule does move
  const auto straight1 = run(12, -1, one_cycle);
  const auto resumed1 = run(12, 7, one_cycle);
  CHECK(straight1.first == resumed1.first);
  tgtest::check_bitwise_same(straight1.second, resumed1.second);
}

TEST_CASE(
    "a checkpoint with a scheduler refuses another scheduler type or a missing one, and changes nothing") {
  const auto dir = tgtest::scratch_dir("lr_schedulers", "types");
  const std::string path = (dir / "ck.safetensors").string(), plain = (dir / "plain.safetensors").string();
  tg::Generator gen(3);
  tg::Sequential<float> net;
  net.emplace_back<tg::Linear<float>>(2, 2, tg::LinearOptions(), gen);
  tg::SGD<float> opt(net.parameters(), 0.1, tg::SGDOptions{0.9});
  tg::StepLR<float> step_lr(opt, 2);
  step_lr.step();
  tg::save_checkpoint(path, net, opt, step_lr, 1);
  tg::save_checkpoint(plain, net, &opt, 1);
  CHECK(tg::read_checkpoint<float>(path).scheduler_type == "StepLR");
  CHECK(tg::read_checkpoint<float>(path).scheduler.at("last_epoch") == "1");

  tg::Generator gen2(4);
  tg::Sequential<float> net2;
  net2.emplace_back<tg::Linear<float>>(2, 2, tg::LinearOptions(), gen2);
  tg::SGD<float> opt2(net2.parameters(), 0.3, tg::SGDOptions{0.5});
  tg::CosineAnnealingLR<float> cosine(opt2, 5);
  const auto model_before = net2.state_dict();
  const auto opt_before = opt2.state_dict();
  const auto sched_before = cosine.state_dict();
  const auto unchanged = [&] {
    tgtest::check_bitwise_same(net2.state_dict(), model_before);
    tgtest::check_bitwise_same(opt2.state_dict(), opt_before);
    CHECK(cosine.state_dict() == sched_before);
  };
  expect_error<tg::ValueError>([&] { tg::load_checkpoint(path, net2, opt2, cosine); },
                               {"written by StepLR", "cannot load it into CosineAnnealingLR"});
  unchanged();
  expect_error<tg::ValueError>([&] { tg::load_checkpoint(plain, net2, opt2, cosine); },
                               {"holds no scheduler state"});
  unchanged();
  // A scheduler state the scheduler refuses (written by hand): model and optimizer are put back.
  auto ck = tg::read_checkpoint<float>(path);
  auto meta = ck.metadata;
  meta["scheduler.gamma"] = "-2";
  tg::TensorMap<float> tensors;
  for (const auto& kv : ck.model) tensors.emplace("model." + kv.first, kv.second);
  for (const auto& kv : ck.optimizer) tensors.emplace("optim." + kv.first, kv.second);
  const std::string bad = (dir / "bad.safetensors").string();
  tg::save_safetensors(bad, tensors, meta);
  tg::StepLR<float> step2(opt2, 9);
  const auto step2_before = step2.state_dict();
  expect_error<tg::ValueError>([&] { tg::load_checkpoint(bad, net2, opt2, step2); },
                               {"scheduler: ", "StepLR.load_state_dict", "gamma", "-2"});
  tgtest::check_bitwise_same(net2.state_dict(), model_before);
  tgtest::check_bitwise_same(opt2.state_dict(), opt_before);
  CHECK(step2.state_dict() == step2_before);
  expect_error<tg::ValueError>(
      [&] {
        tg::save_checkpoint(path, net, opt, step_lr, 1, {{"scheduler.x", "1"}});
      },
      {"scheduler.x"});
  std::filesystem::remove_all(dir);
}

// ---- bad inputs ---------------------------------------------------------------------------

TEST_CASE(
    "OneCycleLR without a step count, with a non-positive count, pct_start outside [0, 1] or a bad factor is a ValueError naming it") {
  OneParam p;
  tg::SGD<double> opt(p.list(), 0.123, tg::SGDOptions{0.9});
  const auto with = [](auto change) {
    tg::OneCycleOptions o;
    o.total_steps = 10;
    change(o);
    return o;
  };
  expect_error<tg::ValueError>([&] { tg::OneCycleLR<double>(opt, 0.1, tg::OneCycleOptions{}); },
                               {"You must define either total_steps OR (epochs AND steps_per_epoch)"});
  expect_error<tg::ValueError>([&] { tg::OneCycleLR<double>(opt, 0.1, std::int64_t{0}); },
                               {"Expected positive integer total_steps, but got 0"});
  expect_error<tg::ValueError>([&] { tg::OneCycleLR<double>(opt, 0.1, std::int64_t{-3}); },
                               {"total_steps", "-3"});
  expect_error<tg::ValueError>(
      [&] {
        tg::OneCycleLR<double>(opt, 0.1,
                               with([](tg::OneCycleOptions& o) { o.total_steps = 0, o.epochs = 2; }));
      },
      {"steps_per_epoch, but got 0"});
  expect_error<tg::ValueError>(
      [&] { tg::OneCycleLR<double>(opt, 0.1, with([](tg::OneCycleOptions& o) { o.pct_start = 1.5; })); },
      {"pct_start", "1.5"});
  expect_error<tg::ValueError>(
      [&] { tg::OneCycleLR<double>(opt, 0.1, with([](tg::OneCycleOptions& o) { o.div_factor = 0; })); },
      {"div_factor", "0.0"});
  expect_error<tg::ValueError>([&] { tg::OneCycleLR<double>(opt, std::nan(""), std::int64_t{10}); },
                               {"max_lr", "nan"});
  CHECK(opt.lr() == 0.123);
  CHECK(opt.hyperparameters().at("momentum") == 0.9);
  // Adam refuses a beta1 of 1: the scheduler is not built and the optimizer is unchanged.
  tg::Adam<double> adam(p.list(), 0.01);
  expect_error<tg::ValueError>(
      [&] { tg::OneCycleLR<double>(adam, 0.1, with([](tg::OneCycleOptions& o) { o.max_momentum = 1.0; })); },
      {"beta parameter at index 0", "1.0"});
  CHECK(adam.lr() == 0.01);
  CHECK(adam.hyperparameters().at("beta1") == 0.9);
  // A step in a phase of zero length (PyTorch: ZeroDivisionError).
  expect_error<tg::ValueError>(
      [&] { tg::OneCycleLR<double>(opt, 0.1, with([](tg::OneCycleOptions& o) { o.pct_start = 0.1; })); },
      {"step 0 falls in phase 1, which has zero length"});
}

TEST_CASE(
    "ReduceLROnPlateau with a factor of 1 or below 0, a negative patience or a NaN threshold is a ValueError naming it") {
  OneParam p;
  tg::SGD<double> opt(p.list(), 0.1);
  const auto with = [](auto change) {
    tg::PlateauOptions o;
    change(o);
    return o;
  };
  expect_error<tg::ValueError>(
      [&] { tg::ReduceLROnPlateau<double>(opt, with([](tg::PlateauOptions& o) { o.factor = 1.0; })); },
      {"Factor should be < 1.0.", "1.0"});
  expect_error<tg::ValueError>(
      [&] { tg::ReduceLROnPlateau<double>(opt, with([](tg::PlateauOptions& o) { o.factor = -0.5; })); },
      {"factor", "-0.5"});
  expect_error<tg::ValueError>(
      [&] { tg::ReduceLROnPlateau<double>(opt, with([](tg::PlateauOptions& o) { o.patience = -1; })); },
      {"patience", "-1"});
  expect_error<tg::ValueError>(
      [&] {
        tg::ReduceLROnPlateau<double>(opt, with([](tg::PlateauOptions& o) { o.threshold = std::nan(""); }));
      },
      {"threshold", "nan"});
  expect_error<tg::ValueError>(
      [&] { tg::ReduceLROnPlateau<double>(opt, with([](tg::PlateauOptions& o) { o.min_lr = -1; })); },
      {"min_lr", "-1"});
  CHECK(opt.lr() == 0.1);
}

TEST_CASE(
    "scheduler load_state_dict with a missing, unknown or malformed entry is a ValueError naming it; nothing changes") {
  OneParam p;
  tg::SGD<double> opt(p.list(), 0.1);
  tg::CosineAnnealingLR<double> cosine(opt, 10);
  cosine.step();
  const auto good = cosine.state_dict();
  const auto refuse = [&](const std::string& key, const std::string& value,
                          std::initializer_list<std::string> parts) {
    auto bad = good;
    if (value.empty()) {
      bad.erase(key);
    } else {
      bad[key] = value;
    }
    expect_error<tg::ValueError>([&] { cosine.load_state_dict(bad); }, parts);
    CHECK(cosine.state_dict() == good);
    CHECK(opt.lr() == cosine.lr_at(1));
  };
  refuse("T_max", "", {"CosineAnnealingLR.load_state_dict", "missing key \"T_max\""});
  refuse("gamma", "0.1", {"unexpected key \"gamma\""});
  refuse("last_epoch", "3x", {"\"last_epoch\" is \"3x\", not a number"});
  refuse("last_epoch", "2.5", {"\"last_epoch\" is \"2.5\", not a whole number"});
  refuse("last_epoch", "-1", {"last_epoch", "-1"});
  refuse("base_lrs", "inf", {"base_lrs", "inf"});
  refuse("T_max", "0", {"T_max must be positive, got 0"});
  refuse("eta_min", " 1", {"eta_min", "not a number"});

  tg::ReduceLROnPlateau<double> plateau(opt);
  const auto pgood = plateau.state_dict();
  auto pbad = pgood;
  pbad["mode"] = "maximum";
  expect_error<tg::ValueError>([&] { plateau.load_state_dict(pbad); },
                               {"\"mode\" is \"maximum\"", "\"min\", \"max\""});
  pbad = pgood;
  pbad["num_bad_epochs"] = "-2";
  expect_error<tg::ValueError>([&] { plateau.load_state_dict(pbad); }, {"num_bad_epochs", "-2"});
  CHECK(plateau.state_dict() == pgood);

  tg::OneCycleLR<double> one(opt, 0.1, 10);
  auto obad = one.state_dict();
  obad["use_beta1"] = "1";
  expect_error<tg::ValueError>([&] { one.load_state_dict(obad); }, {"use_beta1", "\"momentum\""});
  obad = one.state_dict();
  obad["anneal_strategy"] = "cosine";
  expect_error<tg::ValueError>([&] { one.load_state_dict(obad); }, {"anneal_strategy", "cosine"});
}
