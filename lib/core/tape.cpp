#include "tapegrad/core/tape.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <sstream>

#include "strided.hpp"
#include "tapegrad/core/warning.hpp"

namespace tapegrad {

namespace {
thread_local bool g_grad_enabled = true;

template <class T>
bool all_finite(const xt::xarray<T>& a) {
  const T* p = a.data();
  for (std::size_t i = 0, n = a.size(); i < n; ++i) {
    if (!std::isfinite(p[i])) return false;
  }
  return true;
}
}  // namespace

bool grad_enabled() noexcept { return g_grad_enabled; }
void set_grad_enabled(bool enabled) noexcept { g_grad_enabled = enabled; }

template <class T>
T Var<T>::item() const {
  const auto& v = value();
  if (v.size() != 1) {
    throw ShapeError("item: only a one-element Var converts to a number; got shape " + shape_str(v.shape()));
  }
  return v.data()[0];
}

// ---- validation ----------------------------------------------------------------------------

template <class T>
void Tape<T>::check(const Var<T>& v, const char* what) const {
  if (!v.tape_) {
    throw StateError(std::string(what) + ": got an empty (default-constructed) Var");
  }
  if (v.tape_ != this) {
    throw StateError(std::string(what) + ": the Var (index " + std::to_string(v.index_) +
                     ") belongs to a different tape");
  }
  // A live Var's slot holds the node it was recorded as: the stamps match. After reset() or a
  // truncate() that dropped it, either its index is past size_ or the slot was recorded again
  // in a later generation. A Var of the current generation needs no look at its node (the
  // common case, on every op's path): nothing was dropped since it was recorded, or the
  // generation would have moved on.
  const bool live =
      v.index_ < size_ && (v.generation_ == generation_ || nodes_[v.index_].generation == v.generation_);
  if (!live) {
    throw StateError(std::string(what) + ": the Var (index " + std::to_string(v.index_) +
                     ") was recorded before tape.reset() or dropped by tape.truncate(); "
                     "record it again on the current tape");
  }
}

template <class T>
void Tape<T>::check_input(const char* op, std::size_t k, const Var<T>& v) const {
  if (!v.tape_) {
    throw StateError(std::string(op) + ": input " + std::to_string(k) +
                     " is an empty (default-constructed) Var");
  }
  if (v.tape_ != this) {
    throw StateError(std::string(op) + ": input " + std::to_string(k) + " (index " +
                     std::to_string(v.index_) +
                     ") is on a different tape than input 0; all "
                     "inputs of an op must be recorded on the same tape");
  }
  const bool live =
      v.index_ < size_ && (v.generation_ == generation_ || nodes_[v.index_].generation == v.generation_);
  if (!live) {
    throw StateError(std::string(op) + ": input " + std::to_string(k) + " (index " +
                     std::to_string(v.index_) +
                     ") is a Var from before tape.reset() or dropped "
                     "by tape.truncate(); record it again on the current tape");
  }
}

template <class T>
Tape<T>& Tape<T>::of(const char* op, std::initializer_list<Var<T>> inputs) {
  return of_range(op, inputs.begin(), inputs.end());
}

template <class T>
Tape<T>& Tape<T>::of(const char* op, const std::vector<Var<T>>& inputs) {
  return of_range(op, inputs.begin(), inputs.end());
}

template <class T>
template <class It>
Tape<T>& Tape<T>::of_range(const char* op, It first, It last) {
  if (first == last) throw ValueError(std::string(op) + ": an op needs at least one input");
  if (!first->tape_) {
    throw StateError(std::string(op) + ": input 0 is an empty (default-constructed) Var");
  }
  Tape<T>& t = *first->tape_;
  std::size_t k = 0;
  for (It it = first; it != last; ++it, ++k) t.check_input(op, k, *it);
  return t;
}

template <class T>
const Node<T>& Tape<T>::node_of(const Var<T>& v) const {
  check(v, "tape");
  return nodes_[v.index_];
}

// ---- recording -----------------------------------------------------------------------------

template <class T>
Node<T>& Tape<T>::slot() {
  if (size_ == nodes_.size()) {
    // Vars hold a 32-bit index; checked only when the tape grows, so a step that reuses its
    // slots pays nothing.
    if (size_ > std::numeric_limits<std::uint32_t>::max()) {
      throw StateError("tape: more than 2^32 nodes on one tape; call reset() between steps");
    }
    nodes_.emplace_back();
  }
  Node<T>& n = nodes_[size_];
  n.op = "";
  n.parents.clear();
  n.backward = nullptr;
  n.param = nullptr;
  n.param_version = 0;
  n.view = nullptr;
  n.view_data = nullptr;
  n.ints.clear();
  n.scalars.clear();
  n.requires_grad = false;
  n.has_grad = false;
  n.freed = false;
  n.reached = false;
  n.grad_is_upstream = false;
  n.name.clear();
  return n;
}

template <class T>
Var<T> Tape<T>::commit(Node<T>& n, typename Node<T>::BackwardFn backward_fn) {
  if (detect_anomaly_) check_finite_output(n, size_);
  n.backward = n.requires_grad ? backward_fn : nullptr;
  n.generation = generation_;
  const auto index = static_cast<std::uint32_t>(size_);
  ++size_;
  return Var<T>(this, index, generation_);
}

template <class T>
Var<T> Recorder<T>::finish(typename Node<T>::BackwardFn backward) {
  return tape_.commit(node_, backward);
}

template <class T>
template <class It>
Recorder<T> Tape<T>::record_range(const char* op, It first, It last) {
  std::size_t k = 0;
  for (It it = first; it != last; ++it, ++k) check_input(op, k, *it);
  Node<T>& n = slot();
  n.op = op;
  bool any = false;
  for (It it = first; it != last; ++it) {
    n.parents.push_back(it->index_);
    any = any || nodes_[it->index_].requires_grad;
  }
  n.requires_grad = any && grad_enabled();
  return Recorder<T>(*this, n);
}

template <class T>
Recorder<T> Tape<T>::record(const char* op, std::initializer_list<Var<T>> inputs) {
  if (inputs.size() == 0) throw ValueError(std::string(op) + ": an op needs at least one input");
  return record_range(op, inputs.begin(), inputs.end());
}

template <class T>
Recorder<T> Tape<T>::record(const char* op, const std::vector<Var<T>>& inputs) {
  if (inputs.empty()) throw ValueError(std::string(op) + ": an op needs at least one input");
  return record_range(op, inputs.begin(), inputs.end());
}

template <class T>
Var<T> Tape<T>::leaf(bool requires_grad) {
  Node<T>& n = nodes_[size_];
  n.requires_grad = requires_grad;
  return commit(n, nullptr);
}

template <class T>
Var<T> Tape<T>::input(const xt::xarray<T>& value, bool requires_grad) {
  Node<T>& n = slot();
  n.op = "input";
  if (n.value.shape() != value.shape()) n.value.resize(value.shape());
  std::copy(value.data(), value.data() + value.size(), n.value.data());
  return leaf(requires_grad);
}

template <class T>
Var<T> Tape<T>::input(xt::xarray<T>&& value, bool requires_grad) {
  Node<T>& n = slot();
  n.op = "input";
  n.value = std::move(value);
  return leaf(requires_grad);
}

template <class T>
Var<T> Tape<T>::input_view(const xt::xarray<T>& value, bool requires_grad) {
  Node<T>& n = slot();
  n.op = "input_view";
  n.view = &value;
  n.view_data = value.data();
  n.view_shape = value.shape();
  return leaf(requires_grad);
}

template <class T>
Var<T> Tape<T>::scalar(T value) {
  Node<T>& n = slot();
  n.op = "scalar";
  if (n.value.dimension() != 0) n.value.resize(Shape{});
  n.value() = value;
  return leaf(false);
}

template <class T>
void Tape<T>::bind_param(const Parameter<T>& p, const Var<T>& v) {
  check(v, "bind_param");
  if (shape(v) != p.value.shape()) {
    throw ShapeError("bind_param: the Var has shape " + shape_str(shape(v)) +
                     " but the parameter has shape " + shape_str(p.value.shape()));
  }
  for (auto& b : bound_params_) {
    if (b.first == &p) {
      b.second = v;
      return;
    }
  }
  bound_params_.emplace_back(&p, v);
}

template <class T>
Var<T> Tape<T>::param(Parameter<T>& p) {
  for (const auto& b : bound_params_) {
    if (b.first == &p) return b.second;
  }
  if (p.grad_shape() != p.value.shape()) {
    throw StateError("param: parameter value has shape " + shape_str(p.value.shape()) +
                     " but its grad has shape " + shape_str(p.grad_shape()) +
                     "; call zero_grad() after replacing a parameter's value");
  }
  Node<T>& n = slot();
  n.op = "param";
  n.param = &p;
  n.param_version = p.version;
  return leaf(p.requires_grad);
}

template <class T>
Var<T> Tape<T>::detach(const Var<T>& x) {
  const xt::xarray<T>& v = value(x);
  Node<T>& n = slot();
  n.op = "detach";
  if (n.value.shape() != v.shape()) n.value.resize(v.shape());
  std::copy(v.data(), v.data() + v.size(), n.value.data());
  return leaf(false);
}

// ---- backward ------------------------------------------------------------------------------

template <class T>
void Tape<T>::backward(const Var<T>& loss, BackwardOptions options) {
  const Node<T>& n = node_of(loss);
  if (n.val().size() != 1) {
    throw ShapeError(
        "backward: a gradient can be created implicitly only for a one-element "
        "output; '" +
        std::string(n.op) + "' (index " + std::to_string(loss.index_) + ") has shape " +
        shape_str(n.val().shape()) + ". Pass the upstream gradient: tape.backward(out, upstream)");
  }
  run_backward(loss, nullptr, options);
}

template <class T>
void Tape<T>::backward(const Var<T>& out, const xt::xarray<T>& upstream, BackwardOptions options) {
  const Node<T>& n = node_of(out);
  if (upstream.shape() != n.val().shape()) {
    throw ShapeError("backward: upstream gradient has shape " + shape_str(upstream.shape()) +
                     " but the output '" + std::string(n.op) + "' (index " + std::to_string(out.index_) +
                     ") has shape " + shape_str(n.val().shape()));
  }
  run_backward(out, &upstream, options);
}

namespace {

// Throws if node i, which the gradient reaches, cannot be backpropagated through: freed by an
// earlier backward, or bound to a Parameter / input_view array that changed after recording.
template <class T>
void check_backward_through(const Node<T>& n, std::size_t i) {
  if (n.freed) {
    throw StateError("backward: trying to backward through the graph a second time: '" + std::string(n.op) +
                     "' (index " + std::to_string(i) +
                     ") was already freed by a previous backward. "
                     "Pass BackwardOptions{.retain_graph = true} to the first backward if you need to "
                     "backward through the graph a second time");
  }
  if (n.param && n.param->version != n.param_version) {
    throw StateError("backward: a parameter used at tape index " + std::to_string(i) + " (shape " +
                     shape_str(n.param->value.shape()) +
                     ") was modified in place after it was recorded (version " +
                     std::to_string(n.param_version) + " -> " + std::to_string(n.param->version) +
                     "); record the forward pass again");
  }
  if (n.view && (n.view->data() != n.view_data || n.view->shape() != n.view_shape)) {
    throw StateError("backward: the array bound by input_view at tape index " + std::to_string(i) +
                     " (shape " + shape_str(n.view_shape) +
                     ") was resized or reallocated after it was recorded (now shape " +
                     shape_str(n.view->shape()) + "); keep it unchanged until reset()");
  }
  if (n.param && n.param->grad_shape() != n.param->value.shape()) {
    throw StateError("backward: parameter at tape index " + std::to_string(i) + " has value " +
                     shape_str(n.param->value.shape()) + " but grad " + shape_str(n.param->grad_shape()));
  }
}

// Pass 1: marks the nodes the gradient reaches from `top` (going down the parents of nodes that
// have a backward) and checks each, before any gradient is written, so an error leaves every
// grad untouched.
// The roots (nodes[top] and, for a backward of several outputs, the others below it) are
// marked by the caller, after clear_reached.
template <class T>
void clear_reached(std::deque<Node<T>>& nodes, std::size_t top) {
  for (std::size_t i = 0; i <= top; ++i) nodes[i].reached = false;
}

template <class T>
void propagate_reached(std::deque<Node<T>>& nodes, std::size_t top) {
  for (std::size_t i = top + 1; i-- > 0;) {
    Node<T>& n = nodes[i];
    if (!n.reached) continue;
    check_backward_through(n, i);
    if (!n.backward) continue;
    for (auto p : n.parents) {
      if (nodes[p].requires_grad) nodes[p].reached = true;
    }
  }
}

template <class T>
void mark_reached(std::deque<Node<T>>& nodes, std::size_t top) {
  clear_reached(nodes, top);
  nodes[top].reached = true;
  propagate_reached(nodes, top);
}

// Pass 2: intermediate and parameter-leaf grads start from zero; plain leaves accumulate
// across backward calls, as a PyTorch leaf's .grad does.
template <class T>
void clear_reached_grads(std::deque<Node<T>>& nodes, std::size_t top) {
  for (std::size_t i = 0; i <= top; ++i) {
    Node<T>& n = nodes[i];
    if (n.reached && (!n.is_leaf() || n.param)) n.has_grad = false;
    if (n.reached) n.grad_is_upstream = false;
  }
}

// The root's own dL/droot: 1 for a loss, else the caller's upstream. Returns the upstream when
// the root's backward should read it in place (nothing else reads an op's grad buffer after
// the sweep), null when it was written into a grad buffer.
template <class T>
const xt::xarray<T>* seed_root(Node<T>& root, const xt::xarray<T>* upstream) {
  if (root.param) {  // the loss is a parameter itself: dL/dp = upstream, added into p.grad
    xt::xarray<T>& pg = root.param->mutable_grad();
    T* g = pg.data();
    for (std::size_t j = 0, m = pg.size(); j < m; ++j) g[j] += upstream ? upstream->data()[j] : T(1);
    return nullptr;
  }
  if (root.has_grad) {  // a plain leaf that already holds a gradient
    if (upstream)
      root.grad += *upstream;
    else
      root.grad += T(1);
    return nullptr;
  }
  if (upstream && root.backward) {
    root.grad_is_upstream = true;
    return upstream;
  }
  if (root.grad.shape() != root.val().shape()) root.grad.resize(root.val().shape());
  if (upstream)
    std::copy(upstream->data(), upstream->data() + upstream->size(), root.grad.data());
  else
    root.grad.fill(T(1));
  root.has_grad = true;
  return nullptr;
}

// For a backward of several outputs: adds `seed` into the root's gradient (a root may also be
// reached from another root, or be listed twice, so nothing is read in place).
template <class T>
void seed_add(Node<T>& root, const xt::xarray<T>& seed) {
  const T* g = seed.data();
  if (root.param) {
    T* pg = root.param->mutable_grad().data();
    for (std::size_t j = 0, m = seed.size(); j < m; ++j) pg[j] += g[j];
    return;
  }
  if (!root.has_grad) {
    if (root.grad.shape() != root.val().shape()) root.grad.resize(root.val().shape());
    root.grad.fill(T(0));
    root.has_grad = true;
  }
  T* rg = root.grad.data();
  for (std::size_t j = 0, m = seed.size(); j < m; ++j) rg[j] += g[j];
}

// Pass 4, only once the sweep has finished: free the graph and, in anomaly mode, add into the
// Parameters' grads. Outside anomaly mode consumers add straight into Parameter::grad
// (BackwardCtx::input_grad: no copy); in anomaly mode they write the parameter node's own
// buffer, so a NumericalError in the sweep leaves every Parameter's grad as it was and the graph
// usable for another backward. (A plain leaf's .grad, which accumulates across calls, may hold
// part of a failed pass.)
template <class T>
void finish_backward(std::deque<Node<T>>& nodes, std::size_t top, bool retain_graph, bool anomaly) {
  for (std::size_t i = 0; i <= top; ++i) {
    Node<T>& n = nodes[i];
    if (!n.reached || !(n.has_grad || n.grad_is_upstream)) continue;
    if (n.backward) {
      if (!retain_graph) n.freed = true;
    } else if (n.param && anomaly) {
      T* g = n.param->mutable_grad().data();
      const T* d = n.grad.data();
      for (std::size_t j = 0, m = n.grad.size(); j < m; ++j) g[j] += d[j];
    }
  }
}

}  // namespace

template <class T>
void Tape<T>::run_backward(const Var<T>& out, const xt::xarray<T>* upstream, BackwardOptions options) {
  const std::size_t top = out.index_;
  Node<T>& root = nodes_[top];
  if (!root.requires_grad) {
    throw StateError("backward: '" + std::string(root.op) + "' (index " + std::to_string(top) +
                     ") does not require grad: none of the inputs it was computed from "
                     "requires grad, or it was computed under NoGradGuard");
  }
  const std::size_t sweeps = check_growth();
  mark_reached(nodes_, top);
  clear_reached_grads(nodes_, top);
  const xt::xarray<T>* root_grad = seed_root(root, upstream);
  // Pass 3: one reverse sweep. (Parameter leaves need no visit: their consumers' backward
  // functions added straight into Parameter::grad, see BackwardCtx::input_grad.)
  for (std::size_t i = top + 1; i-- > 0;) {
    Node<T>& n = nodes_[i];
    if (!n.reached || !(n.has_grad || n.grad_is_upstream) || !n.backward) continue;
    BackwardCtx<T> ctx(*this, n, i == top ? root_grad : nullptr);
    n.backward(ctx);
    if (detect_anomaly_) check_finite_input_grads(n, i);
  }
  finish_backward(nodes_, top, options.retain_graph, detect_anomaly_);
  growing_sweeps_ = sweeps;
  swept_size_ = size_;
}

template <class T>
std::size_t Tape<T>::check_growth() {
  const bool growing = swept_size_ > 0 && size_ > swept_size_;
  const std::size_t sweeps = growing_sweeps_ + (growing ? 1 : 0);
  if (!growing) return sweeps;
  const TapeGrowthCheck c = tape_growth_check();
  if (c.mode == TapeGrowthMode::off || sweeps < c.min_sweeps) return sweeps;
  if (c.mode == TapeGrowthMode::warn && growth_warned_) return sweeps;
  const std::size_t bytes = bytes_allocated();
  if (size_ < c.min_nodes && bytes < c.min_bytes) return sweeps;
  char mb[32];
  std::snprintf(mb, sizeof mb, "%.1f MB", static_cast<double>(bytes) / (1 << 20));
  const std::string msg =
      "tapegrad: backward() was called at least " + std::to_string(sweeps + 1) +
      " times on one tape without tape.reset(), each time on new nodes recorded on top of the "
      "previous graph: the tape now holds " +
      std::to_string(size_) + " nodes (" + mb +
      ") and keeps growing. Call tape.reset() at the start of every training step. (Shown once per "
      "tape; set_tape_growth_check in tapegrad/core/warning.hpp turns it off or into an error.)";
  if (c.mode == TapeGrowthMode::error) throw StateError(msg);
  growth_warned_ = true;
  emit_warning(msg);
  return sweeps;
}

template <class T>
void Tape<T>::check_backward_roots(const std::vector<Var<T>>& outputs,
                                   const std::vector<xt::xarray<T>>& grads) const {
  if (outputs.empty() || outputs.size() != grads.size()) {
    throw ValueError("backward: got " + std::to_string(outputs.size()) + " outputs and " +
                     std::to_string(grads.size()) +
                     " gradients; pass one gradient per output (and at least one)");
  }
  for (std::size_t k = 0; k < outputs.size(); ++k) {
    check(outputs[k], ("backward: output " + std::to_string(k)).c_str());
    const Node<T>& n = nodes_[outputs[k].index_];
    if (grads[k].shape() != n.val().shape()) {
      throw ShapeError("backward: gradient " + std::to_string(k) + " has shape " +
                       shape_str(grads[k].shape()) + " but output " + std::to_string(k) + " '" +
                       std::string(n.op) + "' (index " + std::to_string(outputs[k].index_) + ") has shape " +
                       shape_str(n.val().shape()));
    }
    if (!n.requires_grad) {
      throw StateError("backward: output " + std::to_string(k) + " '" + std::string(n.op) + "' (index " +
                       std::to_string(outputs[k].index_) + ") does not require grad");
    }
  }
}

template <class T>
void Tape<T>::backward(const std::vector<Var<T>>& outputs, const std::vector<xt::xarray<T>>& grads,
                       BackwardOptions options) {
  check_backward_roots(outputs, grads);
  const std::size_t sweeps = check_growth();
  std::size_t top = 0;
  for (const Var<T>& v : outputs) top = std::max<std::size_t>(top, v.index_);
  clear_reached(nodes_, top);
  for (const Var<T>& v : outputs) nodes_[v.index_].reached = true;
  propagate_reached(nodes_, top);
  clear_reached_grads(nodes_, top);
  for (std::size_t k = 0; k < outputs.size(); ++k) seed_add(nodes_[outputs[k].index_], grads[k]);
  for (std::size_t i = top + 1; i-- > 0;) {  // one reverse sweep, as run_backward's
    Node<T>& n = nodes_[i];
    if (!n.reached || !n.has_grad || !n.backward) continue;
    BackwardCtx<T> ctx(*this, n);
    n.backward(ctx);
    if (detect_anomaly_) check_finite_input_grads(n, i);
  }
  finish_backward(nodes_, top, options.retain_graph, detect_anomaly_);
  growing_sweeps_ = sweeps;
  swept_size_ = size_;
}

template <class T>
bool Tape<T>::has_grad(const Var<T>& v) const {
  const Node<T>& n = node_of(v);
  return n.param ? true : n.has_grad;
}

template <class T>
const xt::xarray<T>& Tape<T>::grad(const Var<T>& v) const {
  const Node<T>& n = node_of(v);
  if (n.param) return n.param->grad();
  if (n.grad_is_upstream) {
    throw StateError("grad: '" + std::string(n.op) + "' (index " + std::to_string(v.index_) +
                     ") was the output of backward(out, upstream): its gradient is the "
                     "upstream you passed; the tape does not keep a copy");
  }
  if (!n.has_grad) {
    throw StateError("grad: '" + std::string(n.op) + "' (index " + std::to_string(v.index_) +
                     ") has no gradient: " +
                     (n.requires_grad ? "no backward pass has reached it yet" : "it does not require grad"));
  }
  return n.grad;
}

// ---- BackwardCtx ---------------------------------------------------------------------------

// A parameter leaf's gradient goes straight into Parameter::grad: it accumulates across
// backward passes until zero_grad() anyway, and backward functions only ever add into this
// buffer, so the result is the same as accumulating in the node and adding the node's grad to
// the parameter afterwards, without zero-filling, writing and re-reading a buffer of the
// parameter's size (the shape was checked in run_backward's first pass).
template <class T>
xt::xarray<T>& BackwardCtx<T>::input_grad(std::size_t k) {
  Node<T>& p = parent(k);
  if (p.param && p.requires_grad && !tape_.detect_anomaly_) {
    p.has_grad = true;
    return p.param->mutable_grad();
  }
  if (!p.has_grad) {
    const Shape& s = p.val().shape();
    if (p.grad.shape() != s) p.grad.resize(s);
    p.grad.fill(T(0));
    p.has_grad = true;
  }
  return p.grad;
}

template <class T>
GradWrite<T> BackwardCtx<T>::input_grad_write(std::size_t k) {
  Node<T>& p = parent(k);
  if (p.param && p.requires_grad && !tape_.detect_anomaly_ && p.param->grad_is_lazy_zero()) {
    p.has_grad = true;  // the first write after zero_grad(): overwriting is adding into zero
    return {p.param->grad_for_overwrite().data(), T(0)};
  }
  if ((p.param && p.requires_grad) || p.has_grad) return {input_grad(k).data(), T(1)};
  const Shape& s = p.val().shape();
  if (p.grad.shape() != s) p.grad.resize(s);
  p.has_grad = true;
  return {p.grad.data(), T(0)};
}

template <class T>
void BackwardCtx<T>::accumulate(std::size_t k, const xt::xarray<T>& g) {
  xt::xarray<T>& acc = input_grad(k);
  sum_to_add(g, acc);
}

template <class T>
void sum_to_add(const xt::xarray<T>& g, xt::xarray<T>& acc) {
  T* a = acc.data();
  const T* gp = g.data();
  if (g.shape() == acc.shape()) {
    for (std::size_t i = 0, n = g.size(); i < n; ++i) a[i] += gp[i];
    return;
  }
  if (acc.size() == 1) {
    T s = 0;
    for (std::size_t i = 0, n = g.size(); i < n; ++i) s += gp[i];
    a[0] += s;
    return;
  }
  const std::size_t nd = g.dimension();
  if (acc.dimension() > nd) {
    throw ShapeError("sum_to: cannot reduce a gradient of shape " + shape_str(g.shape()) +
                     " to the larger shape " + shape_str(acc.shape()));
  }
  const auto sa = detail::broadcast_strides(acc.shape(), nd);
  const auto sg = detail::broadcast_strides(g.shape(), nd);
  detail::for_each_broadcast2(g.shape(), sg, sa,
                              [&](std::size_t, std::ptrdiff_t og, std::ptrdiff_t oa) { a[oa] += gp[og]; });
}

// ---- lifetime ------------------------------------------------------------------------------

template <class T>
void Tape<T>::reset() {
  size_ = 0;
  swept_size_ = 0;
  growing_sweeps_ = 0;
  bound_params_.clear();
  ++generation_;
}

template <class T>
void Tape<T>::truncate(std::size_t n) {
  if (n > size_) {
    throw ValueError("truncate: cannot roll the tape back to " + std::to_string(n) + " nodes; it has only " +
                     std::to_string(size_));
  }
  if (n == size_) return;  // nothing dropped: every Var of this generation stays valid
  size_ = n;
  swept_size_ = std::min(swept_size_, n);
  // Nodes below n keep their stamp (their Vars stay valid); whatever is recorded next into the
  // slots n.. gets the new one, which no Var of a dropped node carries.
  ++generation_;
  bound_params_.erase(std::remove_if(bound_params_.begin(), bound_params_.end(),
                                     [n](const auto& b) { return b.second.index_ >= n; }),
                      bound_params_.end());
}

template <class T>
void Tape<T>::release() {
  nodes_.clear();
  nodes_.shrink_to_fit();
  reset();
}

template <class T>
std::size_t Tape<T>::bytes_allocated() const {
  std::size_t b = 0;
  for (const auto& n : nodes_) {
    b += (n.value.size() + n.grad.size()) * sizeof(T);
    for (const auto& s : n.saved) b += s.size() * sizeof(T);
  }
  return b;
}

// ---- anomaly mode --------------------------------------------------------------------------

template <class T>
std::string Tape<T>::input_shapes(const Node<T>& n) const {
  std::string s;
  for (std::size_t k = 0; k < n.parents.size(); ++k) {
    s += (k ? ", " : "") + shape_str(nodes_[n.parents[k]].val().shape());
  }
  return s.empty() ? "none" : s;
}

template <class T>
void Tape<T>::check_finite_output(const Node<T>& n, std::size_t index) const {
  if (all_finite(n.val())) return;
  throw NumericalError("anomaly: forward of '" + std::string(n.op) + "' (tape index " +
                       std::to_string(index) + ", input shapes " + input_shapes(n) +
                       ") produced NaN or Inf in its output of shape " + shape_str(n.val().shape()));
}

template <class T>
void Tape<T>::check_finite_input_grads(const Node<T>& n, std::size_t index) const {
  for (std::size_t k = 0; k < n.parents.size(); ++k) {
    const Node<T>& p = nodes_[n.parents[k]];
    // Anomaly mode only: here even a parameter's gradient is in its node's buffer (see pass 4).
    if (p.has_grad && !all_finite(p.grad)) {
      throw NumericalError("anomaly: backward of '" + std::string(n.op) + "' (tape index " +
                           std::to_string(index) + ", input shapes " + input_shapes(n) +
                           ") produced NaN or Inf in the gradient of input " + std::to_string(k));
    }
  }
}

// ---- introspection -------------------------------------------------------------------------

template <class T>
NodeInfo Tape<T>::info(std::size_t index) const {
  if (index >= size_) {
    throw ValueError("info: index " + std::to_string(index) + " is past the tape's " + std::to_string(size_) +
                     " nodes");
  }
  const Node<T>& n = nodes_[index];
  return NodeInfo{index, n.op, n.val().shape(), n.parents, n.requires_grad, n.param != nullptr, n.name};
}

template <class T>
Var<T> Tape<T>::name(const Var<T>& v, const std::string& label) {
  check(v, "name");
  nodes_[v.index_].name = label;
  return v;
}

namespace {

// "[1, 2.5, -0.3333, ...]": the first `max` entries in row-major order, %.4g.
template <class T>
std::string compact_values(const xt::xarray<T>& a, std::size_t max) {
  std::string s = "[";
  const std::size_t n = std::min(a.size(), max);
  char buf[32];
  for (std::size_t i = 0; i < n; ++i) {
    std::snprintf(buf, sizeof buf, "%.4g", static_cast<double>(a.data()[i]));
    s += (i ? ", " : "") + std::string(buf);
  }
  if (a.size() > n) s += n ? ", ..." : "...";
  return s + "]";
}

// A node's gradient from the last backward: a Parameter's accumulated one, "(upstream)" for the
// output of backward(out, upstream) (the tape keeps no copy), "-" where there is none.
template <class T>
std::string grad_text(const Node<T>& n, std::size_t max) {
  if (!n.requires_grad) return "-";
  if (n.param) return compact_values(n.param->grad(), max);
  if (n.grad_is_upstream) return "(upstream)";
  return n.has_grad ? compact_values(n.grad, max) : "-";
}

std::string pad(std::string s, std::size_t width) {
  if (s.size() < width) s.append(width - s.size(), ' ');
  return s;
}

// Escapes a label for a double-quoted DOT string.
std::string dot_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c == '\n' ? ' ' : c;
  }
  return out;
}

}  // namespace

