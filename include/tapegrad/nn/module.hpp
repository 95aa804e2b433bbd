#pragma once
// Modules: named parameters, buffers and child modules, as in PyTorch.
//
// A module owns its state; ops own none. forward(tape, x) records onto the caller's tape and
// binds the module's parameters without copying them (tape.param). Names follow PyTorch, so a
// state_dict from PyTorch maps key for key: "weight", "bias", "running_mean", "0.weight",
// "rnn.weight_hh_l1" ...
//
// Modules are not copyable: tapes and optimizers hold pointers to their parameters. Hold them
// by value where they are built, or in std::shared_ptr inside containers (Sequential).
//
// Inference on several threads: a forward with is_training() false writes nothing into any
// module of the library (no buffer, no scratch member, no generator; per-call scratch is the
// calling thread's own), so threads may share one model for inference, each forwarding on its
// own Tape. Everything else that changes a model (train()/eval(), a training forward,
// load_state_dict, zero_grad, backward into its parameters' gradients, an optimizer step) must
// not overlap with any other use of it: one model trains on one thread at a time. To run an
// eval-mode forward of a model that is in training mode without switching it, use
// EvalModeGuard.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/parameter.hpp"
#include "tapegrad/core/state_dict.hpp"
#include "tapegrad/core/tape.hpp"

namespace tapegrad {

// While an EvalModeGuard lives, every module forwarded ON THIS THREAD behaves as in eval mode
// (is_training() is false: Dropout is the identity, BatchNorm uses and keeps its running
// statistics) though no module's mode changes: train()/eval() are not called (nor on_train),
// and other threads, and this one after the guard, see each module's mode as it was. Guards
// nest. classification_accuracy uses one, so it can evaluate a model in the middle of
// training without switching it, and several threads can evaluate one model at once.
class EvalModeGuard {
 public:
  EvalModeGuard();
  ~EvalModeGuard();
  EvalModeGuard(const EvalModeGuard&) = delete;
  EvalModeGuard& operator=(const EvalModeGuard&) = delete;
  // True while an EvalModeGuard lives on the calling thread.
  static bool active();

 private:
  bool previous_;
};

namespace detail {
// Sees every module call made through Module::operator() or as a Sequential's layer, on the
// thread that installed it: summary() installs one for its forward. Null otherwise, so a call
// costs one thread-local read.
class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  virtual void called(const void* module, const Shape& output) = 0;
};
ForwardObserver* forward_observer() noexcept;
// Installs `o` (null: none) on the calling thread; returns the one it replaces.
ForwardObserver* set_forward_observer(ForwardObserver* o) noexcept;
}  // namespace detail

