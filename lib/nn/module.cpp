#include "tapegrad/nn/module.hpp"

#include <algorithm>
#include <set>

namespace tapegrad {

// ---- EvalModeGuard ----

namespace {
thread_local bool g_eval_mode_forced = false;  // per thread: other threads keep their modes
}  // namespace

EvalModeGuard::EvalModeGuard() : previous_(g_eval_mode_forced) { g_eval_mode_forced = true; }
EvalModeGuard::~EvalModeGuard() { g_eval_mode_forced = previous_; }
bool EvalModeGuard::active() { return g_eval_mode_forced; }

namespace detail {
namespace {
thread_local ForwardObserver* g_forward_observer = nullptr;
}  // namespace
ForwardObserver* forward_observer() noexcept { return g_forward_observer; }
ForwardObserver* set_forward_observer(ForwardObserver* o) noexcept {
  ForwardObserver* previous = g_forward_observer;
  g_forward_observer = o;
  return previous;
}
}  // namespace detail

// ---- registration ----

template <class T>
void Module<T>::check_new_name(const std::string& name) const {
  if (name.empty() || name.find('.') != std::string::npos) {
    throw ValueError("register: name '" + name + "' must be non-empty and contain no '.'");
  }
  auto taken = [&](const auto& v) {
    return std::any_of(v.begin(), v.end(), [&](const auto& e) { return e.first == name; });
  };
  if (taken(params_) || taken(buffers_) || taken(children_)) {
    throw ValueError("register: '" + name + "' is already registered in " + type_name());
  }
}

template <class T>
Parameter<T>& Module<T>::register_parameter(const std::string& name, xt::xarray<T> value,
                                            bool requires_grad) {
  check_new_name(name);
  params_.emplace_back(name, std::make_unique<Parameter<T>>(std::move(value), requires_grad));
  return *params_.back().second;
}

template <class T>
xt::xarray<T>& Module<T>::register_buffer(const std::string& name, xt::xarray<T> value) {
  check_new_name(name);
  buffers_.emplace_back(name, std::make_unique<xt::xarray<T>>(std::move(value)));
  return *buffers_.back().second;
}

template <class T>
void Module<T>::register_affine(const Shape& shape, Parameter<T>*& weight, Parameter<T>*& bias) {
  weight = &register_parameter("weight", xt::ones<T>(shape));
  bias = &register_parameter("bias", xt::zeros<T>(shape));
}

template <class T>
void Module<T>::register_running_stats(std::size_t n, xt::xarray<T>*& running_mean,
                                       xt::xarray<T>*& running_var, xt::xarray<T>*& num_batches_tracked) {
  running_mean = &register_buffer("running_mean", xt::zeros<T>({n}));
  running_var = &register_buffer("running_var", xt::ones<T>({n}));
  num_batches_tracked = &register_buffer("num_batches_tracked", xt::xarray<T>(T(0)));
}

template <class T>
void Module<T>::add_child(const std::string& name, std::shared_ptr<Module<T>> module) {
  if (!module) throw ValueError("register_module: '" + name + "' is a null module");
  check_new_name(name);
  children_.emplace_back(name, std::move(module));
}

template <class T>
void Module<T>::replace_child(const std::string& name, std::shared_ptr<Module<T>> module) {
  if (!children_replaceable()) {
    throw StateError("replace_child: a " + type_name() + " keeps references to its children; its child '" +
                     name + "' cannot be swapped");
  }
  if (!module) throw ValueError("replace_child: '" + name + "' would become a null module");
  for (auto& entry : children_) {
    if (entry.first != name) continue;
    const std::shared_ptr<Module<T>> old = entry.second;  // alive until the layer list is updated
    entry.second = module;
    on_replace_child(old.get(), module);
    return;
  }
  throw ValueError("replace_child: " + type_name() + " has no child named '" + name + "'");
}

// ---- traversal ----

template <class T>
template <class F>
void Module<T>::visit_parameters(const std::string& prefix, F&& f) {
  for (auto& [name, p] : params_) f(prefix + name, *p);
  for (auto& [name, c] : children_) c->visit_parameters(prefix + name + ".", f);
}

template <class T>
template <class F>
void Module<T>::visit_buffers(const std::string& prefix, F&& f) {
  for (auto& [name, b] : buffers_) f(prefix + name, *b);
  for (auto& [name, c] : children_) c->visit_buffers(prefix + name + ".", f);
}

template <class T>
void Module<T>::append_buffers(std::vector<xt::xarray<T>*>& out) {
  for (auto& [name, b] : buffers_) out.push_back(b.get());
  for (auto& [name, c] : children_) c->append_buffers(out);
}

// A module or parameter reachable twice (weight tying: one Linear used at two places of a
// Sequential) is listed once, at its first occurrence, as PyTorch's parameters() /
// named_parameters() / named_buffers() / named_children() do: an optimizer given the list
// updates each parameter once. state_dict() keeps every name.
template <class T>
std::vector<Parameter<T>*> Module<T>::parameters() {
  std::vector<Parameter<T>*> out;
  std::set<const Parameter<T>*> seen;
  visit_parameters("", [&](const std::string&, Parameter<T>& p) {
    if (seen.insert(&p).second) out.push_back(&p);
  });
  return out;
}

template <class T>
std::vector<std::pair<std::string, Parameter<T>*>> Module<T>::named_parameters() {
  std::vector<std::pair<std::string, Parameter<T>*>> out;
  std::set<const Parameter<T>*> seen;
  visit_parameters("", [&](const std::string& n, Parameter<T>& p) {
    if (seen.insert(&p).second) out.emplace_back(n, &p);
  });
  return out;
}

template <class T>
std::vector<std::pair<std::string, xt::xarray<T>*>> Module<T>::named_buffers() {
  std::vector<std::pair<std::string, xt::xarray<T>*>> out;
  std::set<const xt::xarray<T>*> seen;
  visit_buffers("", [&](const std::string& n, xt::xarray<T>& b) {
    if (seen.insert(&b).second) out.emplace_back(n, &b);
  });
  return out;
}

template <class T>
std::vector<std::pair<std::string, Module<T>*>> Module<T>::named_children() {
  std::vector<std::pair<std::string, Module<T>*>> out;
  for (auto& [name, c] : children_) {
    Module<T>* child = c.get();  // a structured binding cannot be captured before C++20
    const bool seen = std::any_of(out.begin(), out.end(), [&](const auto& e) { return e.second == child; });
    if (!seen) out.emplace_back(name, child);
  }
  return out;
}

template <class T>
std::size_t Module<T>::num_parameters() {
  std::size_t n = 0;
  for (auto* p : parameters()) n += p->size();
  return n;
}

// ---- state_dict ----

template <class T>
StateDict<T> Module<T>::state_dict() const {
  auto& self = const_cast<Module<T>&>(*this);  // traversal only reads
  StateDict<T> out;
  self.visit_parameters("", [&](const std::string& n, Parameter<T>& p) { out[n] = p.value; });
  self.visit_buffers("", [&](const std::string& n, xt::xarray<T>& b) { out[n] = b; });
  return out;
}

template <class T>
void Module<T>::load_state_dict(const StateDict<T>& state) {
  std::map<std::string, Parameter<T>*> params;
  std::map<std::string, xt::xarray<T>*> buffers;
  visit_parameters("", [&](const std::string& n, Parameter<T>& p) { params[n] = &p; });
  visit_buffers("", [&](const std::string& n, xt::xarray<T>& b) { buffers[n] = &b; });

  std::vector<std::string> missing, unexpected, mismatched;
  auto current_shape = [&](const std::string& k) -> const Shape* {
    if (auto it = params.find(k); it != params.end()) return &it->second->value.shape();
    if (auto it = buffers.find(k); it != buffers.end()) return &it->second->shape();
    return nullptr;
  };
  for (const auto& [k, p] : params) {
    if (!state.count(k)) missing.push_back(k);
  }
  for (const auto& [k, b] : buffers) {
    if (!state.count(k)) missing.push_back(k);
  }
  for (const auto& [k, v] : state) {
    const Shape* s = current_shape(k);
    if (!s) {
      unexpected.push_back(k);
    } else if (*s != v.shape()) {
      mismatched.push_back("size mismatch for " + k + ": copying a tensor with shape " +
                           shape_str(v.shape()) +
                           " from the state dict, the shape in the current "
                           "model is " +
                           shape_str(*s));
    }
  }
  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = "load_state_dict: error(s) in loading state_dict for " + type_name() + ":";
    auto list = [&](const char* what, const std::vector<std::string>& keys) {
      if (keys.empty()) return;
      msg += std::string("\n  ") + what + ":";
      for (const auto& k : keys) msg += " \"" + k + "\"";
    };
    list("missing key(s)", missing);
    list("unexpected key(s)", unexpected);
    for (const auto& m : mismatched) msg += "\n  " + m;
    if (missing.empty() && unexpected.empty()) throw ShapeError(msg);
    throw ValueError(msg);
  }
  for (auto& [k, p] : params) {
    p->value = state.at(k);
    p->bump();
  }
  for (auto& [k, b] : buffers) *b = state.at(k);
}

