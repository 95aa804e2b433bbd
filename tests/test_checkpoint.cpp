// Checkpoints: model + optimizer + step round trips, and every way a load can fail leaves the
// model and the optimizer exactly as they were.
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "support.hpp"

namespace tg = tapegrad;
namespace fs = std::filesystem;
using Catch::Contains;
using tgtest::check_bitwise_same;
using tgtest::train_steps;

namespace {

// Linear(in, hidden) -> LayerNorm? / BatchNorm -> Tanh -> Linear(hidden, 2), seeded.
std::shared_ptr<tg::Sequential<float>> make_net(std::size_t in, std::size_t hidden, std::uint64_t seed) {
  tg::Generator gen(seed);
  auto net = std::make_shared<tg::Sequential<float>>();
  net->emplace_back<tg::Linear<float>>(in, hidden, tg::LinearOptions(), gen);
  net->emplace_back<tg::BatchNorm1d<float>>(hidden);
  net->emplace_back<tg::Tanh<float>>();
  net->emplace_back<tg::Linear<float>>(hidden, 2, tg::LinearOptions(), gen);
  return net;
}

// The number of per-parameter state entries ("state.<i>.<name>") in an optimizer's state_dict.
std::size_t state_keys(const tg::Optimizer<float>& opt) {
  std::size_t n = 0;
  for (const auto& kv : opt.state_dict()) n += kv.first.compare(0, 6, "state.") == 0;
  return n;
}

}  // namespace

TEST_CASE("a checkpoint round-trips the model, the Adam state and the step") {
  const auto dir = tgtest::scratch_dir("checkpoint", "roundtrip");
  const std::string path = (dir / "ck.safetensors").string();
  auto net = make_net(3, 5, 1);
  tg::Adam<float> opt(net->parameters(), 0.01);
  train_steps(*net, opt, 4, 10);
  tg::save_checkpoint(path, *net, &opt, 4, {{"note", "four steps"}});

  auto fresh = make_net(3, 5, 2);  // different init
  tg::Adam<float> fresh_opt(fresh->parameters(), 0.5);
  CHECK(tg::load_checkpoint(path, *fresh, &fresh_opt) == 4);
  check_bitwise_same(fresh->state_dict(), net->state_dict());
  check_bitwise_same(fresh_opt.state_dict(), opt.state_dict());
  CHECK(fresh_opt.lr() == Approx(0.01));
  CHECK(fresh->state_dict().at("1.num_batches_tracked")() == 4.0f);

  // The file's layout: prefixed keys and the documented metadata.
  const auto raw = tg::load_safetensors<float>(path);
  CHECK(raw.tensors.count("model.0.weight"));
  CHECK(raw.tensors.count("model.1.running_var"));
  CHECK(raw.tensors.count("optim.lr"));
  CHECK(raw.tensors.count("optim.state.0.exp_avg_sq"));
  CHECK(raw.metadata.at("format") == "tapegrad-checkpoint");
  CHECK(raw.metadata.at("version") == "1");
  CHECK(raw.metadata.at("step") == "4");
  CHECK(raw.metadata.at("optimizer") == "Adam");
  CHECK(raw.metadata.at("note") == "four steps");
  CHECK(tg::read_checkpoint<float>(path).optimizer_type == "Adam");

  // Continuing both gives bit-identical parameters.
  train_steps(*net, opt, 3, 50);
  train_steps(*fresh, fresh_opt, 3, 50);
  check_bitwise_same(fresh->state_dict(), net->state_dict());
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint saved with an optimizer loads into a model alone, and read_checkpoint splits it") {
  const auto dir = tgtest::scratch_dir("checkpoint", "model_only");
  const std::string path = (dir / "ck.safetensors").string();
  auto net = make_net(3, 4, 1);
  tg::SGD<float> opt(net->parameters(), 0.1, tg::SGDOptions{0.9});
  train_steps(*net, opt, 2, 3);
  tg::save_checkpoint(path, *net, &opt, 123456789012LL);
  auto other = make_net(3, 4, 9);
  CHECK(tg::load_checkpoint(path, *other) == 123456789012LL);
  check_bitwise_same(other->state_dict(), net->state_dict());
  const auto ck = tg::read_checkpoint<double>(path);  // F32 file read as double
  CHECK(ck.step == 123456789012LL);
  CHECK(ck.model.size() == net->state_dict().size());
  CHECK(ck.optimizer.count("state.0.momentum_buffer"));
  CHECK(ck.optimizer_type == "SGD");
  CHECK(ck.metadata.at("optimizer") == "SGD");
  CHECK(ck.model.at("0.weight")(0, 0) == static_cast<double>(net->state_dict().at("0.weight")(0, 0)));
  fs::remove_all(dir);
}

