#pragma once
// Checkpoints: a model's state_dict, optionally an optimizer's, and the training step, in one
// safetensors file (io/safetensors.hpp), so a run can stop and resume exactly.
//
//   tg::save_checkpoint("run.safetensors", model, &optimizer, step);
//   ...
//   std::int64_t step = tg::load_checkpoint("run.safetensors", model, &optimizer);
//
// With a learning-rate scheduler, so a resumed schedule continues exactly where it stopped:
//   tg::save_checkpoint("run.safetensors", model, optimizer, scheduler, step);
//   std::int64_t step = tg::load_checkpoint("run.safetensors", model, optimizer, scheduler);
//
// File layout: every model tensor under "model.<state_dict key>" ("model.0.weight",
// "model.1.running_mean", ...), every optimizer tensor under "optim.<state_dict key>"
// ("optim.lr", "optim.state.0.exp_avg", ...), and the metadata
//   {"format": "tapegrad-checkpoint", "version": "1", "step": "<n>",
//    "optimizer": "<type name>" and "optimizer.<hyperparameter>": "<value>" for each of its
//    hyperparameters() (only when saved with an optimizer; exact text, so a float checkpoint
//    restores lr, betas, ... exactly, not rounded to float as its "optim.*" tensors hold them),
//    "scheduler": "<type name>" and "scheduler.<key>": "<value>" for each entry of its
//    state_dict() (only when saved with a scheduler; numbers as exact text), ...extra entries}.
// Tensors are stored in T (F32 for float, F64 for double); either loads into either T.
//
// "optimizer" is the optimizer's type name (Optimizer::name(): "SGD", "Adam", "AdamW",
// "RMSprop"). Keys and shapes alone cannot tell the kinds apart (Optimizer::load_state_dict
// checks each state tensor's parameter index and shape, not its name, and every kind keeps
// parameter-shaped tensors), so loading checks the type: an SGD state is never silently loaded
// into Adam. The optimizer's hyperparameters are saved too ("optim.lr", "optim.group.momentum",
// "optim.group.beta1", ...; see Optimizer::state_dict) and loading restores them, as PyTorch's
// optimizer.load_state_dict restores param_groups: an optimizer built with other ones takes the
// saved ones. Files written before they were saved keep the built optimizer's.
// A scheduler's state loads only into a scheduler of the type that wrote it (ValueError).
// Checkpoints written before this entry existed (version "1" files without "optimizer") still
// load: the optimizer state is then checked by keys and shapes only, as it was when they were
// written. The entry did not change the version: older builds ignore it and still read new files.
//
// Loading changes nothing unless everything fits: the file is validated by the safetensors
// reader, then the format, version and step, then the optimizer's type, then every model key
// and shape (Module::load_state_dict checks all before it changes anything), then the
// optimizer's keys and shapes, then the scheduler's state. If the optimizer or scheduler part
// is rejected after the model was loaded, model and optimizer are put back from copies taken
// before, so a failed load leaves model, optimizer and scheduler as they were.
#include <cstdint>
#include <map>
#include <string>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/optim/optimizer.hpp"
#include "tapegrad/optim/scheduler.hpp"

namespace tapegrad {

// The "format" and "version" metadata values this code writes and reads.
constexpr const char* kCheckpointFormat = "tapegrad-checkpoint";
constexpr const char* kCheckpointVersion = "1";

// Optimizer<T> with T taken from the model only, so `nullptr` and `&adam` both fit.
template <class T>
using OptimizerOf = typename NonDeduced<Optimizer<T>>::type;

// A checkpoint file's contents, split by prefix (keys without "model." / "optim.").
template <class T>
struct Checkpoint {
  StateDict<T> model;
  StateDict<T> optimizer;  // empty when saved without an optimizer
  std::int64_t step = 0;
  // The type name of the optimizer that wrote `optimizer` ("SGD", "Adam", ...); empty when
  // saved without one, or written before checkpoints recorded it.
  std::string optimizer_type;
  // The type name of the scheduler saved with it ("CosineAnnealingLR", ...) and its state;
  // empty when saved without one.
  std::string scheduler_type;
  SchedulerState scheduler;
  // The optimizer's hyperparameters as exact numbers ("lr", "momentum", ...); empty in files
  // written before they were recorded.
  Hyperparameters hyperparameters;
  std::map<std::string, std::string> metadata;  // all of it, including format/version/step
};

// Writes model (and optimizer) state and `step` to `path` atomically: afterwards `path` holds
// either the complete checkpoint or what it held before. `extra` adds metadata entries; it may
// not redefine "format", "version", "step", "optimizer", "scheduler" or an "optimizer.*" or
// "scheduler.*" key
// (ValueError). A negative step is a ValueError.
template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model,
                     const OptimizerOf<T>* optimizer = nullptr, std::int64_t step = 0,
                     const std::map<std::string, std::string>& extra = {});
// The same with a learning-rate scheduler (StepLR, OneCycleLR, ReduceLROnPlateau, ...).
template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model, const OptimizerOf<T>& optimizer,
                     const Scheduler& scheduler, std::int64_t step = 0,
                     const std::map<std::string, std::string>& extra = {});

// Reads and validates a checkpoint file without loading it into anything: IoError for an
// unreadable or malformed file, a wrong "format", an unsupported "version", a missing or
// non-integer "step", an empty "optimizer" or one without "optim." tensors, an empty
// "scheduler" or "scheduler.*" entries without it, or a tensor outside the "model." and
// "optim." groups (named).
template <class T>
Checkpoint<T> read_checkpoint(const std::string& path);

// Loads the model (and, when given, the optimizer) from `path` and returns the saved step.
// Errors keep their type and name the key: IoError for the file (see read_checkpoint),
// ValueError for missing/unexpected keys, ShapeError for a shape mismatch, ValueError when an
// optimizer is given but the file holds no optimizer state, ValueError when the file was
// written by another type of optimizer ("checkpoint was written by SGD; cannot load it into
// Adam"). On any error nothing changed.
// A checkpoint with optimizer state may be loaded into a model alone (optimizer = nullptr).
template <class T>
std::int64_t load_checkpoint(const std::string& path, Module<T>& model, OptimizerOf<T>* optimizer = nullptr);
// The same, and the scheduler's state: ValueError when the file holds none ("saved without a
// scheduler") or one of another type ("written by StepLR; cannot load it into OneCycleLR"), or
// when the scheduler refuses it (its load_state_dict names the key); nothing changed then.
template <class T>
std::int64_t load_checkpoint(const std::string& path, Module<T>& model, OptimizerOf<T>& optimizer,
                             Scheduler& scheduler);

}  // namespace tapegrad
