#pragma once
// Optimizers update Parameters in place from their grads, with PyTorch's exact update rules.
//
// Per-parameter state (momentum buffers, Adam moments, step counts) lives in named arrays,
// created on a parameter's first step, as in PyTorch. state_dict() names them
// "state.<param index>.<name>" so a checkpoint can save and restore an optimizer exactly;
// "lr" holds the current learning rate (schedulers change it) and "group.<name>" each of the
// other hyperparameters (PyTorch's param_groups: "momentum", "beta1", "maximize", ...).
// load_state_dict restores them, as torch.optim.Optimizer.load_state_dict restores
// param_groups: an optimizer built with other hyperparameters takes the saved ones. (They are
// stored in T: a float state holds float-rounded values, which is what float updates use.)
#include <map>
#include <string>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/parameter.hpp"
#include "tapegrad/core/state_dict.hpp"

namespace tapegrad {

// Hyperparameters by PyTorch's param_group names: "lr" and the optimizer's options. Flags
// (nesterov, amsgrad, centered, maximize) are 0 or 1. Adam's betas are "beta1" and "beta2".
using Hyperparameters = std::map<std::string, double>;

template <class T>
class Optimizer {
 public:
  Optimizer(std::vector<Parameter<T>*> params, double lr, const char* name);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update of every parameter from its current grad.
  void step();
  void zero_grad();
  double lr() const { return lr_; }
  // The optimizer's type name as given to the constructor ("SGD", "Adam", "AdamW", "RMSprop"):
  // checkpoints record it so a state is never loaded into another kind of optimizer.
  const char* name() const { return name_; }
  // lr must be finite and >= 0; a refused lr is a ValueError and leaves the lr as it was.
  void set_lr(double lr);
  const std::vector<Parameter<T>*>& params() const { return params_; }

  // "lr" and every option by name (SGD: momentum, dampening, weight_decay, nesterov, maximize;
  // Adam/AdamW: beta1, beta2, eps, weight_decay, amsgrad, maximize; RMSprop: alpha, eps,
  // weight_decay, momentum, centered, maximize).
  Hyperparameters hyperparameters() const;
  // Sets some of them (others keep their values), all or nothing: an unknown name, or a value
  // the constructor would refuse (a flag other than 0 or 1), is a ValueError naming it, and then
  // nothing changed. Schedulers use it (OneCycleLR cycles "momentum" or "beta1").
  void set_hyperparameters(const Hyperparameters& values);

  // The state of parameter p, read-only (PyTorch's opt.state[p]): named arrays such as
  // "momentum_buffer" (SGD), "step", "exp_avg", "exp_avg_sq" (Adam), "square_avg" (RMSprop);
  // empty before p's first step. A parameter this optimizer does not hold is a ValueError.
  // The reference is valid until the next step(), load_state_dict() or the optimizer's end.
  const std::map<std::string, xt::xarray<T>>& state(const Parameter<T>& p) const;
  // The index of p in params() (ValueError if it is not there).
  std::size_t index_of(const Parameter<T>& p) const;

  StateDict<T> state_dict() const;
  // Restores state saved by state_dict() of an optimizer of the same kind over parameters of
  // the same shapes. Validates every key and shape before changing anything.
  // Keys: "lr" (required, one value) and "state.<i>.<name>", where <i> is a parameter index
  // below params().size() written as state_dict() writes it (decimal digits, no sign, no
  // leading zero, nothing before or after: "state.01.x", "state.+1.x", "state.0junk.x" are
  // rejected) and <name> is non-empty, of letters, digits and '_'. Any other key is a
  // ValueError naming it; a shape other than the parameter's ("step": a scalar) a ShapeError.
  // "group.<name>" keys (one value each) are hyperparameters, checked as set_hyperparameters
  // checks them and restored; states written without them keep this optimizer's.
  void load_state_dict(const StateDict<T>& state);

 protected:
  // The update of parameter i (its value and grad are params_[i]->value / ->grad).
  virtual void update(std::size_t i, Parameter<T>& p) = 0;
  // The options by name (without "lr").
  virtual Hyperparameters options() const = 0;
  // Validates the options with these names changed (every name is one of options()'s) and, if
  // all are valid, sets them; otherwise throws ValueError and changes nothing.
  virtual void set_options(const Hyperparameters& values) = 0;
  // Reads values[key] into `field` when present; read_flag also checks it is 0 or 1.
  static void read_option(const Hyperparameters& values, const char* key, double& field);
  void read_flag(const Hyperparameters& values, const char* key, bool& field) const;
  // Whether parameter i has the named state yet.
  bool has_state(std::size_t i, const std::string& name) const;
  // Named state of parameter i, created as zeros on first use (of the parameter's shape; "step":
  // a scalar).
  xt::xarray<T>& state(std::size_t i, const std::string& name);
  // Throws ValueError unless v is finite and >= 0.
  static void check_nonnegative(const char* opt, const char* what, double v);

 private:
  // Throws StateError if parameter i cannot be updated: its grad or its state has another shape.
  void check_step(std::size_t i) const;

  std::vector<Parameter<T>*> params_;
  std::vector<std::map<std::string, xt::xarray<T>>> state_;
  double lr_;
  const char* name_;
};

extern template class Optimizer<float>;
extern template class Optimizer<double>;

}  // namespace tapegrad
