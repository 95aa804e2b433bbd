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
//   {"format": "tapegrad-checkpoint", "version": "1", "step": "<n>", ...extra entries}.
// Tensors are stored in T (F32 for float, F64 for double); either loads into either T.
//
// Loading changes nothing unless everything fits: the file is validated by the safetensors
// reader, then the format, version and step, then every model key and shape
// (Module::load_state_dict checks all before it changes anything), then the optimizer's keys
// and shapes. If the optimizer part is rejected after the model was loaded, the model is put
// back from a copy taken before, so a failed load leaves model and optimizer as they were.
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
  std::map<std::string, std::string> metadata;  // all of it, including format/version/step
};

// Writes model (and optimizer) state and `step` to `path` atomically: afterwards `path` holds
// either the complete checkpoint or what it held before. `extra` adds metadata entries; it may
// not redefine "format", "version" or "step" (ValueError). A negative step is a ValueError.
template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model,
                     const OptimizerOf<T>* optimizer = nullptr, std::int64_t step = 0,
                     const std::map<std::string, std::string>& extra = {});

// Reads and validates a checkpoint file without loading it into anything: IoError for an
// unreadable or malformed file, a wrong "format", an unsupported "version", a missing or
// non-integer "step", or a tensor outside the "model." and "optim." groups (named).
template <class T>
Checkpoint<T> read_checkpoint(const std::string& path);

// Loads the model (and, when given, the optimizer) from `path` and returns the saved step.
// Errors keep their type and name the key: IoError for the file (see read_checkpoint),
// ValueError for missing/unexpected keys, ShapeError for a shape mismatch, ValueError when an
// optimizer is given but the file holds no optimizer state. On any error nothing changed.
// A checkpoint with optimizer state may be loaded into a model alone (optimizer = nullptr).
template <class T>
std::int64_t load_checkpoint(const std::string& path, Module<T>& model,
                             OptimizerOf<T>* optimizer = nullptr);

}  // namespace tapegrad
