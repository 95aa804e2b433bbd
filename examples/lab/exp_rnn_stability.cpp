// Experiment 5: recurrent stability. The adding problem (sum the two marked values of a
// sequence; predicting the mean scores MSE ~0.167) in two settings:
// - short (T = 20 in the full lab): a plain tanh RNN, the two LayerNorm-RNN variants of Ba et
//   al. (2016) and a recurrent BatchNorm RNN (Cooijmans et al. 2016), over learning rates and
//   seeds, with Adam and gradient-norm clipping;
// - long (T = 60 in the full lab): the same four cells and LSTM, GRU and the LayerNorm-LSTM of
//   Ba et al., at few learning rates: a dependency the plain RNN cannot bridge in the step
//   budget, so that no norm, LayerNorm and BatchNorm meet on a task the gated cells learn.
#include <algorithm>
#include <cmath>

#include "lab.hpp"

namespace lab {

namespace {

const std::vector<std::string> kShortCells = {"rnn", "lnrnn_summed", "lnrnn_separate", "bnrnn"};
const std::vector<std::string> kLongCells = {"rnn",    "lnrnn_summed", "lnrnn_separate", "bnrnn", "lstm",
                                             "lnlstm", "gru"};
const char* cell_title(const std::string& c) {
  if (c == "rnn") return "RNN";
  if (c == "lnrnn_summed") return "LN-RNN (summed, eq. 4)";
  if (c == "lnrnn_separate") return "LN-RNN (separate)";
  if (c == "bnrnn") return "BN-RNN";
  if (c == "lstm") return "LSTM";
  if (c == "lnlstm") return "LN-LSTM";
  return "GRU";
}
// The normalization inside a cell, as the CSV's norm column and the report name it.
const char* cell_norm(const std::string& c) {
  if (c == "lnrnn_summed" || c == "lnrnn_separate" || c == "lnlstm") return "LayerNorm";
  return c == "bnrnn" ? "BatchNorm" : "none";
}

constexpr double kClip = 1.0;          // gradient-norm clipping threshold
constexpr double kBaseline = 1.0 / 6;  // MSE of predicting the mean target (1)
constexpr double kDiverged = 1.0;      // a test MSE above this (or NaN) counts as diverged
constexpr double kLearned = 0.05;      // a final test MSE below this (30% of the baseline): learned

// A recurrent cell and a Linear head on its last hidden state.
struct Net {
  std::shared_ptr<tg::Module<float>> cell;
  std::function<tg::Var<float>(tg::Tape<float>&, const tg::Var<float>&)> last_h;  // (1, N, H)
  std::unique_ptr<tg::Linear<float>> head;
  std::vector<tg::Parameter<float>*> params;

