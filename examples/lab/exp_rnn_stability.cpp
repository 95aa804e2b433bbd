// Experiment 5: recurrent stability. The adding problem (sum the two marked values of a
// sequence; predicting the mean scores MSE ~0.167) learned by a plain tanh RNN, the two
// LayerNorm-RNN variants of Ba et al. (2016) and a recurrent BatchNorm RNN (Cooijmans et al.
// 2016), over learning rates and seeds, with Adam and gradient-norm clipping.
#include <algorithm>
#include <cmath>

#include "lab.hpp"

namespace lab {

namespace {

const std::vector<std::string> kCells = {"rnn", "lnrnn_summed", "lnrnn_separate", "bnrnn"};
const char* cell_title(const std::string& c) {
  if (c == "rnn") return "RNN";
  if (c == "lnrnn_summed") return "LN-RNN (summed, eq. 4)";
  if (c == "lnrnn_separate") return "LN-RNN (separate)";
  return "BN-RNN";
}

constexpr double kClip = 1.0;          // gradient-norm clipping threshold
constexpr double kBaseline = 1.0 / 6;  // MSE of predicting the mean target (1)
constexpr double kDiverged = 1.0;      // a test MSE above this (or NaN) counts as diverged

// A recurrent cell and a Linear head on its last hidden state.
struct Net {
  std::shared_ptr<tg::Module<float>> cell;
  std::function<tg::RNNOutput<float>(tg::Tape<float>&, const tg::Var<float>&)> run;
  std::unique_ptr<tg::Linear<float>> head;
  std::vector<tg::Parameter<float>*> params;