TEST_CASE("loading into a model with a different architecture fails, names the key and changes nothing") {
  const auto dir = tgtest::scratch_dir("checkpoint", "arch");
  const std::string path = (dir / "ck.safetensors").string();
  auto net = make_net(3, 5, 1);
  tg::Adam<float> opt(net->parameters(), 0.01);
  train_steps(*net, opt, 2, 1);
  tg::save_checkpoint(path, *net, &opt, 2);

  auto wider = make_net(3, 6, 2);
  tg::Adam<float> wider_opt(wider->parameters(), 0.02);
  train_steps(*wider, wider_opt, 1, 7);
  const auto model_before = wider->state_dict();
  const auto opt_before = wider_opt.state_dict();
  CHECK_THROWS_AS(tg::load_checkpoint(path, *wider, &wider_opt), tg::ShapeError);
  CHECK_THROWS_WITH(tg::load_checkpoint(path, *wider, &wider_opt),
                    Contains("ck.safetensors") && Contains("model") && Contains("0.weight") &&
                        Contains("(5, 3)") && Contains("(6, 3)"));
  check_bitwise_same(wider->state_dict(), model_before);
  check_bitwise_same(wider_opt.state_dict(), opt_before);

  // A model with an extra layer: missing keys are a ValueError naming them.
  auto deeper = make_net(3, 5, 3);
  deeper->emplace_back<tg::Linear<float>>(2, 2);
  const auto deeper_before = deeper->state_dict();
  CHECK_THROWS_AS(tg::load_checkpoint(path, *deeper), tg::ValueError);
  CHECK_THROWS_WITH(tg::load_checkpoint(path, *deeper), Contains("4.weight") && Contains("4.bias"));
  check_bitwise_same(deeper->state_dict(), deeper_before);
  fs::remove_all(dir);
}

TEST_CASE("a truncated checkpoint fails with an IoError and changes nothing") {
  const auto dir = tgtest::scratch_dir("checkpoint", "truncated");
  const std::string path = (dir / "ck.safetensors").string();
  auto net = make_net(3, 5, 1);
  tg::Adam<float> opt(net->parameters(), 0.01);
  train_steps(*net, opt, 2, 1);
  tg::save_checkpoint(path, *net, &opt, 2);
  const auto full_size = fs::file_size(path);

  auto target = make_net(3, 5, 4);
  tg::Adam<float> target_opt(target->parameters(), 0.03);
  train_steps(*target, target_opt, 1, 9);
  const auto model_before = target->state_dict();
  const auto opt_before = target_opt.state_dict();
  for (std::uintmax_t size : {full_size - 1, full_size / 2, std::uintmax_t{12}, std::uintmax_t{0}}) {
    INFO("truncated to " << size << " of " << full_size << " bytes");
    fs::copy_file(path, dir / "cut.safetensors", fs::copy_options::overwrite_existing);
    fs::resize_file(dir / "cut.safetensors", size);
    CHECK_THROWS_AS(tg::load_checkpoint((dir / "cut.safetensors").string(), *target, &target_opt),
                    tg::IoError);
    check_bitwise_same(target->state_dict(), model_before);
    check_bitwise_same(target_opt.state_dict(), opt_before);
  }
  CHECK_THROWS_WITH(tg::load_checkpoint((dir / "missing.safetensors").string(), *target),
                    Contains("missing.safetensors"));
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint without optimizer state fails clearly when an optimizer is given") {
  const auto dir = tgtest::scratch_dir("checkpoint", "no_optim");
  const std::string path = (dir / "ck.safetensors").string();
  auto net = make_net(3, 5, 1);
  tg::save_checkpoint(path, *net, nullptr, 7);
  CHECK_FALSE(tg::load_safetensors<float>(path).metadata.count("optimizer"));  // no optimizer, no type
  CHECK(tg::read_checkpoint<float>(path).optimizer_type.empty());
  auto target = make_net(3, 5, 2);
  tg::Adam<float> opt(target->parameters(), 0.01);
  const auto before = target->state_dict();
  CHECK_THROWS_AS(tg::load_checkpoint(path, *target, &opt), tg::ValueError);
  CHECK_THROWS_WITH(tg::load_checkpoint(path, *target, &opt),
                    Contains("no optimizer state") && Contains("ck.safetensors"));
  check_bitwise_same(target->state_dict(), before);
  CHECK(tg::load_checkpoint(path, *target) == 7);  // the model alone loads
  check_bitwise_same(target->state_dict(), net->state_dict());
  fs::remove_all(dir);
}

