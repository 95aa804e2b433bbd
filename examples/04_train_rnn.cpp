// Chapter 4: training a recurrent network.
//
// The adding problem (Hochreiter & Schmidhuber 1997): a sequence of T steps, each a random value
// in [0, 1) and a marker bit; exactly two steps are marked, one in each half. The target is the
// sum of the two marked values. Always answering the mean (1.0) scores an MSE of 1/6 ~ 0.167:
// a network has learned something only when it beats that clearly, which needs it to carry the
// first marked value across up to T steps. With --task sine the network predicts the next value
// of a sine of random frequency and phase; the baseline there is repeating the last value.
//
// The model: a recurrent cell over the sequence (--cell rnn: torch.nn.RNN's Elman cell;
// lnrnn: LayerNorm RNN, Ba et al. 2016; bnrnn: BatchNorm RNN with per-step statistics,
// Cooijmans et al. 2016), then a Linear head on the last hidden state; MSE loss, Adam, and
// gradient-norm clipping at 1 (an RNN's gradients can spike).
//
//   04_train_rnn                    # adding problem, T = 20, tanh RNN
//   04_train_rnn --cell lnrnn
//   04_train_rnn --task sine --seq-len 30
//   04_train_rnn --log rnn.csv --plot  # per-epoch metrics in rnn.csv, their curves in rnn.png
#include <chrono>
#include <cmath>
#include <cstdio>
#include <optional>

#include <CLI/CLI.hpp>
#include <tapegrad/nn/norm_rnn.hpp>
#include <tapegrad/nn/rnn.hpp>
#include <tapegrad/tapegrad.hpp>

#include "plot_flag.hpp"

namespace tg = tapegrad;

namespace {

struct Options {
  std::string task = "adding";
  std::string cell = "rnn";
  std::size_t seq_len = 20;
  std::size_t hidden = 64;
  std::size_t train_size = 20000;
  std::size_t test_size = 2000;
  std::size_t batch_size = 50;
  std::size_t epochs = 8;
  double lr = 3e-3;
  double clip = 1.0;
  std::uint64_t seed = 0;
  std::string log;
  double max_mse = 0;  // exit status 1 if the final test MSE is above this (0 = no check)
};

// cell over (N, T, I) batch-first sequences, then head(last hidden state) -> (N, 1).
class SequenceRegressor : public tg::Module<float> {
 public:
  SequenceRegressor(const Options& o, std::size_t inputs, tg::Generator& gen) {
    if (o.cell == "rnn") {
      cell_ = &this->register_module(
          "rnn", std::make_shared<tg::RNN<float>>(inputs, o.hidden, tg::RNNOptions().batch_first(true), gen));
    } else if (o.cell == "lnrnn") {
      cell_ = &this->register_module("rnn", std::make_shared<tg::LNRNN<float>>(
                                                inputs, o.hidden, tg::LNRNNOptions().batch_first(true), gen));
    } else {
      cell_ = &this->register_module(
          "rnn", std::make_shared<tg::BNRNN<float>>(
                     inputs, o.hidden, tg::BNRNNOptions().batch_first(true).max_length(o.seq_len), gen));
    }
    head_ = &this->register_module(
        "head", std::make_shared<tg::Linear<float>>(o.hidden, 1, tg::LinearOptions(), gen));
  }
  tg::Var<float> forward(tg::Tape<float>& t, const tg::Var<float>& x) override {
    const tg::Var<float> states = cell_->forward(t, x);  // (N, T, H)
    const auto last = static_cast<std::ptrdiff_t>(t.shape(states)[1]) - 1;
    return head_->forward(t, tg::select(states, 1, last));  // (N, 1)
  }
  std::string type_name() const override { return "SequenceRegressor"; }