template <class T>
class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  virtual Var<T> forward(Tape<T>& t, const Var<T>& x) = 0;
  // Calls forward. If it throws, the nodes it recorded (say a Linear's parameter leaves, bound
  // before anomaly mode stopped its op) are dropped, tape.truncate back to the size at entry,
  // before the exception propagates: a failed call leaves the tape as it was. (Buffers a
  // failed forward may have changed are restored by Sequential, see below.)
  Var<T> operator()(Tape<T>& t, const Var<T>& x) {
    const std::size_t size = t.size();
    try {
      Var<T> y = forward(t, x);
      if (detail::ForwardObserver* o = detail::forward_observer()) o->called(this, y.shape());
      return y;
    } catch (...) {
      if (t.size() >= size) t.truncate(size);
      throw;
    }
  }
  // One line describing this module's configuration, e.g. "Linear(in_features=3, ...)".
  virtual std::string extra_repr() const { return ""; }
  virtual std::string type_name() const = 0;
  // The module tree, one module per line, as PyTorch prints it.
  std::string to_string() const;

  // ---- state, with dotted names ("0.weight") ----
  // The lists hold each parameter, buffer or child once, at its first name, also when it is
  // reachable under several (a module used twice: weight tying), as PyTorch's do; the
  // state_dict holds every name, and load_state_dict expects every name.
  std::vector<Parameter<T>*> parameters();
  std::vector<std::pair<std::string, Parameter<T>*>> named_parameters();
  std::vector<std::pair<std::string, xt::xarray<T>*>> named_buffers();
  std::vector<std::pair<std::string, Module<T>*>> named_children();
  std::size_t num_parameters();
  // Parameters and buffers by name, copied.
  StateDict<T> state_dict() const;
  // Replaces every parameter and buffer. Strict: the keys must match exactly and every shape
  // must agree. Everything is checked before anything changes; on error the module is untouched
  // and the message lists every missing key, unexpected key and shape mismatch.
  void load_state_dict(const StateDict<T>& state);

  // ---- mode ----
  void train(bool on = true);
  void eval() { train(false); }
  // The mode set by train()/eval(); false on a thread that holds an EvalModeGuard.
  bool is_training() const { return training_ && !EvalModeGuard::active(); }
  void zero_grad();

  // ---- swapping a child (convert_sync_batchnorm) ----
  // Whether replace_child may swap this module's direct children: Sequential's, yes; a module
  // that also keeps a reference to its child (a layer built around a BatchNorm1d) says no.
  virtual bool children_replaceable() const { return false; }
  // Makes `module` the direct child registered as `name`, in place of the old one (same name,
  // same position). StateError when !children_replaceable(); ValueError for a null module or a
  // name that is not a direct child. Nothing changes on throw.
  void replace_child(const std::string& name, std::shared_ptr<Module<T>> module);

 protected:
  // Called by replace_child after the swap, for a module that keeps its own list of children.
  virtual void on_replace_child(const Module<T>* /*old_child*/,
                                const std::shared_ptr<Module<T>>& /*module*/) {}
  Parameter<T>& register_parameter(const std::string& name, xt::xarray<T> value, bool requires_grad = true);
  xt::xarray<T>& register_buffer(const std::string& name, xt::xarray<T> value);
  // The state of the normalisation layers, under PyTorch's names: "weight" (ones) and "bias"
  // (zeros) of `shape`; "running_mean" (zeros), "running_var" (ones) of n features and the 0-d
  // "num_batches_tracked". The pointers are the caller's members, set to what was registered.
  void register_affine(const Shape& shape, Parameter<T>*& weight, Parameter<T>*& bias);
  void register_running_stats(std::size_t n, xt::xarray<T>*& running_mean, xt::xarray<T>*& running_var,
                              xt::xarray<T>*& num_batches_tracked);
  template <class M>
  M& register_module(const std::string& name, std::shared_ptr<M> module) {
    M& ref = *module;
    add_child(name, std::move(module));
    return ref;
  }
  // Called by train(); modules with mode-dependent children need nothing extra.
  virtual void on_train(bool) {}
  // Appends this module's buffers and its children's, recursively, to `out` (no names, so
  // nothing is allocated once `out` has the capacity).
  void append_buffers(std::vector<xt::xarray<T>*>& out);

 private:
  void add_child(const std::string& name, std::shared_ptr<Module<T>> module);
  void check_new_name(const std::string& name) const;
  template <class F>
  void visit_parameters(const std::string& prefix, F&& f);
  template <class F>
  void visit_buffers(const std::string& prefix, F&& f);
  void print_tree(std::string& out, const std::string& name, int indent) const;

  std::vector<std::pair<std::string, std::unique_ptr<Parameter<T>>>> params_;
  std::vector<std::pair<std::string, std::unique_ptr<xt::xarray<T>>>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module<T>>>> children_;
  bool training_ = true;
};

// Applies its children in order; children are named "0", "1", ...
//
// A forward is all or nothing: if a child throws (say a Linear whose in_features does not
// match, which only shows when that layer runs), the nodes the earlier children recorded are
// dropped (tape.truncate back to the size at entry) and every buffer of every child, recursively
// (a BatchNorm1d's running statistics), gets back the value it had at entry; then the same
// exception propagates. The snapshot is a copy of the buffers into storage kept across calls:
// a few values per BatchNorm1d channel, and no allocation after the first forward. It is taken
// in training mode only (an eval forward changes no buffer): eval forwards write nothing into
// the Sequential, so threads may share one for inference (each with its own tape, see the top
// of this file); a training forward writes the snapshot, so one model trains on one thread at
// a time, as in the lab.
template <class T>
class Sequential : public Module<T> {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module<T>>> layers) {
    for (auto& l : layers) push_back(std::move(l));
  }
  Sequential& push_back(std::shared_ptr<Module<T>> layer);
  template <class M, class... Args>
  M& emplace_back(Args&&... args) {
    auto m = std::make_shared<M>(std::forward<Args>(args)...);
    M& ref = *m;
    push_back(std::move(m));
    return ref;
  }
  std::size_t size() const { return layers_.size(); }
  // ValueError for i >= size().
  Module<T>& operator[](std::size_t i) {
    if (i >= layers_.size()) {
      throw ValueError("Sequential: index " + std::to_string(i) + " is out of range for " +
                       std::to_string(layers_.size()) + " layers");
    }
    return *layers_[i];
  }
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "Sequential"; }
  bool children_replaceable() const override { return true; }

 protected:
  void on_replace_child(const Module<T>* old_child, const std::shared_ptr<Module<T>>& module) override {
    for (auto& l : layers_) {
      if (l.get() == old_child) l = module;
    }
  }

 private:
  std::vector<std::shared_ptr<Module<T>>> layers_;
  std::vector<xt::xarray<T>*> buffers_at_entry_;       // which buffers were saved ...
  std::vector<xt::xarray<T>> buffer_values_at_entry_;  // ... and their values
};

extern template class Module<float>;
extern template class Module<double>;
extern template class Sequential<float>;
extern template class Sequential<double>;

}  // namespace tapegrad
