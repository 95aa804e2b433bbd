#pragma once
// The lab's training loop for classifiers: an MLP from make_net (lab.hpp) trained for a fixed
// number of optimizer steps (not epochs, so runs with different batch sizes take the same
// number of updates), with periodic test evaluation, divergence detection and evaluation in
// either mode.
//
// Batches come from the DataLoader's seeded epoch orders with drop_last, so every step sees
// exactly batch_size examples (a last batch of 1 would be invalid for BatchNorm in training
// mode) and the order is a function of order_seed alone.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "lab.hpp"

namespace lab {

enum class Optim { SGD, Adam };

struct TrainConfig {
  Norm norm = Norm::None;
  std::vector<std::size_t> hidden = {64, 64};
  std::size_t batch_size = 32;
  std::size_t steps = 1000;
  Optim optim = Optim::SGD;
  double lr = 0.1;
  double momentum = 0;           // SGD only
  std::uint64_t init_seed = 0;   // the weights
  std::uint64_t order_seed = 0;  // the shuffling
  // Test evaluation (eval mode) every `eval_every` steps and at the end; 0 = only at the end.
  std::size_t eval_every = 100;
  double target_acc = 0.9;  // steps_to_target = first evaluation step reaching this accuracy
  // Diverged: a non-finite loss at any step, or the mean loss over a window of `window` steps
  // above divergence_factor * ln(C), where ln(C) is the loss of a uniform prediction over C
  // classes (about the loss of a freshly initialized network). The run stops there.
  double divergence_factor = 10;
  std::size_t window = 50;
  // The norms with batch statistics only (uses_batch_statistics): also measure the test
  // accuracy with the network in training mode, in batches of batch_size (see evaluate()).
  bool train_mode_eval = true;
};

struct EvalResult {
  double loss = 0;      // mean cross-entropy (NaN if any logit is non-finite)
  double accuracy = 0;  // rows with a non-finite logit count as wrong
};

struct TrainResult {
  bool diverged = false;
  std::size_t steps_done = 0;
  double steps_to_target = 0;  // NaN if never reached
  std::vector<std::size_t> eval_steps;
  std::vector<double> eval_acc;    // test accuracy (eval mode) at eval_steps
  EvalResult test;                 // at the end, eval mode
  EvalResult train;                // at the end, eval mode, whole training set
  double last_window_loss = 0;     // mean training-step loss over the last full window
  double test_acc_train_mode = 0;  // uses_batch_statistics with train_mode_eval; NaN otherwise
};

// Accuracy and loss of `net` on `data`. Eval mode: one batch per up to 512 examples (the
// result does not depend on the batching beyond rounding). Train mode (meaningful for
// BatchNorm): batches of `batch_size` in dataset order, a leftover of a single example joined
// to the batch before it (a batch of 1 is invalid for BatchNorm); the module's state (running
// statistics) is saved before and restored after, so the measurement changes nothing.
// No gradients are recorded either way; the module's mode is restored.
EvalResult evaluate(tg::Sequential<float>& net, const tg::Dataset<float>& data, bool train_mode,
                    std::size_t batch_size = 512);

// BatchRenorm's limits: the paper's warm-up (r_max = 1, d_max = 0 for 5k steps, then d_max
// reaching 5 at 25k and r_max reaching 3 at 40k) scaled to a run of `steps` steps, so that the
// proportions are the paper's: warm-up over the first 10% of the steps, d_max 5 from 50% on,
// r_max 3 from 80% on.
tg::BatchRenormSchedule renorm_schedule(std::size_t steps);

// Builds make_net(in, cfg.hidden, classes, cfg.norm, cfg.init_seed) and trains it. BatchRenorm
// follows renorm_schedule(cfg.steps).
TrainResult train_classifier(const TrainConfig& cfg, const tg::Dataset<float>& train,
                             const tg::Dataset<float>& test);

// A run's results as sweep metrics, one per name in `names`, in that order. Names: test_acc,
// test_loss, train_acc, train_loss, last_window_loss, diverged (1 or 0), steps_done,
// steps_to_target, test_acc_train_mode; another name throws std::invalid_argument.
std::vector<std::pair<std::string, double>> result_metrics(const TrainResult& r,
                                                           const std::vector<std::string>& names);

// A sweep run's columns for an SGD run of train_classifier: norm, batch_size, lr, momentum,
// steps and hidden ("64-64").
std::vector<std::pair<std::string, std::string>> sgd_params(const TrainConfig& cfg);

// A sweep run's function: train_classifier(cfg, train, test), reported as result_metrics(...,
// metrics). The datasets are held by reference and must outlive the sweep.
std::function<std::vector<std::pair<std::string, double>>()> classifier_fn(
    const TrainConfig& cfg, const std::vector<std::string>& metrics, const tg::Dataset<float>& train,
    const tg::Dataset<float>& test);

// --- MNIST (sections 7 and 8) ----------------------------------------------------------------

// A seeded train/test split of MNIST digits.
struct MnistSplit {
  std::size_t total = 0;  // digits loaded
  std::pair<tg::Dataset<float>, tg::Dataset<float>> train_test;
  const tg::Dataset<float>& train() const { return train_test.first; }
  const tg::Dataset<float>& test() const { return train_test.second; }
};

// Loads `per_class` digits per class (0 = all) from c.mnist_dir and splits them with
// tg::train_test_split(test_fraction, split_seed). When they cannot be loaded: adds the
// "Not run" paragraph to the report, sets summary[key] = {available: false, mnist_dir, error},
// says so on stderr and returns nothing.
std::optional<MnistSplit> load_mnist_split(const Config& c, std::size_t per_class, double test_fraction,
                                           std::uint64_t split_seed, const std::string& key, Report& rep,
                                           Summary& summary);

// One seed of an Adam run on MNIST: `epochs` epochs at batch_size (drop_last), no evaluation
// before the end, the initial weights and the order from derive_seed(c.seed, section, seed, 1|2).
struct MnistRunSpec {
  Norm norm = Norm::None;
  std::size_t batch_size = 32;
  std::vector<std::size_t> hidden;
  double lr = 1e-3;
  std::size_t epochs = 1, seed = 0;
};

// The run's TrainConfig, and a Run with its key ("layer/B4/s0") and columns (norm, batch_size,
// optimizer, lr, epochs, hidden, train_size, test_size, seed, init_seed, order_seed) and no
// function yet: the caller may add columns, then sets run.fn (train_classifier on `data`).
std::pair<TrainConfig, Run> mnist_run(const Config& c, std::uint64_t section, const MnistRunSpec& spec,
                                      const MnistSplit& data);

// Statistics of a few values: mean, sample std (0 for one value), min, max. NaNs are skipped;
// all-NaN gives NaN everywhere.
struct Stats {
  double mean, std, min, max;
  std::size_t n;
};
Stats stats(const std::vector<double>& v);

// A seed derived from a base seed and up to three indices (splitmix64 chain): nearby inputs
// give unrelated seeds.
std::uint64_t derive_seed(std::uint64_t base, std::uint64_t a, std::uint64_t b = 0, std::uint64_t c = 0);

// "0.003", "1", "3e-05": a learning rate or similar as a short, exact-enough column value.
std::string param_num(double v);

}  // namespace lab