 private:
  tg::Module<float>* cell_;
  tg::Module<float>* head_;
};

tg::Dataset<float> make_data(const Options& o, std::size_t n, std::uint64_t seed) {
  return o.task == "adding" ? tg::adding_problem<float>(n, o.seq_len, seed)
                            : tg::sine_next_step<float>(n, o.seq_len, seed);
}

// Mean squared error of the model on a whole dataset, in eval mode, without a graph.
double test_mse(tg::Module<float>& model, const tg::Dataset<float>& data) {
  model.eval();
  tg::NoGradGuard no_grad;
  tg::Tape<float> tape;
  tg::DataLoader<float> loader(data, 500);
  double sum = 0;
  for (const tg::Batch<float>& b : loader) {
    tape.reset();
    const auto pred = model.forward(tape, tape.input(b.inputs)).value();
    for (std::size_t i = 0; i < pred.size(); ++i) {
      const double d = static_cast<double>(pred.data()[i]) - b.targets.data()[i];
      sum += d * d;
    }
  }
  model.train();
  return sum / static_cast<double>(data.size());
}

// The trivial predictors' test MSE: the training targets' mean, and (for sine) the last input.
std::pair<double, double> baselines(const tg::Dataset<float>& train, const tg::Dataset<float>& test,
                                    std::size_t seq_len) {
  double mean = 0;
  for (float y : train.targets()) mean += y;
  mean /= static_cast<double>(train.size());
  double mse_mean = 0, mse_last = 0;
  const auto& x = test.inputs();
  const std::size_t feat = x.shape()[2];
  for (std::size_t i = 0; i < test.size(); ++i) {
    const double y = test.targets().data()[i];
    const double last = x.data()[(i * seq_len + seq_len - 1) * feat];
    mse_mean += (y - mean) * (y - mean);
    mse_last += (y - last) * (y - last);
  }
  const auto n = static_cast<double>(test.size());
  return {mse_mean / n, mse_last / n};
}

// How a test MSE compares with the baseline's, in words: "12.3x lower", "35.2% lower",
// "2.1x higher: worse than the baseline", "not finite: training diverged".
std::string versus_baseline(double mse, double baseline) {
  char buf[96];
  if (!std::isfinite(mse)) return "not finite: training diverged";
  if (mse == baseline) return "the same as the baseline";
  if (mse == 0) return "0: no error at all";
  if (mse < baseline) {
    if (baseline / mse >= 2)
      std::snprintf(buf, sizeof buf, "%.1fx lower", baseline / mse);
    else
      std::snprintf(buf, sizeof buf, "%.1f%% lower", 100 * (1 - mse / baseline));
  } else {
    if (mse / baseline >= 2)
      std::snprintf(buf, sizeof buf, "%.1fx higher: worse than the baseline", mse / baseline);
    else
      std::snprintf(buf, sizeof buf, "%.1f%% higher: worse than the baseline", 100 * (mse / baseline - 1));
  }
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"Chapter 4: train an RNN on the adding problem or next-step sine prediction"};
  app.option_defaults()->always_capture_default();
  app.add_option("--task", o.task, "adding or sine")->check(CLI::IsMember({"adding", "sine"}));
  app.add_option("--cell", o.cell, "rnn, lnrnn or bnrnn")->check(CLI::IsMember({"rnn", "lnrnn", "bnrnn"}));
  app.add_option("--seq-len", o.seq_len, "sequence length T")->check(CLI::Range(2, 10000));
  app.add_option("--hidden", o.hidden, "hidden units")->check(CLI::Range(1, 100000));
  app.add_option("--train-size", o.train_size, "training sequences")->check(CLI::Range(2, 100000000));
  app.add_option("--test-size", o.test_size, "test sequences")->check(CLI::Range(1, 100000000));
  app.add_option("--batch-size", o.batch_size, "sequences per step (>= 2 for bnrnn)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--epochs", o.epochs, "passes over the training set")->check(CLI::Range(1, 1000000));
  app.add_option("--lr", o.lr, "Adam learning rate")->check(CLI::PositiveNumber);
  app.add_option("--clip", o.clip, "clip the gradient norm to this (0 = off)")->check(CLI::NonNegativeNumber);
  app.add_option("--seed", o.seed, "seed of the data, the initialization and the shuffling");
  app.add_option("--log", o.log, "write per-epoch metrics to this CSV file");
  examples::PlotFlag plot;
  plot.add_to(app);
  app.add_option("--max-mse", o.max_mse, "exit with status 1 if the final test MSE is above this")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  o.log = plot.csv_path(o.log, "04_train_rnn");
  if (o.cell == "bnrnn" && o.batch_size < 2) {
    std::fprintf(stderr, "04_train_rnn: --cell bnrnn needs --batch-size >= 2 (batch statistics)\n");
    return 2;
  }