TEST_CASE(
    "a checkpoint written by one type of optimizer is refused by another, naming both, and nothing changes") {
  const auto dir = tgtest::scratch_dir("checkpoint", "optim_type");
  const std::string path = (dir / "ck.safetensors").string();
  auto net = make_net(3, 5, 1);
  tg::SGD<float> sgd(net->parameters(), 0.1, tg::SGDOptions{0.9});
  train_steps(*net, sgd, 2, 1);
  tg::save_checkpoint(path, *net, &sgd, 2);

  auto target = make_net(3, 5, 6);
  tg::Adam<float> adam(target->parameters(), 0.02);
  train_steps(*target, adam, 3, 4);
  const auto model_before = target->state_dict();
  const auto adam_before = adam.state_dict();
  // Keys and shapes alone would let it through: Adam's load_state_dict takes the SGD state
  // without its hyperparameters (with them it refuses SGD's "dampening").
  {
    auto probe = make_net(3, 5, 6);
    tg::Adam<float> probe_adam(probe->parameters(), 0.02);
    auto sgd_state = tg::read_checkpoint<float>(path).optimizer;
    CHECK_THROWS_WITH(probe_adam.load_state_dict(sgd_state),
                      Contains("unknown hyperparameter \"dampening\""));
    for (auto it = sgd_state.begin(); it != sgd_state.end();) {
      it = it->first.compare(0, 6, "group.") == 0 ? sgd_state.erase(it) : std::next(it);
    }
    CHECK_NOTHROW(probe_adam.load_state_dict(sgd_state));
  }
  CHECK_THROWS_AS(tg::load_checkpoint(path, *target, &adam), tg::ValueError);
  CHECK_THROWS_WITH(
      tg::load_checkpoint(path, *target, &adam),
      Contains("ck.safetensors") && Contains("checkpoint was written by SGD; cannot load it into Adam"));
  check_bitwise_same(target->state_dict(), model_before);
  check_bitwise_same(adam.state_dict(), adam_before);
  CHECK(adam.lr() == 0.02);

  // Adam and AdamW keep the same tensors under the same names: only the type tells them apart.
  const std::string adam_path = (dir / "adam.safetensors").string();
  tg::save_checkpoint(adam_path, *target, &adam, 3);
  tg::AdamW<float> adamw(target->parameters(), 0.02);
  CHECK_THROWS_WITH(tg::load_checkpoint(adam_path, *target, &adamw),
                    Contains("checkpoint was written by Adam; cannot load it into AdamW"));
  check_bitwise_same(target->state_dict(), model_before);
  CHECK(state_keys(adamw) == 0);  // still no per-parameter state

  // The model alone still loads from it, and the same type loads the optimizer.
  tg::SGD<float> sgd2(target->parameters(), 0.5, tg::SGDOptions{0.9});
  CHECK(tg::load_checkpoint(path, *target, &sgd2) == 2);
  check_bitwise_same(target->state_dict(), net->state_dict());
  check_bitwise_same(sgd2.state_dict(), sgd.state_dict());
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint written before the optimizer type was recorded still loads") {
  // Such a file is what save_checkpoint wrote then: the same tensors and metadata, without
  // "optimizer". Its state is checked by keys and shapes only, as it was then.
  const auto dir = tgtest::scratch_dir("checkpoint", "no_type");
  const std::string path = (dir / "old.safetensors").string();
  auto net = make_net(3, 5, 1);
  tg::Adam<float> opt(net->parameters(), 0.01);
  train_steps(*net, opt, 3, 2);
  tg::TensorMap<float> tensors;
  for (const auto& [k, v] : net->state_dict()) tensors["model." + k] = v;
  for (const auto& [k, v] : opt.state_dict()) tensors["optim." + k] = v;
  tg::save_safetensors<float>(path, tensors,
                              {{"format", "tapegrad-checkpoint"}, {"version", "1"}, {"step", "3"}});
  CHECK(tg::read_checkpoint<float>(path).optimizer_type.empty());

  auto fresh = make_net(3, 5, 7);
  tg::Adam<float> fresh_opt(fresh->parameters(), 0.3);
  CHECK(tg::load_checkpoint(path, *fresh, &fresh_opt) == 3);
  check_bitwise_same(fresh->state_dict(), net->state_dict());
  check_bitwise_same(fresh_opt.state_dict(), opt.state_dict());

  // Written again, it records the type.
  tg::save_checkpoint(path, *fresh, &fresh_opt, 3);
  CHECK(tg::read_checkpoint<float>(path).optimizer_type == "Adam");
  fs::remove_all(dir);
}

