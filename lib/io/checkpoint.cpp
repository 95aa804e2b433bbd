#include "tapegrad/io/checkpoint.hpp"

#include <cctype>
#include <cerrno>
#include <cstdlib>

#include "tapegrad/core/error.hpp"
#include "tapegrad/io/safetensors.hpp"
#include "../optim/scheduler_state.hpp"

namespace tapegrad {

namespace {

const std::string kModelPrefix = "model.";
const std::string kOptimPrefix = "optim.";
const std::string kOptimizerKey = "optimizer";      // metadata: the optimizer's type name
const std::string kSchedulerKey = "scheduler";      // metadata: the scheduler's type name
const std::string kSchedulerPrefix = "scheduler.";  // metadata: "scheduler.<state key>"
const std::string kHyperPrefix = "optimizer.";      // metadata: "optimizer.<hyperparameter>"

std::string quoted(const std::string& s) { return "\"" + s + "\""; }

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// A decimal int64 with nothing around it ("12", not " 12", "12x" or "").
bool parse_int64(const std::string& s, std::int64_t& out) {
  if (s.empty() || s.size() > 20) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (!((c >= '0' && c <= '9') || (i == 0 && c == '-' && s.size() > 1))) return false;
  }
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno == ERANGE || end != s.c_str() + s.size()) return false;
  out = static_cast<std::int64_t>(v);
  return true;
}

// Runs f; an error from it is rethrown with `context` in front of its message, keeping the
// exception's type (a caller can still catch ShapeError vs ValueError).
template <class F>
void with_context(const std::string& context, F&& f) {
  try {
    f();
  } catch (const ShapeError& e) {
    throw ShapeError(context + e.what());
  } catch (const ValueError& e) {
    throw ValueError(context + e.what());
  } catch (const StateError& e) {
    throw StateError(context + e.what());
  } catch (const IoError& e) {
    throw IoError(context + e.what());
  }
}

}  // namespace

namespace {

template <class T>
void save_impl(const std::string& path, const Module<T>& model, const Optimizer<T>* optimizer,
               const Scheduler* scheduler, std::int64_t step,
               const std::map<std::string, std::string>& extra) {
  const std::string who = "save_checkpoint(" + quoted(path) + "): ";
  if (step < 0) throw ValueError(who + "step must be >= 0; got " + std::to_string(step));
  std::map<std::string, std::string> metadata = extra;
  for (const auto& kv : extra) {
    const std::string& k = kv.first;
    if (k == "format" || k == "version" || k == "step" || k == kOptimizerKey || k == kSchedulerKey ||
        starts_with(k, kSchedulerPrefix) || starts_with(k, kHyperPrefix)) {
      throw ValueError(who + "extra metadata may not redefine " + quoted(k) +
                       " (the checkpoint writes it itself)");
    }
  }
  metadata["format"] = kCheckpointFormat;
  metadata["version"] = kCheckpointVersion;
  metadata["step"] = std::to_string(step);
  if (optimizer) {
    metadata[kOptimizerKey] = optimizer->name();
    // Exact, also for a float checkpoint whose "optim.*" tensors hold them rounded.
    for (const auto& [key, value] : optimizer->hyperparameters()) {
      metadata[kHyperPrefix + key] = detail::format_number(value);
    }
  }
  if (scheduler) {
    metadata[kSchedulerKey] = scheduler->name();
    for (const auto& [key, value] : scheduler->state_dict()) metadata[kSchedulerPrefix + key] = value;
  }

  TensorMap<T> tensors;
  for (auto& [key, value] : model.state_dict()) tensors.emplace(kModelPrefix + key, std::move(value));
  if (optimizer) {
    for (auto& [key, value] : optimizer->state_dict()) tensors.emplace(kOptimPrefix + key, std::move(value));
  }
  with_context(who, [&] { save_safetensors(path, tensors, metadata); });
}

}  // namespace

template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model, const OptimizerOf<T>* optimizer,
                     std::int64_t step, const std::map<std::string, std::string>& extra) {
  save_impl<T>(path, model, optimizer, nullptr, step, extra);
}

template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model, const OptimizerOf<T>& optimizer,
                     const Scheduler& scheduler, std::int64_t step,
                     const std::map<std::string, std::string>& extra) {
  save_impl<T>(path, model, &optimizer, &scheduler, step, extra);
}

