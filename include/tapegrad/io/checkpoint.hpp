#pragma once
// Checkpoints: a model's state_dict, optionally an optimizer's, and the training step, in one
// safetensors file (io/safetensors.hpp), so a run can stop and resume exactly.
//
//   tg::save_checkpoint("run.safetensors", model, &optimizer, step);
//   ...
//   std::int64_t step = tg::load_checkpoint("run.safetensors", model, &optimizer);
//
// File layout: every model tensor under "model.<state_dict key>" ("model.0.weight",
// "model.1.running_mean", ...), every optimizer tensor under "optim.<state_dict key>"
// ("optim.lr", "optim.state.0.exp_avg", ...), and the metadata
//   {"format": "tapegrad-checkpoint", "version": "1", "step": "<n>",
//    "optimizer": "<type name>" (only when saved with an optimizer), ...extra entries}.
// Tensors are stored in T (F32 for float, F64 for double); either loads into either T.
//
// "optimizer" is the optimizer's type name (Optimizer::name(): "SGD", "Adam", "AdamW",
// "RMSprop"). Keys and shapes alone cannot tell the kinds apart (Optimizer::load_state_dict
// checks each state tensor's parameter index and shape, not its name, and every kind keeps
// parameter-shaped tensors), so loading checks the type: an SGD state is never silently loaded
// into Adam. The optimizer's hyperparameters (momentum, betas, weight decay, ...) are not
// recorded: they come from the code that builds the optimizer, as in a fresh run; only the
// learning rate is state ("optim.lr", schedulers change it).
// Checkpoints written before this entry existed (version "1" files without "optimizer") still
// load: the optimizer state is then checked by keys and shapes only, as it was when they were
// written. The entry did not change the version: older builds ignore it and still read new files.
//
// Loading changes nothing unless everything fits: the file is validated by the safetensors
// reader, then the format, version and step, then the optimizer's type, then every model key
// and shape (Module::load_state_dict checks all before it changes anything), then the
// optimizer's keys and shapes. If the optimizer part is rejected after the model was loaded,
// the model is put back from a copy taken before, so a failed load leaves model and optimizer
// as they were.
#include <cstdint>
#include <map>
#include <string>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/optim/optimizer.hpp"

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
  std::map<std::string, std::string> metadata;  // all of it, including format/version/step
};

// Writes model (and optimizer) state and `step` to `path` atomically: afterwards `path` holds
// either the complete checkpoint or what it held before. `extra` adds metadata entries; it may
// not redefine "format", "version", "step" or "optimizer" (ValueError). A negative step is a
// ValueError.
template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model,
                     const OptimizerOf<T>* optimizer = nullptr, std::int64_t step = 0,
                     const std::map<std::string, std::string>& extra = {});

// Reads and validates a checkpoint file without loading it into anything: IoError for an
// unreadable or malformed file, a wrong "format", an unsupported "version", a missing or
// non-integer "step", an empty "optimizer" or one without "optim." tensors, or a tensor
// outside the "model." and "optim." groups (named).
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

}  // namespace tapegrad