// ---- mode ----

template <class T>
void Module<T>::train(bool on) {
  training_ = on;
  on_train(on);
  for (auto& [name, c] : children_) c->train(on);
}

template <class T>
void Module<T>::zero_grad() {
  // A tied parameter is visited twice; zero_grad() is idempotent and this allocates nothing.
  visit_parameters("", [](const std::string&, Parameter<T>& p) { p.zero_grad(); });
}

// ---- printing ----

template <class T>
void Module<T>::print_tree(std::string& out, const std::string& name, int indent) const {
  const std::string pad(static_cast<std::size_t>(indent) * 2, ' ');
  out += pad + (name.empty() ? "" : "(" + name + "): ") + type_name() + "(" + extra_repr();
  if (children_.empty()) {
    out += ")\n";
    return;
  }
  out += "\n";
  for (const auto& [n, c] : children_) c->print_tree(out, n, indent + 1);
  out += pad + ")\n";
}

template <class T>
std::string Module<T>::to_string() const {
  std::string out;
  print_tree(out, "", 0);
  return out;
}

// ---- Sequential ----

template <class T>
Sequential<T>& Sequential<T>::push_back(std::shared_ptr<Module<T>> layer) {
  this->register_module(std::to_string(layers_.size()), layer);
  layers_.push_back(std::move(layer));
  return *this;
}