namespace {

// The "optimizer.*" hyperparameters, from ck.metadata: numbers, and only with optimizer state.
template <class T>
void read_hyperparameters(Checkpoint<T>& ck, const std::string& who) {
  for (const auto& [key, value] : ck.metadata) {
    if (!starts_with(key, kHyperPrefix)) continue;
    const char* s = value.c_str();
    char* end = nullptr;
    const double v = std::strtod(s, &end);
    if (value.empty() || std::isspace(static_cast<unsigned char>(value[0])) || end != s + value.size()) {
      throw IoError(who + "metadata " + quoted(key) + " is " + quoted(value) + ", not a number");
    }
    if (ck.optimizer.empty()) {
      throw IoError(who + "metadata " + quoted(key) +
                    " is an optimizer hyperparameter, but the file holds no " + "optimizer state");
    }
    ck.hyperparameters[key.substr(kHyperPrefix.size())] = v;
  }
}

// The "scheduler" entry and its "scheduler.*" state, from ck.metadata.
template <class T>
void read_scheduler(Checkpoint<T>& ck, const std::string& who) {
  for (const auto& [key, value] : ck.metadata) {
    if (starts_with(key, kSchedulerPrefix)) ck.scheduler.emplace(key.substr(kSchedulerPrefix.size()), value);
  }
  const auto it = ck.metadata.find(kSchedulerKey);
  if (it == ck.metadata.end()) {
    if (!ck.scheduler.empty()) {
      throw IoError(who + "metadata has scheduler state (" +
                    quoted(kSchedulerPrefix + ck.scheduler.begin()->first) +
                    ") but no \"scheduler\" entry naming its type");
    }
    return;
  }
  if (it->second.empty()) {
    throw IoError(who + "metadata \"scheduler\" is empty; expected a type name such as \"StepLR\"");
  }
  ck.scheduler_type = it->second;
}

// read_checkpoint, with `who` naming the caller in messages.
template <class T>
Checkpoint<T> read_checkpoint_as(const std::string& path, const std::string& who) {
  SafetensorsData<T> data = load_safetensors<T>(path);  // its IoErrors name the path already

  Checkpoint<T> ck;
  ck.metadata = std::move(data.metadata);
  const auto meta = [&](const std::string& key) -> const std::string* {
    auto it = ck.metadata.find(key);
    return it == ck.metadata.end() ? nullptr : &it->second;
  };
  const std::string* format = meta("format");
  if (!format || *format != kCheckpointFormat) {
    throw IoError(who + "not a tapegrad checkpoint: metadata \"format\" is " +
                  (format ? quoted(*format) : std::string("missing")) + ", expected " +
                  quoted(kCheckpointFormat) + " (a plain safetensors file? use load_safetensors)");
  }
  const std::string* version = meta("version");
  if (!version || *version != kCheckpointVersion) {
    throw IoError(who + "unsupported checkpoint version " +
                  (version ? quoted(*version) : std::string("(missing)")) + "; this build reads version " +
                  quoted(kCheckpointVersion));
  }
  const std::string* step = meta("step");
  if (!step || !parse_int64(*step, ck.step) || ck.step < 0) {
    throw IoError(who + "metadata \"step\" must be a non-negative integer; got " +
                  (step ? quoted(*step) : std::string("nothing")));
  }
  for (auto& [key, value] : data.tensors) {
    if (starts_with(key, kModelPrefix)) {
      ck.model.emplace(key.substr(kModelPrefix.size()), std::move(value));
    } else if (starts_with(key, kOptimPrefix)) {
      ck.optimizer.emplace(key.substr(kOptimPrefix.size()), std::move(value));
    } else {
      throw IoError(who + "tensor " + quoted(key) + " belongs to neither \"model.\" nor \"optim.\"");
    }
  }
  // Absent in files written before it was recorded (and in those saved without an optimizer).
  if (const std::string* type = meta(kOptimizerKey)) {
    if (type->empty()) {
      throw IoError(who + "metadata \"optimizer\" is empty; expected a type name such as \"Adam\"");
    }
    if (ck.optimizer.empty()) {
      throw IoError(who + "metadata names the optimizer " + quoted(*type) +
                    " but the file holds no optimizer state (no \"optim.*\" tensors)");
    }
    ck.optimizer_type = *type;
  }
  read_hyperparameters(ck, who);
  read_scheduler(ck, who);
  return ck;
}

}  // namespace

template <class T>
Checkpoint<T> read_checkpoint(const std::string& path) {
  return read_checkpoint_as<T>(path, "read_checkpoint(" + quoted(path) + "): ");
}