  tg::Var<float> forward(tg::Tape<float>& t, const tg::Var<float>& x) {
    return head->forward(t, tg::select(last_h(t, x), 0, 0));  // x: (N, T, 2) -> (N, 1)
  }
  void train(bool on) {
    cell->train(on);
    head->train(on);
  }
};

// Wraps module `m` (any with run(t, x) returning a struct with h_n) as the Net's cell.
template <class M>
void set_cell(Net& n, std::shared_ptr<M> m) {
  n.last_h = [m](tg::Tape<float>& t, const tg::Var<float>& x) { return m->run(t, x).h_n; };
  n.cell = m;
}

void make_cell(Net& n, const std::string& kind, std::size_t hidden, tg::Generator& gen) {
  if (kind == "rnn") {
    set_cell(n, std::make_shared<tg::RNN<float>>(2, hidden, tg::RNNOptions().batch_first(true), gen));
  } else if (kind == "bnrnn") {
    set_cell(n, std::make_shared<tg::BNRNN<float>>(2, hidden, tg::BNRNNOptions().batch_first(true), gen));
  } else if (kind == "lstm") {
    set_cell(n, std::make_shared<tg::LSTM<float>>(2, hidden, tg::LSTMOptions().batch_first(true), gen));
  } else if (kind == "gru") {
    set_cell(n, std::make_shared<tg::GRU<float>>(2, hidden, tg::GRUOptions().batch_first(true), gen));
  } else if (kind == "lnlstm") {
    set_cell(n, std::make_shared<tg::LNLSTM<float>>(2, hidden, tg::LNLSTMOptions().batch_first(true), gen));
  } else {
    const auto v = kind == "lnrnn_summed" ? tg::LNVariant::Summed : tg::LNVariant::Separate;
    set_cell(n, std::make_shared<tg::LNRNN<float>>(2, hidden, tg::LNRNNOptions().variant(v).batch_first(true),
                                                   gen));
  }
}

Net make_net(const std::string& kind, std::size_t hidden, std::uint64_t seed) {
  tg::Generator gen(seed);
  Net n;
  make_cell(n, kind, hidden, gen);
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

// One setting of the experiment: the task, the training budget and the grid of runs.
struct Settings {
  std::size_t seq_len, hidden, steps, checkpoints, train_n, test_n, batch;
  std::vector<std::string> cells;
  std::vector<double> lrs;
  std::size_t seeds;
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

Settings short_settings(const Config& c) {
  Settings s;
  s.seq_len = c.pick<std::size_t>(5, 10, 20);
  s.hidden = c.pick<std::size_t>(8, 32, 32);
  s.steps = c.pick<std::size_t>(60, 600, 2000);
  s.checkpoints = 10;
  s.train_n = c.pick<std::size_t>(256, 2048, 8192);
  s.test_n = c.pick<std::size_t>(128, 512, 1024);
  s.batch = 32;
  s.cells = kShortCells;
  s.lrs = c.pick<std::vector<double>>({3e-3, 3e-2}, {1e-3, 1e-2, 1e-1}, {1e-3, 3e-3, 1e-2, 3e-2, 1e-1});
  s.seeds = c.pick<std::size_t>(1, 2, 3);
  return s;
}

Settings long_settings(const Config& c) {
  Settings s;
  s.seq_len = c.pick<std::size_t>(10, 50, 50);
  s.hidden = c.pick<std::size_t>(8, 32, 32);
  s.steps = c.pick<std::size_t>(40, 200, 1200);
  s.checkpoints = 10;
  s.train_n = c.pick<std::size_t>(256, 2048, 8192);
  s.test_n = c.pick<std::size_t>(128, 256, 512);
  s.batch = 32;
  s.cells = kLongCells;
  s.lrs = {1e-2};
  s.seeds = c.pick<std::size_t>(1, 1, 2);
  return s;
}

// Both settings' runs in one sweep, in the order given (one CSV; seq_len tells the settings apart).
std::vector<Row> run_cells(const Config& c, const std::vector<Settings>& settings) {
  SweepSpec spec;
  spec.name = "e5_rnn_stability";
  spec.param_cols = {"cell", "norm", "lr", "seed", "seq_len", "hidden", "steps", "batch_size", "clip"};
  spec.metric_cols = {"final_test_mse", "diverged",       "steps_run",
                      "grad_norm_max",  "grad_norm_mean", "clipped_fraction"};
  for (std::size_t k = 1; k <= settings.front().checkpoints; ++k)
    spec.metric_cols.push_back("test_mse_" + std::to_string(k));
  for (const Settings& s : settings) {
    for (const auto& cell : s.cells) {
      for (double lr : s.lrs) {
        for (std::size_t seed = 0; seed < s.seeds; ++seed) {
          const std::uint64_t sd = c.seed + seed;
          Run run;
          run.key =
              "T" + std::to_string(s.seq_len) + "/" + cell + "/lr" + fmt(lr) + "/s" + std::to_string(sd);
          run.params = {{"cell", cell},
                        {"norm", cell_norm(cell)},
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
  }
  return run_sweep(spec, c.sweep("e5_rnn_stability"));
}

// --- aggregate -------------------------------------------------------------------------------

// The seeds of one (cell, lr).
struct CellStats {
  double mse_sum = 0, mse_n = 0, mse_lo = INFINITY, mse_hi = 0, learned = 0, div = 0, n = 0, gmax = 0,
         clip = 0;
  double mean() const { return mse_n ? mse_sum / mse_n : std::nan(""); }
};

// A learning curve with its min-max band over the seeds that did not stop before a checkpoint.
struct Band {
  std::vector<double> x, mean, lo, hi;
};

// One cell at its best learning rate (lowest mean final MSE of the non-diverged runs).
struct CellBest {
  double lr = 0, mse = INFINITY;
  CellStats stats;
};

struct Results {
  std::map<std::pair<std::string, double>, CellStats> agg;  // (cell, lr)
  std::map<std::string, CellBest> by_cell;
  std::map<std::string, Band> curves;  // by cell, at the cell's best lr (its by_cell entry)
  std::string best_cell;  // lowest mean final MSE of the non-diverged runs; empty = none finished
  double best_mse = INFINITY, best_lr = 0;
};

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

void add_row(const Row& r, CellStats& a) {
  a.n += 1;
  a.div += num(r, "diverged");
  if (num(r, "diverged") == 0) {
    const double mse = num(r, "final_test_mse");
    a.mse_sum += mse, a.mse_n += 1;
    a.mse_lo = std::min(a.mse_lo, mse), a.mse_hi = std::max(a.mse_hi, mse);
    a.learned += mse < kLearned;
  }
  a.gmax = std::max(a.gmax, num(r, "grad_norm_max"));
  a.clip += num(r, "clipped_fraction");
}

// The rows of setting `s` (its seq_len) aggregated per (cell, lr) and per cell.
Results aggregate(const std::vector<Row>& all_rows, const Settings& s) {
  std::vector<Row> rows;
  for (const auto& r : all_rows) {
    if (r.at("seq_len") == std::to_string(s.seq_len)) rows.push_back(r);
  }
  Results res;
  for (const auto& cell : s.cells) {
    for (double lr : s.lrs) res.agg[{cell, lr}];  // every (cell, lr) is in the table, even without rows
  }
  for (const auto& r : rows) add_row(r, res.agg[{r.at("cell"), num(r, "lr")}]);
  for (const auto& [key, a] : res.agg) {
    CellBest& cb = res.by_cell[key.first];
    if (cb.stats.n == 0) cb.lr = key.second, cb.stats = a;  // a cell without a finished run: its first lr
    if (a.mse_n && a.mean() < cb.mse) cb.mse = a.mean(), cb.lr = key.second, cb.stats = a;
    if (a.mse_n && a.mean() < res.best_mse)
      res.best_mse = a.mean(), res.best_cell = key.first, res.best_lr = key.second;
  }
  // The plot shows each cell at the lr of its lowest mean final MSE in the table.
  for (const auto& cell : s.cells) res.curves[cell] = curve(rows, cell, res.by_cell.at(cell).lr, s);
  return res;
}

// --- report ----------------------------------------------------------------------------------

std::string training_text(const Settings& s) {
  const std::string grid = s.lrs.size() == 1
                               ? " seed(s) per cell at learning rate " + short_num(s.lrs.front())
                               : " seed(s) per cell and learning rate";
  return "hidden size " + std::to_string(s.hidden) + ", batch " + std::to_string(s.batch) + ", Adam for " +
         std::to_string(s.steps) + " steps with gradient-norm clipping at " + fixed(kClip, 1) + ", " +
         std::to_string(s.seeds) + grid;
}

std::string intro_text(const Settings& s) {
  return "The adding problem (sequences of length " + std::to_string(s.seq_len) +
         " with two marked values; the target is their sum; predicting the mean gives MSE " +
         fixed(kBaseline, 3) +
         ") learned by a tanh RNN, the two LayerNorm-RNN variants of Ba et al. (2016) and a recurrent BatchNorm RNN "
         "(Cooijmans et al. 2016, statistics per time step), " +
         training_text(s) + ". A run counts as diverged when the test MSE becomes NaN or exceeds " +
         fixed(kDiverged, 1) + ", as learned when its final test MSE is below " + fixed(kLearned, 2) +
         ". Data: `e5_rnn_stability.csv`, rows with seq_len " + std::to_string(s.seq_len) +
         " (the test MSE at 10 points of training in columns test_mse_1..10).";
}

std::string long_intro_text(const Settings& s) {
  return "The same task with sequences of length " + std::to_string(s.seq_len) +
         ": the two marked values are now on average about " + std::to_string(s.seq_len / 2) +
         " steps apart. The four cells above, and LSTM, GRU (PyTorch's equations) and the LayerNorm-LSTM of Ba et "
         "al. (LayerNorm on the input and recurrent pre-activations and on the cell state), " +
         training_text(s) + ". Rows with seq_len " + std::to_string(s.seq_len) +
         " of `e5_rnn_stability.csv`.";
}

void report_table(const Results& res, const Settings& s, Report& rep) {
  std::vector<std::vector<std::string>> table;
  for (const auto& cell : s.cells) {
    for (double lr : s.lrs) {
      const CellStats& a = res.agg.at({cell, lr});
      const bool done = a.mse_n > 0;
      table.push_back({cell_title(cell), cell_norm(cell), short_num(lr), done ? short_num(a.mean()) : "—",
                       done ? short_num(a.mse_lo) + " – " + short_num(a.mse_hi) : "—",
                       fixed(a.learned, 0) + "/" + fixed(a.n, 0), short_num(a.div / a.n, 2),
                       short_num(a.gmax), short_num(a.clip / a.n, 2)});
    }
  }
  rep.table({"cell", "norm", "lr",
             "final test MSE (mean of non-diverged; predicting the mean gives " + fixed(kBaseline, 3) + ")",
             "min – max", "runs learned", "diverged fraction", "max grad norm", "fraction of steps clipped"},
            table);
}

// Learning curves at the learning rate shown, with min-max bands.
void report_curves(const Config& c, const Settings& s, const Results& res, const std::string& stem,
                   Report& rep) {
  LinePlot plot;
  plot.stem = stem;
  plot.title = "Adding problem, T = " + std::to_string(s.seq_len) +
               ": test MSE during training, each cell at its best lr (band: min-max over seeds)";
  plot.xlabel = "training step";
  plot.ylabel = "test MSE";
  plot.logy = true;
  for (const auto& cell : s.cells) {
    const Band& b = res.curves.at(cell);
    plot.series.push_back(
        Series{std::string(cell_title(cell)) + " (lr " + short_num(res.by_cell.at(cell).lr) + ")", b.x,
               b.mean, b.lo, b.hi});
  }
  Series base;
  base.title = "predict the mean (0.167)";
  base.x = {static_cast<double>(s.steps / s.checkpoints), static_cast<double>(s.steps)};
  base.y = {kBaseline, kBaseline};
  plot.series.push_back(base);
  // The key below the plot, in two columns: to its right it took half the picture's width and
  // the title, centred over the plot, ran off the left edge.
  plot.key = "below maxrows " + std::to_string((plot.series.size() + 1) / 2);
  plot_lines(c.out, plot);
  rep.image(stem + ".png", "RNN learning curves, T = " + std::to_string(s.seq_len));
}

// The best cell at its best lr, and divergence at the largest lr.
std::string reading_text(const Results& res, const Settings& s) {
  const double top = s.lrs.back();
  std::string div_text;
  for (const auto& cell : s.cells) {
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

// "LSTM 0.0012 (lr 0.01, 2/2 runs learned)", or that every run diverged.
std::string cell_result(const Results& res, const std::string& cell) {
  const CellBest& cb = res.by_cell.at(cell);
  if (cb.stats.mse_n == 0) return std::string(cell_title(cell)) + " diverged in every run";
  return std::string(cell_title(cell)) + " " + short_num(cb.mse) + " (lr " + short_num(cb.lr) + ", " +
         fixed(cb.stats.learned, 0) + "/" + fixed(cb.stats.n, 0) + " runs learned)";
}

// The best cell (by mean final MSE at its best lr) of each normalization.
std::string by_norm_text(const Results& res, const Settings& s) {
  std::string text;
  for (const char* norm : {"none", "LayerNorm", "BatchNorm"}) {
    std::string best;
    for (const auto& cell : s.cells) {
      if (cell_norm(cell) == std::string(norm) &&
          (best.empty() || res.by_cell.at(cell).mse < res.by_cell.at(best).mse))
        best = cell;
    }
    if (best.empty()) continue;
    text += std::string(text.empty() ? "" : "; ") + (norm == std::string("none") ? "no norm" : norm) + ": " +
            cell_result(res, best);
  }
  return text;
}

// "LN-LSTM 2.5e-04 (lower) vs LSTM 4.0e-04" for the cell pair (plain, normalized) at their
// best lrs; a cell without a finished run is named as diverged.
std::string change_text(const Results& res, const std::string& plain, const std::string& normed) {
  const double a = res.by_cell.at(plain).mse, b = res.by_cell.at(normed).mse;
  const auto side = [](const std::string& cell, double mse) {
    return std::string(cell_title(cell)) +
           (std::isfinite(mse) ? " " + short_num(mse) : " diverged in every run");
  };
  const std::string verdict = !std::isfinite(a) || !std::isfinite(b) ? ""
                              : b < a                                ? " (lower)"
                              : b > a                                ? " (higher)"
                                                                     : " (the same)";
  return side(normed, b) + verdict + " vs " + side(plain, a);
}

std::string long_reading_text(const Results& res, const Settings& s) {
  const CellBest& rnn = res.by_cell.at("rnn");
  std::string rnn_text =
      "**Reading.** At T = " + std::to_string(s.seq_len) + " the plain RNN's best mean final test MSE is " +
      (rnn.stats.mse_n ? short_num(rnn.mse) + " (lr " + short_num(rnn.lr) + "), " +
                             (rnn.mse < kBaseline ? "below" : "not below") +
                             " the predict-the-mean baseline " + fixed(kBaseline, 3)
                       : std::string("not reached (every run diverged)")) +
      ": it learned the task in " + fixed(rnn.stats.learned, 0) + " of " + fixed(rnn.stats.n, 0) + " runs. ";
  std::string gated;
  for (const char* cell : {"lstm", "gru", "lnlstm"})
    gated += std::string(gated.empty() ? "" : ", ") + cell_result(res, cell);
  return rnn_text + "The gated cells: " + gated + ". Best cell per normalization: " + by_norm_text(res, s) +
         ". Pairwise, LayerNorm on the LSTM: " + change_text(res, "lstm", "lnlstm") +
         "; on the tanh RNN: " + change_text(res, "rnn", "lnrnn_separate") + " and " +
         change_text(res, "rnn", "lnrnn_summed") +
         "; BatchNorm on the tanh RNN: " + change_text(res, "rnn", "bnrnn") + ".";
}

void add_summary(const Results& res, const Settings& s, Summary& summary) {
  summary["e5"] = {{"seq_len", s.seq_len},
                   {"best_cell", res.best_cell},
                   {"best_lr", res.best_lr},
                   {"best_final_test_mse", res.best_mse}};
  for (const auto& cell : s.cells) {
    const CellStats& a = res.agg.at({cell, s.lrs.back()});
    summary["e5"]["diverged_fraction_lr_max"][cell] = a.div / a.n;
  }
}

void add_long_summary(const Results& res, const Settings& s, Summary& summary) {
  Summary& j = summary["e5"]["long"];
  j = {{"seq_len", s.seq_len},
       {"steps", s.steps},
       {"baseline_mse", kBaseline},
       {"learned_below", kLearned},
       {"best_cell", res.best_cell},
       {"best_lr", res.best_lr},
       {"best_final_test_mse", res.best_mse}};
  for (const auto& cell : s.cells) {
    const CellBest& cb = res.by_cell.at(cell);
    j["cells"][cell] = {{"norm", cell_norm(cell)},
                        {"best_lr", cb.lr},
                        {"final_test_mse", cb.stats.mse_n ? cb.mse : std::nan("")},
                        {"learned_fraction", cb.stats.learned / cb.stats.n},
                        {"diverged_fraction", cb.stats.div / cb.stats.n}};
  }
}

}  // namespace

void experiment_rnn_stability(const Config& c, Report& rep, Summary& summary) {
  const Settings short_s = short_settings(c), long_s = long_settings(c);
  const auto rows = run_cells(c, {long_s, short_s});  // the longest runs first: fewer idle workers at the end
  const Results short_res = aggregate(rows, short_s), long_res = aggregate(rows, long_s);

  rep.heading(2, "5. Recurrent networks: stability over learning rates");
  rep.paragraph(intro_text(short_s));
  report_table(short_res, short_s, rep);
  report_curves(c, short_s, short_res, "e5_rnn_curves", rep);
  rep.paragraph(reading_text(short_res, short_s));
  add_summary(short_res, short_s, summary);

  rep.heading(3, "A longer dependency: T = " + std::to_string(long_s.seq_len) + ", with gated cells");
  rep.paragraph(long_intro_text(long_s));
  report_table(long_res, long_s, rep);
  report_curves(c, long_s, long_res, "e5_rnn_long_curves", rep);
  rep.paragraph(long_reading_text(long_res, long_s));
  add_long_summary(long_res, long_s, summary);
}

}  // namespace lab