namespace {
template <class T>
void copy_into(const xt::xarray<T>& from, xt::xarray<T>& to) {  // reuses to's storage
  if (to.shape() != from.shape()) to.resize(from.shape());
  std::copy(from.data(), from.data() + from.size(), to.data());
}
}  // namespace

template <class T>
Var<T> Sequential<T>::forward(Tape<T>& t, const Var<T>& x) {
  // Snapshot, recomputed every call (children may have been added since the last one). Only
  // in training mode: a forward in eval mode changes no buffer (BatchNorm uses its running
  // statistics without updating them), so eval forwards write nothing into the Sequential and
  // several threads may run one (each with its own tape).
  const std::size_t tape_size = t.size();
  const bool snapshot = this->is_training();
  if (snapshot) {
    buffers_at_entry_.clear();
    this->append_buffers(buffers_at_entry_);
    if (buffer_values_at_entry_.size() < buffers_at_entry_.size()) {
      buffer_values_at_entry_.resize(buffers_at_entry_.size());
    }
    for (std::size_t i = 0; i < buffers_at_entry_.size(); ++i) {
      copy_into(*buffers_at_entry_[i], buffer_values_at_entry_[i]);
    }
  }
  try {
    Var<T> h = x;
    for (auto& l : layers_) {
      h = l->forward(t, h);
      if (detail::ForwardObserver* o = detail::forward_observer()) o->called(l.get(), h.shape());
    }
    return h;
  } catch (...) {
    // Roll back, then rethrow the same exception. Neither step can throw: the tape only
    // shrinks, and the buffers' shapes are the ones saved, so copying allocates nothing. (A
    // child that called t.reset() has left less than there was: nothing to drop then.)
    if (t.size() >= tape_size) t.truncate(tape_size);
    if (snapshot) {
      for (std::size_t i = 0; i < buffers_at_entry_.size(); ++i) {
        copy_into(buffer_values_at_entry_[i], *buffers_at_entry_[i]);
      }
    }
    throw;
  }
}

template class Module<float>;
template class Module<double>;
template class Sequential<float>;
template class Sequential<double>;

}  // namespace tapegrad