  tg::Var<float> forward(tg::Tape<float>& t, const tg::Var<float>& x) {
    const auto out = run(t, x);                          // x: (N, T, 2), batch first
    return head->forward(t, tg::select(out.h_n, 0, 0));  // last state (N, H) -> (N, 1)
  }
  void train(bool on) {
    cell->train(on);
    head->train(on);
  }
};

Net make_net(const std::string& kind, std::size_t hidden, std::uint64_t seed) {
  tg::Generator gen(seed);
  Net n;
  if (kind == "rnn") {
    auto m = std::make_shared<tg::RNN<float>>(2, hidden, tg::RNNOptions().batch_first(true), gen);
    n.run = [m](tg::Tape<float>& t, const tg::Var<float>& x) { return m->run(t, x); };
    n.cell = m;
  } else if (kind == "bnrnn") {
    auto m = std::make_shared<tg::BNRNN<float>>(2, hidden, tg::BNRNNOptions().batch_first(true), gen);
    n.run = [m](tg::Tape<float>& t, const tg::Var<float>& x) { return m->run(t, x); };
    n.cell = m;
  } else {
    const auto v = kind == "lnrnn_summed" ? tg::LNVariant::Summed : tg::LNVariant::Separate;
    auto m =
        std::make_shared<tg::LNRNN<float>>(2, hidden, tg::LNRNNOptions().variant(v).batch_first(true), gen);
    n.run = [m](tg::Tape<float>& t, const tg::Var<float>& x) { return m->run(t, x); };
    n.cell = m;
  }
  n.head = std::make_unique<tg::Linear<float>>(hidden, 1, tg::LinearOptions(), gen);
  n.params = n.cell->parameters();
  for (auto* p : n.head->parameters()) n.params.push_back(p);
  return n;
}

double test_mse(Net& net, const tg::Dataset<float>& test) {
  tg::NoGradGuard no_grad;
  net.train(false);
  tg::Tape<float> t;
  const double mse = tg::mse_loss(net.forward(t, t.input(test.inputs())), t.input(test.targets())).item();
  net.train(true);
  return mse;
}

struct Settings {
  std::size_t seq_len, hidden, steps, checkpoints, train_n, test_n, batch;
};

// --- run -------------------------------------------------------------------------------------

std::vector<std::pair<std::string, double>> train_one(const std::string& kind, double lr, std::uint64_t seed,
                                                      const Settings& s) {
  const auto train = tg::adding_problem<float>(s.train_n, s.seq_len, seed * 7 + 1);
  const auto test = tg::adding_problem<float>(s.test_n, s.seq_len, 1000003);  // one test set for all
  Net net = make_net(kind, s.hidden, seed);
  tg::Adam<float> opt(net.params, lr);
  tg::DataLoader<float> loader(train, s.batch, true, seed, true);
  tg::Tape<float> t;
  std::vector<double> curve;
  double gmax = 0, gsum = 0;
  std::size_t clipped = 0, step = 0;
  bool diverged = false;
  const std::size_t every = s.steps / s.checkpoints;
  while (step < s.steps && !diverged) {
    for (auto& b : loader) {
      t.reset();
      auto loss = tg::mse_loss(net.forward(t, t.input(b.inputs)), t.input(b.targets));
      opt.zero_grad();
      t.backward(loss);
      const double g = tg::clip_grad_norm(net.params, kClip);
      gmax = std::isfinite(g) ? std::max(gmax, g) : INFINITY;
      gsum += std::isfinite(g) ? g : 0;
      clipped += g > kClip;
      opt.step();
      ++step;
      if (step % every == 0) {
        const double mse = test_mse(net, test);
        curve.push_back(mse);
        if (!(mse < kDiverged)) diverged = true;
      }
      if (step >= s.steps || diverged) break;
    }
  }
  while (curve.size() < s.checkpoints) curve.push_back(std::nan(""));  // stopped early
  std::vector<std::pair<std::string, double>> m = {
      {"final_test_mse", diverged ? std::nan("") : curve.back()},
      {"diverged", diverged ? 1.0 : 0.0},
      {"steps_run", static_cast<double>(step)},
      {"grad_norm_max", gmax},
      {"grad_norm_mean", gsum / static_cast<double>(std::max<std::size_t>(step, 1))},
      {"clipped_fraction",
       static_cast<double>(clipped) / static_cast<double>(std::max<std::size_t>(step, 1))}};
  for (std::size_t k = 0; k < curve.size(); ++k)
    m.emplace_back("test_mse_" + std::to_string(k + 1), curve[k]);
  return m;
}

std::vector<double> learning_rates(const Config& c) {
  return c.pick<std::vector<double>>({3e-3, 3e-2}, {1e-3, 1e-2, 1e-1}, {1e-3, 3e-3, 1e-2, 3e-2, 1e-1});
}

std::vector<Row> run_cells(const Config& c, const Settings& s, const std::vector<double>& lrs,
                           std::size_t seeds) {
  SweepSpec spec;
  spec.name = "e5_rnn_stability";
  spec.param_cols = {"cell", "lr", "seed", "seq_len", "hidden", "steps", "batch_size", "clip"};
  spec.metric_cols = {"final_test_mse", "diverged",       "steps_run",
                      "grad_norm_max",  "grad_norm_mean", "clipped_fraction"};
  for (std::size_t k = 1; k <= s.checkpoints; ++k)
    spec.metric_cols.push_back("test_mse_" + std::to_string(k));
  for (const auto& cell : kCells) {
    for (double lr : lrs) {
      for (std::size_t seed = 0; seed < seeds; ++seed) {
        const std::uint64_t sd = c.seed + seed;
        Run run;
        run.key = cell + "/lr" + fmt(lr) + "/s" + std::to_string(sd);
        run.params = {{"cell", cell},
                      {"lr", fmt(lr)},
                      {"seed", std::to_string(sd)},
                      {"seq_len", std::to_string(s.seq_len)},
                      {"hidden", std::to_string(s.hidden)},
                      {"steps", std::to_string(s.steps)},
                      {"batch_size", std::to_string(s.batch)},
                      {"clip", fmt(kClip)}};
        run.fn = [cell, lr, sd, s] { return train_one(cell, lr, sd, s); };
        spec.runs.push_back(std::move(run));
      }
    }
  }
  return run_sweep(spec, c.sweep("e5_rnn_stability"));
}

// --- aggregate -------------------------------------------------------------------------------

// The seeds of one (cell, lr).
struct CellStats {
  double mse_sum = 0, mse_n = 0, div = 0, n = 0, gmax = 0, clip = 0;
};

// A learning curve with its min-max band over the seeds that did not stop before a checkpoint.
struct Band {
  std::vector<double> x, mean, lo, hi;
};

struct Results {
  std::map<std::pair<std::string, double>, CellStats> agg;  // (cell, lr)
  double shown_lr = 0;                                      // the lr whose curves are plotted
  std::map<std::string, Band> curves;                       // by cell, at shown_lr
  std::string best_cell;  // lowest mean final MSE of the non-diverged runs; empty = none finished
  double best_mse = INFINITY, best_lr = 0;
};

// The learning rate where the most cells finish (ties: the larger lr).
double most_finished_lr(const Results& res, const std::vector<double>& lrs) {
  double shown_lr = lrs.front();
  double best_done = -1;
  for (double lr : lrs) {
    double done = 0;
    for (const auto& cell : kCells) done += res.agg.at({cell, lr}).mse_n;
    if (done > best_done || (done == best_done && lr > shown_lr)) best_done = done, shown_lr = lr;
  }
  return shown_lr;
}

Band curve(const std::vector<Row>& rows, const std::string& cell, double lr, const Settings& s) {
  Band b;
  for (std::size_t k = 1; k <= s.checkpoints; ++k) {
    double lo = INFINITY, hi = 0, sum = 0, n = 0;
    for (const auto& r : rows) {
      if (r.at("cell") != cell || num(r, "lr") != lr) continue;
      const double v = num(r, "test_mse_" + std::to_string(k));
      if (!std::isfinite(v)) continue;
      lo = std::min(lo, v), hi = std::max(hi, v), sum += v, n += 1;
    }
    if (n == 0) continue;
    b.x.push_back(static_cast<double>(k * (s.steps / s.checkpoints)));
    b.mean.push_back(sum / n);
    b.lo.push_back(lo);
    b.hi.push_back(hi);
  }
  return b;
}

Results aggregate(const std::vector<Row>& rows, const Settings& s, const std::vector<double>& lrs) {
  Results res;
  for (const auto& cell : kCells) {
    for (double lr : lrs) res.agg[{cell, lr}];  // every (cell, lr) is in the table, even without rows
  }
  for (const auto& r : rows) {
    CellStats& a = res.agg[{r.at("cell"), num(r, "lr")}];
    a.n += 1;
    a.div += num(r, "diverged");
    if (num(r, "diverged") == 0) a.mse_sum += num(r, "final_test_mse"), a.mse_n += 1;
    a.gmax = std::max(a.gmax, num(r, "grad_norm_max"));
    a.clip += num(r, "clipped_fraction");
  }
  res.shown_lr = most_finished_lr(res, lrs);
  for (const auto& cell : kCells) res.curves[cell] = curve(rows, cell, res.shown_lr, s);
  for (const auto& [key, a] : res.agg) {
    if (a.mse_n && a.mse_sum / a.mse_n < res.best_mse) {
      res.best_mse = a.mse_sum / a.mse_n, res.best_cell = key.first, res.best_lr = key.second;
    }
  }
  return res;
}

// --- report ----------------------------------------------------------------------------------

std::string intro_text(const Settings& s, std::size_t seeds) {
  return "The adding problem (sequences of length " + std::to_string(s.seq_len) +
         " with two marked values; the target is their sum; predicting the mean gives MSE " +
         fixed(kBaseline, 3) +
         ") learned by a tanh RNN, the two LayerNorm-RNN variants of Ba et al. (2016) and a recurrent BatchNorm RNN "
         "(Cooijmans et al. 2016, statistics per time step), hidden size " +
         std::to_string(s.hidden) + ", batch " + std::to_string(s.batch) + ", Adam for " +
         std::to_string(s.steps) + " steps with gradient-norm clipping at " + fixed(kClip, 1) + ", " +
         std::to_string(seeds) +
         " seed(s) per cell. A run counts as diverged when the test MSE becomes NaN or exceeds " +
         fixed(kDiverged, 1) +
         ". Data: `e5_rnn_stability.csv` (the test MSE at 10 points of training in columns test_mse_1..10).";
}

void report_table(const Results& res, const std::vector<double>& lrs, Report& rep) {
  std::vector<std::vector<std::string>> table;
  for (const auto& cell : kCells) {
    for (double lr : lrs) {
      const CellStats& a = res.agg.at({cell, lr});
      table.push_back({cell_title(cell), short_num(lr), a.mse_n ? short_num(a.mse_sum / a.mse_n) : "—",
                       short_num(a.div / a.n, 2), short_num(a.gmax), short_num(a.clip / a.n, 2)});
    }
  }
  rep.table({"cell", "lr", "final test MSE (mean of non-diverged)", "diverged fraction", "max grad norm",
             "fraction of steps clipped"},
            table);
}

// Learning curves at the learning rate where the most cells finish, with min-max bands.
void report_curves(const Config& c, const Settings& s, const Results& res, Report& rep) {
  LinePlot plot;
  plot.stem = "e5_rnn_curves";
  plot.title = "Adding problem: test MSE during training (lr " + short_num(res.shown_lr) +
               ", band: min-max over seeds)";
  plot.xlabel = "training step";
  plot.ylabel = "test MSE";
  plot.logy = true;
  for (const auto& cell : kCells) {
    const Band& b = res.curves.at(cell);
    plot.series.push_back(Series{cell_title(cell), b.x, b.mean, b.lo, b.hi});
  }
  Series base;
  base.title = "predict the mean (0.167)";
  base.x = {static_cast<double>(s.steps / s.checkpoints), static_cast<double>(s.steps)};
  base.y = {kBaseline, kBaseline};
  plot.series.push_back(base);
  plot_lines(c.out, plot);
  rep.image("e5_rnn_curves.png", "RNN learning curves");
}

// The best cell at its best lr, and divergence at the largest lr.
std::string reading_text(const Results& res, double top) {
  std::string div_text;
  for (const auto& cell : kCells) {
    const CellStats& a = res.agg.at({cell, top});
    div_text +=
        std::string(div_text.empty() ? "" : ", ") + cell_title(cell) + " " + short_num(a.div / a.n, 2);
  }
  const double b = res.best_mse;
  return "**Reading.** The lowest final test MSE, " + short_num(b) + ", is reached by " +
         (res.best_cell.empty() ? "no cell" : cell_title(res.best_cell)) + " at lr " +
         short_num(res.best_lr) + " (" +
         (b < kBaseline / 4 ? "far below"
          : b < kBaseline   ? "below"
                            : "not below") +
         " the predict-the-mean baseline of " + fixed(kBaseline, 3) + "). At the largest learning rate, " +
         short_num(top) + ", the diverged fractions are: " + div_text +
         ". The table's last columns show how hard each cell pulls on the clipping threshold.";
}

void add_summary(const Results& res, double top, Summary& summary) {
  summary["e5"] = {
      {"best_cell", res.best_cell}, {"best_lr", res.best_lr}, {"best_final_test_mse", res.best_mse}};
  for (const auto& cell : kCells) {
    const CellStats& a = res.agg.at({cell, top});
    summary["e5"]["diverged_fraction_lr_max"][cell] = a.div / a.n;
  }
}

}  // namespace

void experiment_rnn_stability(const Config& c, Report& rep, Summary& summary) {
  Settings s;
  s.seq_len = c.pick<std::size_t>(5, 10, 20);
  s.hidden = c.pick<std::size_t>(8, 32, 32);
  s.steps = c.pick<std::size_t>(60, 600, 2000);
  s.checkpoints = 10;
  s.train_n = c.pick<std::size_t>(256, 2048, 8192);
  s.test_n = c.pick<std::size_t>(128, 512, 1024);
  s.batch = 32;
  const std::vector<double> lrs = learning_rates(c);
  const std::size_t seeds = c.pick<std::size_t>(1, 2, 3);
  const auto rows = run_cells(c, s, lrs, seeds);
  const Results res = aggregate(rows, s, lrs);

  rep.heading(2, "5. Recurrent networks: stability over learning rates");
  rep.paragraph(intro_text(s, seeds));
  report_table(res, lrs, rep);
  report_curves(c, s, res, rep);
  rep.paragraph(reading_text(res, lrs.back()));
  add_summary(res, lrs.back(), summary);
}

}  // namespace lab