TEST_CASE(
    "an empty or unbacked optimizer type in a checkpoint is an IoError, and the name is reserved on save") {
  const auto dir = tgtest::scratch_dir("checkpoint", "bad_type");
  auto net = make_net(3, 5, 1);
  tg::Adam<float> opt(net->parameters(), 0.01);
  train_steps(*net, opt, 1, 2);
  const auto before = net->state_dict();
  const auto opt_before = opt.state_dict();
  tg::TensorMap<float> model_only, with_optim;
  for (const auto& [k, v] : net->state_dict()) model_only["model." + k] = with_optim["model." + k] = v;
  for (const auto& [k, v] : opt.state_dict()) with_optim["optim." + k] = v;
  const std::map<std::string, std::string> meta = {
      {"format", "tapegrad-checkpoint"}, {"version", "1"}, {"step", "1"}};

  auto empty_meta = meta;
  empty_meta["optimizer"] = "";
  const std::string empty = (dir / "empty.safetensors").string();
  tg::save_safetensors<float>(empty, with_optim, empty_meta);
  CHECK_THROWS_AS(tg::load_checkpoint(empty, *net, &opt), tg::IoError);
  CHECK_THROWS_WITH(tg::load_checkpoint(empty, *net, &opt), Contains("\"optimizer\" is empty"));

  auto adam_meta = meta;
  adam_meta["optimizer"] = "Adam";
  const std::string unbacked = (dir / "unbacked.safetensors").string();
  tg::save_safetensors<float>(unbacked, model_only, adam_meta);
  CHECK_THROWS_AS(tg::read_checkpoint<float>(unbacked), tg::IoError);
  CHECK_THROWS_WITH(tg::load_checkpoint(unbacked, *net),
                    Contains("\"Adam\"") && Contains("no optimizer state"));
  check_bitwise_same(net->state_dict(), before);
  check_bitwise_same(opt.state_dict(), opt_before);

  const std::string out = (dir / "out.safetensors").string();
  CHECK_THROWS_AS(tg::save_checkpoint(out, *net, &opt, 1, {{"optimizer", "SGD"}}), tg::ValueError);
  CHECK_THROWS_WITH(tg::save_checkpoint(out, *net, &opt, 1, {{"optimizer", "SGD"}}),
                    Contains("\"optimizer\""));
  CHECK_FALSE(fs::exists(out));
  fs::remove_all(dir);
}

TEST_CASE("an optimizer rejected after the model loaded puts the model back") {
  const auto dir = tgtest::scratch_dir("checkpoint", "optim_rollback");
  const std::string path = (dir / "ck.safetensors").string();
  auto net = make_net(3, 5, 1);
  tg::Adam<float> opt(net->parameters(), 0.01);
  train_steps(*net, opt, 2, 1);
  tg::save_checkpoint(path, *net, &opt, 2);

  // Same architecture, but the optimizer only covers the first two parameters: the model part
  // fits, the optimizer's "state.2..." keys do not.
  auto target = make_net(3, 5, 5);
  auto params = target->parameters();
  tg::Adam<float> partial({params[0], params[1]}, 0.01);
  const auto before = target->state_dict();
  CHECK_THROWS_AS(tg::load_checkpoint(path, *target, &partial), tg::ValueError);
  CHECK_THROWS_WITH(tg::load_checkpoint(path, *target, &partial),
                    Contains("optimizer") && Contains("state.2."));
  check_bitwise_same(target->state_dict(), before);
  CHECK(state_keys(partial) == 0);  // no state was loaded
  fs::remove_all(dir);
}

