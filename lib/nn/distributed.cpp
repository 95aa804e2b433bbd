#include "tapegrad/nn/distributed.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace tapegrad {

namespace {

// This rank's model as 5 exact doubles: parameter count and values, buffer count and values,
// and a hash of every shape (48 bits, exact in a double).
template <class T>
std::vector<double> model_layout(const std::vector<Parameter<T>*>& params,
                                 const std::vector<xt::xarray<T>*>& bufs) {
  std::uint64_t h = 1469598103934665603ull;
  double pv = 0, bv = 0;
  const auto mix = [&](const Shape& s) {
    h = (h ^ s.size()) * 1099511628211ull;
    for (const std::size_t d : s) h = (h ^ d) * 1099511628211ull;
  };
  for (const Parameter<T>* p : params) {
    mix(p->shape());
    pv += static_cast<double>(p->size());
  }
  for (const xt::xarray<T>* b : bufs) {
    mix(b->shape());
    bv += static_cast<double>(b->size());
  }
  return {static_cast<double>(params.size()), pv, static_cast<double>(bufs.size()), bv,
          static_cast<double>(h >> 16)};
}

}  // namespace

template <class T>
DistributedDataParallel<T>::DistributedDataParallel(std::shared_ptr<Module<T>> module,
                                                    DistributedDataParallelOptions options, dist::Group group)
    : module_(std::move(module)), options_(options), group_(group) {
  if (!module_) throw ValueError("DistributedDataParallel: the module is null");
  if (!(options_.bucket_cap_mb > 0) || !std::isfinite(options_.bucket_cap_mb)) {
    throw ValueError("DistributedDataParallel: bucket_cap_mb must be positive and finite, got " +
                     std::to_string(options_.bucket_cap_mb));
  }
  this->register_module("module", module_);
  this->append_buffers(buffers_);
  check_same_model_everywhere();
  broadcast_state();

  // Buckets in reverse order of parameters(), up to the cap each.
  const double cap_values = options_.bucket_cap_mb * 1024.0 * 1024.0 / sizeof(T);
  const std::vector<Parameter<T>*> params = this->parameters();
  std::size_t in_bucket = 0;
  for (auto it = params.rbegin(); it != params.rend(); ++it) {
    Parameter<T>* p = *it;
    if (!p->requires_grad) continue;
    if (buckets_.empty() || (in_bucket > 0 && static_cast<double>(in_bucket + p->size()) > cap_values)) {
      buckets_.emplace_back();
      in_bucket = 0;
    }
    buckets_.back().params.push_back(p);
    in_bucket += p->size();
    buckets_.back().flat.resize(in_bucket);
  }
  std::size_t buffer_values = 0;
  for (const xt::xarray<T>* b : buffers_) buffer_values += b->size();
  buffer_flat_.resize(buffer_values);
}

// The same parameter and buffer shapes on every rank, checked collectively: every rank throws
// the same ShapeError, naming each rank's counts.
template <class T>
void DistributedDataParallel<T>::check_same_model_everywhere() {
  const std::vector<double> mine = model_layout(this->parameters(), buffers_);
  std::vector<double> hi = mine, lo = mine;
  dist::allreduce(hi.data(), hi.size(), dist::ReduceOp::max, group_);
  dist::allreduce(lo.data(), lo.size(), dist::ReduceOp::min, group_);
  if (hi == lo) return;
  const int ranks = group_.size();
  std::vector<double> all(4 * static_cast<std::size_t>(ranks), 0.0);  // an allgather, by a sum
  std::copy(mine.begin(), mine.begin() + 4, all.begin() + 4 * static_cast<std::ptrdiff_t>(group_.rank()));
  dist::allreduce(all.data(), all.size(), dist::ReduceOp::sum, group_);
  std::string each;
  for (int r = 0; r < ranks && r < 16; ++r) {
    const double* e = all.data() + 4 * static_cast<std::size_t>(r);
    each += (r ? "; rank " : "rank ") + std::to_string(r) + ": " +
            std::to_string(static_cast<long long>(e[0])) + " parameters (" +
            std::to_string(static_cast<long long>(e[1])) + " values), " +
            std::to_string(static_cast<long long>(e[2])) + " buffers (" +
            std::to_string(static_cast<long long>(e[3])) + " values)";
  }
  throw ShapeError("DistributedDataParallel: the " + std::to_string(ranks) +
                   " ranks must build the same model (the same parameter and buffer shapes, in order), but " +
                   each + (hi[4] != lo[4] && hi[1] == lo[1] ? " (same counts, different shapes)" : ""));
}

template <class T>
void DistributedDataParallel<T>::broadcast_state() {
  for (Parameter<T>* p : this->parameters()) {
    dist::broadcast(p->value, 0, group_);
    p->bump();
  }
  for (xt::xarray<T>* b : buffers_) dist::broadcast(*b, 0, group_);
}

template <class T>
void DistributedDataParallel<T>::sync_buffers() {
  T* f = buffer_flat_.data();
  for (const xt::xarray<T>* b : buffers_) f = std::copy(b->data(), b->data() + b->size(), f);
  dist::broadcast(buffer_flat_.data(), buffer_flat_.size(), 0, group_, dist::Verify::none);
  const T* g = buffer_flat_.data();
  for (xt::xarray<T>* b : buffers_) {
    std::copy(g, g + b->size(), b->data());
    g += b->size();
  }
}

template <class T>
Var<T> DistributedDataParallel<T>::forward(Tape<T>& t, const Var<T>& x) {
  if (options_.broadcast_buffers && this->is_training() && !buffer_flat_.empty()) sync_buffers();
  return (*module_)(t, x);
}

template <class T>
void DistributedDataParallel<T>::sync_gradients() {
  for (Bucket& b : buckets_) {
    std::size_t k = 0;
    for (Parameter<T>* p : b.params) k += p->size();
    if (k != b.flat.size()) {
      throw StateError(
          "DistributedDataParallel::sync_gradients: the parameters changed size since construction (" +
          std::to_string(k) + " gradient values for a bucket of " + std::to_string(b.flat.size()) + ")");
    }
  }
  for (Bucket& b : buckets_) {
    T* f = b.flat.data();
    for (Parameter<T>* p : b.params) f = std::copy(p->grad().data(), p->grad().data() + p->size(), f);
    dist::allreduce(b.flat.data(), b.flat.size(), dist::ReduceOp::mean, group_, dist::Verify::none);
    const T* g = b.flat.data();
    for (Parameter<T>* p : b.params) {
      std::copy(g, g + p->size(), p->mutable_grad().data());
      g += p->size();
    }
  }
}

template <class T>
void DistributedDataParallel<T>::backward(Tape<T>& tape, const Var<T>& loss) {
  tape.backward(loss);
  sync_gradients();
}

template <class T>
std::size_t DistributedDataParallel<T>::bucket_size(std::size_t i) const {
  if (i >= buckets_.size()) {
    throw ValueError("DistributedDataParallel::bucket_size: bucket " + std::to_string(i) + " of " +
                     std::to_string(buckets_.size()));
  }
  return buckets_[i].flat.size();
}

template class DistributedDataParallel<float>;
template class DistributedDataParallel<double>;

}  // namespace tapegrad
