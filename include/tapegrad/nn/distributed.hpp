#pragma once
// torch.nn.parallel.DistributedDataParallel on tapegrad::dist (dist.hpp): data-parallel training
// with one model replica per rank.
//
//   tg::dist::Context mpi(argc, argv);
//   auto net = std::make_shared<tg::Sequential<float>>(...);
//   tg::DistributedDataParallel<float> model(net);      // every rank now holds rank 0's weights
//   tg::Adam<float> opt(model.parameters(), 1e-3);
//   for (...) {                                         // each rank: its own shard of every batch
//     tg::Tape<float> tape;                             //   (DistributedSampler)
//     auto loss = tg::cross_entropy(model(tape, tape.constant(x)), labels);
//     model.zero_grad();
//     model.backward(tape, loss);                       // tape.backward(loss); sync_gradients()
//     tg::clip_grad_norm(model.parameters(), 1.0);      // optional: after the average
//     opt.step();                                       // the same step on every rank
//   }
//
// Construction broadcasts every parameter and buffer from rank 0 (the ranks must build the
// same model: the parameter and buffer shapes are checked collectively, a mismatch is a
// ShapeError on every rank naming this rank's and the shapes). sync_gradients() replaces every
// trainable parameter's gradient by its mean over the ranks. With each rank's loss the mean over
// its b examples, that is the gradient of the mean loss over the global batch of R * b examples:
// the ranks' optimizer steps are those of one process training at batch R * b, and stay
// identical on every rank, with any optimizer and with clip_grad_norm (clip after the average:
// every rank then clips the same gradients). Only BatchNorm breaks that equivalence (each replica
// normalises over its own b examples): convert_sync_batchnorm (nn/sync_batch_norm.hpp) fixes it.
//
// Buckets: the gradients travel in a few large allreduces over flat buffers allocated at
// construction and reused by every step (no allocation per step). Parameters are bucketed in
// reverse order of parameters() (roughly the order backward finishes them, as PyTorch does) up
// to bucket_cap_mb (PyTorch's default, 25 MB) per bucket: small models need one allreduce.
//
// Differences from PyTorch, deliberate:
//  - No autograd hook: the average runs when sync_gradients() (or backward(tape, loss)) is
//    called, after the whole backward; calling it only every k steps is PyTorch's no_sync()
//    (gradient accumulation). Every rank must call it the same number of times.
//  - broadcast_buffers (default true, as PyTorch) sends rank 0's buffers (say BatchNorm's running
//    statistics) to every rank at the start of each TRAINING forward, in one broadcast; an eval
//    forward communicates nothing (it writes nothing into the model: see nn/module.hpp).
//  - The state_dict's keys start with "module." as PyTorch's DDP's do.
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "tapegrad/dist.hpp"
#include "tapegrad/nn/module.hpp"

namespace tapegrad {

struct DistributedDataParallelOptions {
  double bucket_cap_mb = 25.0;    // the largest bucket, in MiB of gradient (> 0)
  bool broadcast_buffers = true;  // rank 0's buffers to every rank before each training forward
};

template <class T>
class DistributedDataParallel : public Module<T> {
 public:
  // ValueError for a null module or bucket_cap_mb not > 0 (or NaN); StateError when MPI is not
  // initialised; ShapeError when the ranks' models differ.
  explicit DistributedDataParallel(std::shared_ptr<Module<T>> module,
                                   DistributedDataParallelOptions options = {},
                                   dist::Group group = dist::Group::world());

  // The module's forward (after the buffer broadcast in training mode, see above).
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  // Every trainable parameter's gradient becomes its mean over the ranks.
  void sync_gradients();
  // tape.backward(loss), then sync_gradients().
  void backward(Tape<T>& tape, const Var<T>& loss);

  Module<T>& module() { return *module_; }
  const DistributedDataParallelOptions& options() const { return options_; }
  dist::Group group() const { return group_; }
  std::size_t num_buckets() const { return buckets_.size(); }
  // The number of gradient values in bucket i (ValueError when i >= num_buckets()).
  std::size_t bucket_size(std::size_t i) const;
  std::string type_name() const override { return "DistributedDataParallel"; }

 private:
  struct Bucket {
    std::vector<Parameter<T>*> params;
    std::vector<T> flat;
  };
  void check_same_model_everywhere();
  void broadcast_state();
  void sync_buffers();

  std::shared_ptr<Module<T>> module_;
  DistributedDataParallelOptions options_;
  dist::Group group_;
  std::vector<Bucket> buckets_;
  std::vector<xt::xarray<T>*> buffers_;
  std::vector<T> buffer_flat_;
};

extern template class DistributedDataParallel<float>;
extern template class DistributedDataParallel<double>;

}  // namespace tapegrad