TEST_CASE("files that are not checkpoints, and bad save arguments, are rejected") {
  const auto dir = tgtest::scratch_dir("checkpoint", "format");
  auto net = make_net(3, 5, 1);
  const auto before = net->state_dict();
  const std::string plain = (dir / "plain.safetensors").string();
  tg::save_safetensors<float>(plain, net->state_dict());
  CHECK_THROWS_AS(tg::load_checkpoint(plain, *net), tg::IoError);
  CHECK_THROWS_WITH(tg::load_checkpoint(plain, *net), Contains("not a tapegrad checkpoint"));

  tg::TensorMap<float> prefixed;
  for (const auto& [k, v] : net->state_dict()) prefixed["model." + k] = v;
  const std::string v2 = (dir / "v2.safetensors").string();
  tg::save_safetensors<float>(v2, prefixed,
                              {{"format", "tapegrad-checkpoint"}, {"version", "2"}, {"step", "1"}});
  CHECK_THROWS_WITH(tg::load_checkpoint(v2, *net), Contains("unsupported checkpoint version \"2\""));
  const std::string bad_step = (dir / "bad_step.safetensors").string();
  tg::save_safetensors<float>(bad_step, prefixed,
                              {{"format", "tapegrad-checkpoint"}, {"version", "1"}, {"step", "12x"}});
  CHECK_THROWS_WITH(tg::load_checkpoint(bad_step, *net), Contains("\"step\"") && Contains("12x"));
  prefixed["other.thing"] = xt::zeros<float>({1});
  const std::string stray = (dir / "stray.safetensors").string();
  tg::save_safetensors<float>(stray, prefixed,
                              {{"format", "tapegrad-checkpoint"}, {"version", "1"}, {"step", "1"}});
  CHECK_THROWS_WITH(tg::load_checkpoint(stray, *net), Contains("\"other.thing\""));
  check_bitwise_same(net->state_dict(), before);

  const std::string out = (dir / "out.safetensors").string();
  CHECK_THROWS_AS(tg::save_checkpoint(out, *net, nullptr, 0, {{"step", "3"}}), tg::ValueError);
  CHECK_THROWS_AS(tg::save_checkpoint(out, *net, nullptr, -1), tg::ValueError);
  CHECK_FALSE(fs::exists(out));
  CHECK_THROWS_AS(tg::save_checkpoint((dir / "no_such_dir" / "x.safetensors").string(), *net), tg::IoError);
  fs::remove_all(dir);
}

TEST_CASE("a checkpoint restores the optimizer's hyperparameters exactly, also from a float file") {
  const auto dir = tgtest::scratch_dir("checkpoint", "hyper");
  const std::string path = (dir / "ck.safetensors").string();
  auto net = make_net(3, 5, 1);
  tg::SGDOptions o;
  o.momentum = 0.9;
  o.nesterov = true;
  o.weight_decay = 1e-4;
  tg::SGD<float> sgd(net->parameters(), 0.1, o);
  train_steps(*net, sgd, 2, 1);
  tg::save_checkpoint(path, *net, &sgd, 2);
  const auto ck = tg::read_checkpoint<float>(path);
  CHECK(ck.metadata.at("optimizer.lr") == "0.10000000000000001");
  CHECK(ck.hyperparameters == sgd.hyperparameters());
  CHECK(ck.optimizer.at("group.momentum")() == 0.9f);

  auto fresh = make_net(3, 5, 2);
  tg::SGD<float> other(fresh->parameters(), 0.5);  // built with other hyperparameters
  CHECK(tg::load_checkpoint(path, *fresh, &other) == 2);
  CHECK(other.hyperparameters() == sgd.hyperparameters());  // exact: 0.1, not 0.1f
  train_steps(*net, sgd, 2, 9);
  train_steps(*fresh, other, 2, 9);
  check_bitwise_same(fresh->state_dict(), net->state_dict());

  // A hand-made file with a hyperparameter that is not a number is an IoError naming it.
  tg::TensorMap<float> tensors;
  for (const auto& kv : ck.model) tensors.emplace("model." + kv.first, kv.second);
  for (const auto& kv : ck.optimizer) tensors.emplace("optim." + kv.first, kv.second);
  auto meta = ck.metadata;
  meta["optimizer.momentum"] = "0.9x";
  const std::string bad = (dir / "bad.safetensors").string();
  tg::save_safetensors<float>(bad, tensors, meta);
  const auto before = other.hyperparameters();
  CHECK_THROWS_AS(tg::load_checkpoint(bad, *fresh, &other), tg::IoError);
  CHECK_THROWS_WITH(tg::load_checkpoint(bad, *fresh, &other), Contains("\"optimizer.momentum\" is \"0.9x\""));
  CHECK(other.hyperparameters() == before);
  CHECK_THROWS_WITH(tg::save_checkpoint(path, *net, &sgd, 2, {{"optimizer.lr", "1"}}),
                    Contains("optimizer.lr"));
  fs::remove_all(dir);
}
