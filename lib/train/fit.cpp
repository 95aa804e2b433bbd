#include "tapegrad/train/fit.hpp"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <string>

#include "tapegrad/core/shape.hpp"

namespace tapegrad {

template <class T>
EpochStats train_epoch(DataLoader<T>& loader, Optimizer<T>& optimizer, Tape<T>& tape,
                       const LossFn<T>& loss_fn, ProgressLine* progress, std::size_t epoch) {
  return train_epoch(loader, optimizer, tape, loss_fn, StepHooks<T>{}, progress, epoch);
}

template <class T>
EpochStats train_epoch(DataLoader<T>& loader, Optimizer<T>& optimizer, Tape<T>& tape,
                       const LossFn<T>& loss_fn, const StepHooks<T>& hooks, ProgressLine* progress,
                       std::size_t epoch) {
  EpochStats stats;
  double loss_sum = 0;
  for (const Batch<T>& batch : loader) {
    tape.reset();
    Var<T> loss = loss_fn(tape, batch);
    if (loss.size() != 1) {
      throw ShapeError("train_epoch: the loss function must return one value; got shape " +
                       shape_str(loss.shape()));
    }
    const double value = static_cast<double>(loss.item());
    optimizer.zero_grad();
    tape.backward(loss);
    if (hooks.before_step) hooks.before_step(stats.steps, value, optimizer);
    optimizer.step();
    if (hooks.after_step) hooks.after_step(stats.steps, value, optimizer);
    loss_sum += value;
    ++stats.steps;
    stats.examples += batch.size();
    if (progress) progress->step(epoch, value, batch.size());
  }
  stats.mean_loss = stats.steps ? loss_sum / static_cast<double>(stats.steps) : 0;
  return stats;
}

template <class T>
std::vector<std::int64_t> argmax_rows(const xt::xarray<T>& logits) {
  if (logits.dimension() != 2) {
    throw ShapeError("argmax_rows: expected logits of shape (N, C); got " + shape_str(logits.shape()));
  }
  const std::size_t n = logits.shape()[0], c = logits.shape()[1];
  std::vector<std::int64_t> out(n);
  for (std::size_t i = 0; i < n; ++i) {
    const T* row = logits.data() + i * c;
    out[i] = static_cast<std::int64_t>(std::max_element(row, row + c) - row);
  }
  return out;
}

namespace {
// 0, or a size beyond PTRDIFF_MAX: a negative int converted to std::size_t (-1 became
// 2^64 - 1, which made DataLoader's batch count overflow to zero batches and the accuracy 0).
void check_batch_size(const char* who, std::size_t batch_size) {
  const bool negative = batch_size > static_cast<std::size_t>(std::numeric_limits<std::ptrdiff_t>::max());
  if (batch_size != 0 && !negative) return;
  const std::string value =
      negative ? std::to_string(static_cast<long long>(batch_size)) +
                     " (a negative number converted to std::size_t: " + std::to_string(batch_size) + ")"
               : "0";
  throw ValueError(std::string(who) + ": batch_size must be >= 1; got " + value);
}
}  // namespace

template <class T>
double classification_accuracy(Module<T>& model, const Dataset<T>& data, std::size_t batch_size) {
  if (!data.has_labels()) throw StateError("classification_accuracy: the dataset has no labels");
  if (data.empty()) throw ValueError("classification_accuracy: the dataset is empty");
  check_batch_size("classification_accuracy", batch_size);
  // Eval-mode forwards on this thread only: the model's mode is not touched, so concurrent
  // calls (and a training loop's mode) cannot be flipped under one another.
  EvalModeGuard eval_mode;
  NoGradGuard no_grad;
  std::size_t correct = 0;
  Tape<T> tape;
  DataLoader<T> loader(data, std::min(batch_size, data.size()));
  for (const Batch<T>& batch : loader) {
    tape.reset();
    const auto pred = argmax_rows(model(tape, tape.input(batch.inputs)).value());
    for (std::size_t i = 0; i < pred.size(); ++i) correct += pred[i] == batch.labels[i];
  }
  return static_cast<double>(correct) / static_cast<double>(data.size());
}

#define TAPEGRAD_INSTANTIATE(T)                                                                 \
  template EpochStats train_epoch<T>(DataLoader<T>&, Optimizer<T>&, Tape<T>&, const LossFn<T>&, \
                                     ProgressLine*, std::size_t);                               \
  template EpochStats train_epoch<T>(DataLoader<T>&, Optimizer<T>&, Tape<T>&, const LossFn<T>&, \
                                     const StepHooks<T>&, ProgressLine*, std::size_t);          \
  template double classification_accuracy<T>(Module<T>&, const Dataset<T>&, std::size_t);       \
  template std::vector<std::int64_t> argmax_rows<T>(const xt::xarray<T>&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