namespace {

// The checks that need no loading: the file holds what was asked for, written by the same types.
template <class T>
void check_parts(const Checkpoint<T>& ck, const std::string& who, const Optimizer<T>* optimizer,
                 const Scheduler* scheduler) {
  if (optimizer && ck.optimizer.empty()) {
    throw ValueError(who + "an optimizer was given but the checkpoint holds no optimizer state " +
                     "(no \"optim.*\" tensors: it was saved without one); pass no optimizer to "
                     "load only the model");
  }
  // Another kind of optimizer's state can have keys and shapes that fit (load_state_dict
  // checks a state tensor's parameter index and shape, not its name), so the recorded type
  // decides. A file that records none predates the entry: keys and shapes are all we can check.
  if (optimizer && !ck.optimizer_type.empty() && ck.optimizer_type != optimizer->name()) {
    throw ValueError(who + "checkpoint was written by " + ck.optimizer_type + "; cannot load it into " +
                     optimizer->name());
  }
  if (scheduler && ck.scheduler_type.empty()) {
    throw ValueError(who + "a scheduler was given but the checkpoint holds no scheduler state (it was " +
                     "saved without one); load without the scheduler");
  }
  if (scheduler && ck.scheduler_type != scheduler->name()) {
    throw ValueError(who + "checkpoint's scheduler state was written by " + ck.scheduler_type +
                     "; cannot load it into " + scheduler->name());
  }
}

template <class T>
std::int64_t load_impl(const std::string& path, Module<T>& model, Optimizer<T>* optimizer,
                       Scheduler* scheduler) {
  const std::string who = "load_checkpoint(" + quoted(path) + "): ";
  Checkpoint<T> ck = read_checkpoint_as<T>(path, who);
  check_parts(ck, who, optimizer, scheduler);
  // Keep copies so model and optimizer can be put back if a later part is rejected.
  const StateDict<T> model_before = optimizer ? model.state_dict() : StateDict<T>{};
  const StateDict<T> optimizer_before = optimizer ? optimizer->state_dict() : StateDict<T>{};
  const Hyperparameters hyper_before = optimizer ? optimizer->hyperparameters() : Hyperparameters{};
  with_context(who + "model: ", [&] { model.load_state_dict(ck.model); });
  bool optimizer_loaded = false;
  try {
    if (optimizer) {
      with_context(who + "optimizer: ", [&] {
        optimizer->load_state_dict(ck.optimizer);
        optimizer_loaded = true;
        if (!ck.hyperparameters.empty()) optimizer->set_hyperparameters(ck.hyperparameters);
      });
    }
    if (scheduler) with_context(who + "scheduler: ", [&] { scheduler->load_state_dict(ck.scheduler); });
  } catch (...) {
    model.load_state_dict(model_before);  // same keys and shapes: cannot fail
    if (optimizer_loaded) {  // its own state and hyperparameters (exact, not T-rounded): cannot fail
      optimizer->load_state_dict(optimizer_before);
      optimizer->set_hyperparameters(hyper_before);
    }
    throw;
  }
  return ck.step;
}

}  // namespace

template <class T>
std::int64_t load_checkpoint(const std::string& path, Module<T>& model, OptimizerOf<T>* optimizer) {
  return load_impl<T>(path, model, optimizer, nullptr);
}

template <class T>
std::int64_t load_checkpoint(const std::string& path, Module<T>& model, OptimizerOf<T>& optimizer,
                             Scheduler& scheduler) {
  return load_impl<T>(path, model, &optimizer, &scheduler);
}

#define TAPEGRAD_INSTANTIATE(T)                                                                 \
  template void save_checkpoint<T>(const std::string&, const Module<T>&, const OptimizerOf<T>*, \
                                   std::int64_t, const std::map<std::string, std::string>&);    \
  template Checkpoint<T> read_checkpoint<T>(const std::string&);                                \
  template std::int64_t load_checkpoint<T>(const std::string&, Module<T>&, OptimizerOf<T>*);    \
  template void save_checkpoint<T>(const std::string&, const Module<T>&, const OptimizerOf<T>&, \
                                   const Scheduler&, std::int64_t,                              \
                                   const std::map<std::string, std::string>&);                  \
  template std::int64_t load_checkpoint<T>(const std::string&, Module<T>&, OptimizerOf<T>&, Scheduler&);
TAPEGRAD_INSTANTIATE(float)
TAPEGRAD_INSTANTIATE(double)
#undef TAPEGRAD_INSTANTIATE

}  // namespace tapegrad
