#include "tapegrad/optim/optimizer.hpp"

#include <cmath>
#include <set>

#include "tapegrad/core/error.hpp"
#include "tapegrad/core/shape.hpp"

namespace tapegrad {

namespace {

// Splits "state.<i>.<name>" (see optimizer.hpp): <i> as state_dict() writes it, plain decimal
// without sign, spaces or leading zeros ("0", "12"; not "+1", "01", "0x" or "0junk"), below
// `count`; <name> non-empty of [A-Za-z0-9_].
bool parse_state_key(const std::string& key, std::size_t count, std::size_t& index, std::string& name) {
  const std::string prefix = "state.";
  if (key.compare(0, prefix.size(), prefix) != 0) return false;
  const std::size_t dot = key.find('.', prefix.size());
  if (dot == std::string::npos) return false;
  const std::string digits = key.substr(prefix.size(), dot - prefix.size());
  if (digits.empty() || (digits.size() > 1 && digits[0] == '0')) return false;
  std::size_t i = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return false;
    const auto d = static_cast<std::size_t>(c - '0');
    if (d >= count || i > (count - 1 - d) / 10) return false;  // i * 10 + d >= count, no overflow
    i = i * 10 + d;
  }
  if (i >= count) return false;
  name = key.substr(dot + 1);
  if (name.empty()) return false;
  for (const char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    if (!ok) return false;
  }
  index = i;
  return true;
}

const std::string kGroupPrefix = "group.";

// The one value of a scalar entry ("lr", "group.<name>"), else a ShapeError naming the key.
template <class T>
T single_value(const std::string& who, const std::string& key, const xt::xarray<T>& v) {
  if (v.size() != 1) {
    throw ShapeError(who + ": \"" + key + "\" must hold one number; got shape " + shape_str(v.shape()));
  }
  return *v.data();
}

}  // namespace

template <class T>
Optimizer<T>::Optimizer(std::vector<Parameter<T>*> params, double lr, const char* name)
    : params_(std::move(params)), state_(params_.size()), lr_(lr), name_(name) {
  if (params_.empty()) throw ValueError(std::string(name) + ": got an empty parameter list");
  std::set<const Parameter<T>*> seen;
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (!params_[i]) throw ValueError(std::string(name) + ": parameter " + std::to_string(i) + " is null");
    if (!seen.insert(params_[i]).second) {
      throw ValueError(std::string(name) + ": parameter " + std::to_string(i) +
                       " appears more than once in the parameter list");
    }
  }
  set_lr(lr);
}

template <class T>
void Optimizer<T>::check_nonnegative(const char* opt, const char* what, double v) {
  // Infinity is refused too: an infinite lr, momentum, decay or eps makes every update NaN or 0.
  if (!(v >= 0 && std::isfinite(v))) {
    throw ValueError(std::string(opt) + ": invalid " + what + ": " + std::to_string(v));
  }
}

template <class T>
void Optimizer<T>::set_lr(double lr) {
  check_nonnegative(name_, "learning rate", lr);
  lr_ = lr;
}

template <class T>
void Optimizer<T>::check_step(std::size_t i) const {
  const Parameter<T>& p = *params_[i];
  if (p.grad_shape() != p.value.shape()) {
    throw StateError(std::string(name_) + ": parameter " + std::to_string(i) + " has value " +
                     shape_str(p.value.shape()) + " but grad " + shape_str(p.grad_shape()));
  }
  // A parameter whose value was replaced by one of another shape after its state was created
  // (momentum, moments): the update would read and write the state past its end.
  for (const auto& [name, v] : state_[i]) {
    if (name != "step" && v.shape() != p.value.shape()) {
      throw StateError(std::string(name_) + ": parameter " + std::to_string(i) + " has value " +
                       shape_str(p.value.shape()) + " but its state \"" + name + "\" has shape " +
                       shape_str(v.shape()) + "; build a new optimizer after reshaping a parameter");
    }
  }
}

template <class T>
void Optimizer<T>::step() {
  // Everything that can refuse the step is checked before any parameter moves.
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (params_[i]->requires_grad) check_step(i);
  }
  for (std::size_t i = 0; i < params_.size(); ++i) {
    Parameter<T>& p = *params_[i];
    if (!p.requires_grad) continue;
    update(i, p);
    p.bump();
  }
}

template <class T>
void Optimizer<T>::zero_grad() {
  for (auto* p : params_) p->zero_grad();
}

template <class T>
bool Optimizer<T>::has_state(std::size_t i, const std::string& name) const {
  return state_[i].count(name) > 0;
}