  try {
    const tg::Dataset<float> train = make_data(o, o.train_size, o.seed);
    const tg::Dataset<float> test = make_data(o, o.test_size, o.seed + 1);
    tg::Generator gen(o.seed);
    SequenceRegressor model(o, train.example_shape()[1], gen);
    tg::Adam<float> opt(model.parameters(), o.lr);
    tg::DataLoader<float> loader(train, o.batch_size, /*shuffle=*/true, o.seed);
    std::optional<tg::MetricsLog> log;
    if (!o.log.empty()) log.emplace(o.log);

    const auto [base_mean, base_last] = baselines(train, test, o.seq_len);
    std::printf("task %s, T = %zu: %zu training and %zu test sequences\n", o.task.c_str(), o.seq_len,
                train.size(), test.size());
    std::printf("model (%zu parameters):\n%s", model.num_parameters(), model.to_string().c_str());
    std::printf("Adam lr %g, batch size %zu, %zu epochs (%zu steps), gradient norm clipped at %g\n", o.lr,
                o.batch_size, o.epochs, o.epochs * loader.size(), o.clip);
    std::printf("baselines on the test set: predict the mean MSE %.4f", base_mean);
    if (o.task == "sine") std::printf(", repeat the last value MSE %.4f", base_last);
    std::printf("\n\n");
    const double baseline = o.task == "adding" ? base_mean : base_last;

    tg::Tape<float> tape;
    tg::ProgressLine progress(o.epochs, o.epochs * loader.size());
    const auto start = std::chrono::steady_clock::now();
    double mse = 0;
    for (std::size_t epoch = 1; epoch <= o.epochs; ++epoch) {
      double loss_sum = 0;
      for (const tg::Batch<float>& b : loader) {
        tape.reset();
        auto loss = tg::mse_loss(model.forward(tape, tape.input(b.inputs)), tape.constant(b.targets));
        opt.zero_grad();
        tape.backward(loss);
        if (o.clip > 0) tg::clip_grad_norm(model.parameters(), o.clip);
        opt.step();
        loss_sum += loss.item();
        progress.step(epoch, loss.item(), b.size());
      }
      mse = test_mse(model, test);
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      const double train_loss = loss_sum / static_cast<double>(loader.size());
      progress.clear();
      std::printf("epoch %3zu/%zu  train MSE %.5f  test MSE %.5f  (%.3f of the baseline)  (%.1f s)\n", epoch,
                  o.epochs, train_loss, mse, mse / baseline, seconds);
      std::fflush(stdout);
      if (log) {
        log->write({{"epoch", static_cast<double>(epoch)},
                    {"train_mse", train_loss},
                    {"test_mse", mse},
                    {"baseline_mse", baseline},
                    {"seconds", seconds}});
      }
    }
    std::printf("\nfinal test MSE %.5f vs the baseline's %.5f: %s\n", mse, baseline,
                versus_baseline(mse, baseline).c_str());
    if (log) std::printf("metrics written to %s\n", o.log.c_str());
    tg::PlotOptions plot_options;
    plot_options.title = "04_train_rnn: " + o.task + ", " + o.cell + ", T = " + std::to_string(o.seq_len);
    plot_options.ylabel = "MSE";
    plot_options.log_y = true;  // the MSE falls by decades on the sine task
    plot.draw(o.log, plot_options);
    if (o.max_mse > 0 && mse > o.max_mse) {
      std::printf("above the allowed %.5f\n", o.max_mse);
      return 1;
    }
  } catch (const tg::Error& e) {
    std::fprintf(stderr, "04_train_rnn: %s\n", e.what());
    return 2;
  }
  return 0;
}
