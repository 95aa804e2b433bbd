#pragma once
// The plain training loop, written once:
//
//   for each batch:  tape.reset();  loss = loss_fn(tape, batch);
//                    optimizer.zero_grad();  tape.backward(loss);  optimizer.step();
//
// and the evaluation of a classifier's accuracy. The examples and tests use these; a training
// loop of your own is the same few lines.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

#include "tapegrad/core/tape.hpp"
#include "tapegrad/data/dataloader.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/optim/optimizer.hpp"
#include "tapegrad/train/progress.hpp"

namespace tapegrad {

// Records the loss of one batch on the tape and returns it (a one-element Var).
template <class T>
using LossFn = std::function<Var<T>(Tape<T>&, const Batch<T>&)>;

struct EpochStats {
  double mean_loss = 0;  // average of the batches' losses (accumulated in double)
  std::size_t steps = 0;
  std::size_t examples = 0;
};

// One pass over `loader` (its next epoch), one optimizer step per batch. `epoch` (1-based) is
// only shown on the progress line, which is optional.
template <class T>
EpochStats train_epoch(DataLoader<T>& loader, Optimizer<T>& optimizer, Tape<T>& tape,
                       const LossFn<T>& loss_fn, ProgressLine* progress = nullptr, std::size_t epoch = 0);

// Per-step hooks, each called with the step's index in this epoch (0-based), its loss and the
// optimizer. Either may be empty.
template <class T>
using StepHook = std::function<void(std::size_t step, double loss, Optimizer<T>& optimizer)>;
template <class T>
struct StepHooks {
  // After tape.backward(loss), before optimizer.step(): the grads are this batch's (clip them
  // here: clip_grad_norm(optimizer.params(), 1.0)).
  StepHook<T> before_step;
  // After optimizer.step(): a per-batch scheduler's step(), logging.
  StepHook<T> after_step;
};

// train_epoch with hooks:
//   tape.reset(); loss = loss_fn(tape, batch); optimizer.zero_grad(); tape.backward(loss);
//   hooks.before_step(i, loss, optimizer); optimizer.step(); hooks.after_step(i, loss, optimizer);
// An exception from a hook ends the epoch there and propagates (before_step's: this batch's
// step not taken).
template <class T>
EpochStats train_epoch(DataLoader<T>& loader, Optimizer<T>& optimizer, Tape<T>& tape,
                       const LossFn<T>& loss_fn, const StepHooks<T>& hooks, ProgressLine* progress = nullptr,
                       std::size_t epoch = 0);

// The fraction of examples of a classification dataset whose largest logit is at their
// label, in batches of `batch_size`, without recording gradients. The forwards run as in eval
// mode whatever the model's mode (as PyTorch code does with model.eval() ... model.train()),
// but through an EvalModeGuard (nn/module.hpp): the model's mode is never switched and nothing
// in it is written (no running statistics, no Dropout draws). So it may be called in the middle
// of training, and by several threads at once on one model, as long as nothing trains the
// model or switches its mode meanwhile. Throws StateError for a dataset without labels,
// ValueError for an empty one or a batch_size of 0 or a negative number converted to
// std::size_t (the message names it, e.g. -1).
template <class T>
double classification_accuracy(Module<T>& model, const Dataset<T>& data, std::size_t batch_size = 1000);

// Index of the largest value in each row of a (N, C) array (the first one on ties).
template <class T>
std::vector<std::int64_t> argmax_rows(const xt::xarray<T>& logits);

}  // namespace tapegrad