template <class T>
std::string Tape<T>::describe(const DescribeOptions& o) const {
  std::size_t name_w = 0;
  std::vector<std::string> values(size_), grads(size_);
  std::size_t value_w = 5;  // "value"
  for (std::size_t i = 0; i < size_; ++i) {
    name_w = std::max(name_w, nodes_[i].name.size());
    if (o.show_values) values[i] = compact_values(nodes_[i].val(), o.max_elements);
    if (o.show_grads) grads[i] = grad_text(nodes_[i], o.max_elements);
    value_w = std::max(value_w, values[i].size());
  }
  if (name_w) name_w = std::max<std::size_t>(name_w, 4);
  const bool extra = o.show_values || o.show_grads;
  std::ostringstream os;
  os << "index  " << (name_w ? pad("name", name_w) + "  " : "")
     << "op                 shape            parents        requires_grad";
  if (o.show_values) os << "  " << (o.show_grads ? pad("value", value_w) : "value");
  if (o.show_grads) os << "  grad";
  os << "\n";
  for (std::size_t i = 0; i < size_; ++i) {
    const NodeInfo r = info(i);
    std::string parents;
    for (std::size_t k = 0; k < r.parents.size(); ++k)
      parents += (k ? "," : "") + std::to_string(r.parents[k]);
    const std::string shape = shape_str(r.shape);
    char line[256];
    std::snprintf(line, sizeof line, "%5zu  ", i);
    os << line << (name_w ? pad(r.name, name_w) + "  " : "");
    std::snprintf(line, sizeof line, "%-18s %-16s %-14s %s",
                  (r.op + (r.is_param ? " (parameter)" : "")).c_str(), shape.c_str(),
                  parents.empty() ? "-" : parents.c_str(), r.requires_grad ? "yes" : "no");
    os << (extra ? pad(line, 64) : std::string(line));  // under "requires_grad"
    if (o.show_values) os << "  " << (o.show_grads ? pad(values[i], value_w) : values[i]);
    if (o.show_grads) os << "  " << grads[i];
    os << "\n";
  }
  return os.str();
}