template <class T>
xt::xarray<T>& Optimizer<T>::state(std::size_t i, const std::string& name) {
  auto& m = state_[i];
  auto it = m.find(name);
  if (it == m.end()) {
    const Shape s = name == "step" ? Shape{} : params_[i]->value.shape();
    it = m.emplace(name, xt::xarray<T>(xt::zeros<T>(s))).first;
  }
  return it->second;
}

template <class T>
Hyperparameters Optimizer<T>::hyperparameters() const {
  Hyperparameters h = options();
  h["lr"] = lr_;
  return h;
}

template <class T>
void Optimizer<T>::set_hyperparameters(const Hyperparameters& values) {
  const Hyperparameters known = hyperparameters();
  Hyperparameters opts;
  for (const auto& [key, v] : values) {
    if (!known.count(key)) {
      std::string names;
      for (const auto& kv : known) names += (names.empty() ? "" : ", ") + kv.first;
      throw ValueError(std::string(name_) + ": unknown hyperparameter \"" + key + "\" (it has " + names +
                       ")");
    }
    if (key != "lr") opts[key] = v;
  }
  const auto lr = values.find("lr");
  if (lr != values.end()) check_nonnegative(name_, "learning rate", lr->second);
  set_options(opts);  // validates all of them before it changes any
  if (lr != values.end()) lr_ = lr->second;
}

template <class T>
void Optimizer<T>::read_option(const Hyperparameters& values, const char* key, double& field) {
  const auto it = values.find(key);
  if (it != values.end()) field = it->second;
}

template <class T>
void Optimizer<T>::read_flag(const Hyperparameters& values, const char* key, bool& field) const {
  const auto it = values.find(key);
  if (it == values.end()) return;
  if (it->second != 0 && it->second != 1) {
    throw ValueError(std::string(name_) + ": the flag \"" + key + "\" must be 0 or 1, got " +
                     std::to_string(it->second));
  }
  field = it->second == 1;
}

template <class T>
std::size_t Optimizer<T>::index_of(const Parameter<T>& p) const {
  for (std::size_t i = 0; i < params_.size(); ++i) {
    if (params_[i] == &p) return i;
  }
  throw ValueError(std::string(name_) + ": this parameter (shape " + shape_str(p.value.shape()) +
                   ") is not one of the optimizer's " + std::to_string(params_.size()) + " parameters");
}

template <class T>
const std::map<std::string, xt::xarray<T>>& Optimizer<T>::state(const Parameter<T>& p) const {
  return state_[index_of(p)];
}

template <class T>
StateDict<T> Optimizer<T>::state_dict() const {
  StateDict<T> out;
  out["lr"] = xt::xarray<T>(static_cast<T>(lr_));
  for (const auto& [key, v] : options()) out[kGroupPrefix + key] = xt::xarray<T>(static_cast<T>(v));
  for (std::size_t i = 0; i < state_.size(); ++i) {
    for (const auto& [name, v] : state_[i]) out["state." + std::to_string(i) + "." + name] = v;
  }
  return out;
}

template <class T>
void Optimizer<T>::load_state_dict(const StateDict<T>& state) {
  const std::string who = std::string(name_) + ".load_state_dict";
  if (!state.count("lr")) throw ValueError(who + ": missing key \"lr\"");
  std::vector<std::map<std::string, xt::xarray<T>>> next(params_.size());
  Hyperparameters group;
  for (const auto& [key, v] : state) {
    if (key == "lr") continue;
    if (key.compare(0, kGroupPrefix.size(), kGroupPrefix) == 0) {
      group[key.substr(kGroupPrefix.size())] = static_cast<double>(single_value(who, key, v));
      continue;
    }
    std::size_t i = 0;
    std::string name;
    if (!parse_state_key(key, params_.size(), i, name)) {
      throw ValueError(who + ": unexpected key \"" + key + "\" (this optimizer has " +
                       std::to_string(params_.size()) +
                       " parameters; keys are \"lr\" and \"state.<i>.<name>\", <i> an index in plain " +
                       "decimal, <name> of letters, digits and '_')");
    }
    const Shape want = name == "step" ? Shape{} : params_[i]->value.shape();
    if (v.shape() != want) {
      throw ShapeError(who + ": \"" + key + "\" has shape " + shape_str(v.shape()) + ", expected " +
                       shape_str(want));
    }
    next[i][name] = v;
  }
  group["lr"] = static_cast<double>(single_value(who, "lr", state.at("lr")));
  set_hyperparameters(group);  // validates all before it changes any; the last that can throw
  state_ = std::move(next);
}

template class Optimizer<float>;
template class Optimizer<double>;

}  // namespace tapegrad