template <class T>
std::string Tape<T>::to_dot(const DescribeOptions& o) const {
  std::ostringstream os;
  os << "digraph tape {\n  rankdir=" << (o.left_to_right ? "LR" : "TB")
     << ";\n  node [shape=box, fontname=\"monospace\"];\n";
  for (std::size_t i = 0; i < size_; ++i) {
    const Node<T>& n = nodes_[i];
    os << "  n" << i << " [label=\"" << i << ": " << n.op;
    if (!n.name.empty()) os << " '" << dot_escape(n.name) << "'";
    os << "\\n" << shape_str(n.val().shape());
    if (o.show_values) os << "\\nvalue " << compact_values(n.val(), o.max_elements);
    if (o.show_grads) os << "\\ngrad " << grad_text(n, o.max_elements);
    os << "\"";
    if (n.param)
      os << ", style=filled, fillcolor=\"#fde9a9\"";
    else if (n.is_leaf())
      os << ", style=filled, fillcolor=\"#dbe9f6\"";
    if (!n.requires_grad) os << ", color=gray";
    os << "];\n";
    for (auto p : n.parents) os << "  n" << p << " -> n" << i << ";\n";
  }
  if (o.inputs_in_order) {  // the leaves on one rank, chained by invisible edges in creation order
    std::string same, chain;
    for (std::size_t i = 0; i < size_; ++i) {
      if (!nodes_[i].is_leaf()) continue;
      same += " n" + std::to_string(i) + ";";
      chain += (chain.empty() ? "n" : " -> n") + std::to_string(i);
    }
    if (chain.find("->") != std::string::npos) {
      os << "  { rank=same;" << same << " }\n  " << chain << " [style=invis];\n";
    }
  }
  os << "}\n";
  return os.str();
}

template class Var<float>;
template class Var<double>;
template class Recorder<float>;
template class Recorder<double>;
template class BackwardCtx<float>;
template class BackwardCtx<double>;
template class Tape<float>;
template class Tape<double>;
template void sum_to_add<float>(const xt::xarray<float>&, xt::xarray<float>&);
template void sum_to_add<double>(const xt::xarray<double>&, xt::xarray<double>&);

}  // namespace tapegrad
