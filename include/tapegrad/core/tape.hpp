#pragma once
// The tape: reverse-mode autodiff as one vector of nodes in creation order.
//
// Creation order is a topological order (an op can only use values that already exist), so
// `backward(loss)` seeds dL/dloss = 1 and walks the nodes once, from the loss down to node 0,
// calling each node's backward function. No recursion, no visited sets, no shared pointers.
//
// Memory: nodes live in a std::deque (references stay valid while the tape grows) and are
// never destroyed by reset(): a node slot keeps its arrays, and the next step's op in the same
// slot writes into them. A training loop that records the same graph every step therefore
// allocates nothing after its first step. release() gives the memory back.
#include <cassert>
#include <cstdint>
#include <deque>
#include <initializer_list>
#include <string>
#include <type_traits>
#include <vector>

#include <xtensor/xarray.hpp>

#include "tapegrad/core/error.hpp"
#include "tapegrad/core/grad_write.hpp"
#include "tapegrad/core/parameter.hpp"
#include "tapegrad/core/shape.hpp"

namespace tapegrad {

template <class T>
class Tape;
template <class T>
class BackwardCtx;
namespace detail {
struct TapeTestAccess;

// Saved state is addressed by name: each op declares its slots next to it as an
// `enum class ... : std::size_t` whose last enumerator, `count`, is the number of slots, e.g.
//   enum class LnSaved : std::size_t { mean_hi, rstd, mean_lo, count };
// and records r.save(LnSaved::rstd), reads c.saved(LnSaved::rstd). A plain number does not
// compile: a positional slot is a convention that the recording and the backward can disagree on.
template <class E>
constexpr std::size_t slot_index(E slot) {
  static_assert(std::is_enum<E>::value && !std::is_convertible<E, std::size_t>::value,
                "saved state is addressed by an op's enum class, not by a number");
  return static_cast<std::size_t>(slot);
}
template <class E>
constexpr std::size_t slot_count() {
  return slot_index(E::count);
}
// Grows v to E's slot count (never shrinks it: the arrays of a longer earlier occupant stay).
template <class E, class V>
void grow_to_slots(V& v) {
  if (v.size() < slot_count<E>()) v.resize(slot_count<E>());
}
}  // namespace detail

// A read-only run of a node's ints: the variable-length list an op keeps after its named ints.
struct IntSpan {
  const std::ptrdiff_t* first = nullptr;
  const std::ptrdiff_t* last = nullptr;
  const std::ptrdiff_t* begin() const { return first; }
  const std::ptrdiff_t* end() const { return last; }
  std::size_t size() const { return static_cast<std::size_t>(last - first); }
  std::ptrdiff_t operator[](std::size_t k) const { return first[k]; }
};

// A scalar argument of an op on Var<T>: T is deduced from the Var only, so `x * 2.0` works
// for Var<float> too.
template <class T>
struct NonDeduced {
  using type = T;
};
template <class T>
using scalar_t = typename NonDeduced<T>::type;

// ---- gradient mode (the one documented piece of thread-local state) -----------------------
bool grad_enabled() noexcept;
void set_grad_enabled(bool enabled) noexcept;

// RAII scope in which ops compute values but record no backward (torch::NoGradGuard).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// ---- Var: a cheap handle to a node ---------------------------------------------------------
// {tape, generation, index}: 24 bytes, copied, never owning memory. The generation detects use
// of a Var after tape.reset() or after tape.truncate() dropped its node: a Var is live while its
// index is below tape.size() and its generation equals the one stamped on the node in its slot
// (see Tape::check). It is 64-bit so that it never wraps: with 32 bits a Var kept across 2^32
// resets (an hour of tiny steps) would read whatever node was recorded into its slot then;
// 2^64 resets at one per nanosecond take 584 years.
template <class T>
class Var {
 public:
  using value_type = T;
  Var() = default;

  Tape<T>& tape() const;
  std::size_t index() const { return index_; }
  bool defined() const { return tape_ != nullptr; }

  const xt::xarray<T>& value() const;
  const Shape& shape() const { return value().shape(); }
  std::size_t ndim() const { return value().dimension(); }
  std::size_t size() const { return value().size(); }
  bool requires_grad() const;
  const xt::xarray<T>& grad() const;
  // The value of a one-element Var.
  T item() const;

 private:
  friend class Tape<T>;
  Var(Tape<T>* t, std::uint32_t index, std::uint64_t generation)
      : tape_(t), generation_(generation), index_(index) {}
  Tape<T>* tape_ = nullptr;
  std::uint64_t generation_ = 0;
  std::uint32_t index_ = 0;
};

// ---- Node ----------------------------------------------------------------------------------
// A node's backward is a plain function pointer: ops write it as a captureless lambda, so
// recording allocates no closure. Whatever backward needs beyond the inputs' and the output's
// values goes into `saved` (arrays), `scalars` and `ints`, each addressed through the op's own
// slot enum (see detail::slot_index), as many slots as the op declares. `ints` may continue
// past the named slots with a variable-length list (axes, indices). reset() keeps the `saved`
// arrays, so the slot's next op writes into them; `scalars` and `ints` are cleared, keeping
// their capacity.
template <class T>
struct Node {
  using BackwardFn = void (*)(BackwardCtx<T>&);

  const char* op = "";
  xt::xarray<T> value;
  xt::xarray<T> grad;
  std::vector<std::uint32_t> parents;
  BackwardFn backward = nullptr;
  Parameter<T>* param = nullptr;        // a leaf bound to a Parameter reads param->value
  std::uint64_t param_version = 0;      // the version it bound
  const xt::xarray<T>* view = nullptr;  // a leaf from input_view() reads the caller's array
  const T* view_data = nullptr;         // ... whose buffer and shape were these when bound
  Shape view_shape;
  std::vector<xt::xarray<T>> saved;
  std::vector<double> scalars;
  std::vector<std::ptrdiff_t> ints;
  bool requires_grad = false;
  bool has_grad = false;
  bool freed = false;             // backward ran through it without retain_graph
  bool reached = false;           // scratch for backward's reachability pass
  bool grad_is_upstream = false;  // root of backward(out, upstream): its grad was not kept
  std::string name;               // given by Tape::name, shown by describe() and to_dot()
  std::uint64_t generation = 0;   // the tape's generation when this slot was last recorded

  bool is_leaf() const { return parents.empty(); }
  const xt::xarray<T>& val() const { return view ? *view : param ? param->value : value; }
};

// ---- recording an op -----------------------------------------------------------------------
// Returned by Tape::record. The op writes its output (and, when requires_grad(), what its
// backward needs) into the node's slot, then calls finish(). Until finish() the node is not
// part of the tape: an exception in between leaves the tape unchanged.
template <class T>
class Recorder {
 public:
  bool requires_grad() const { return node_.requires_grad; }
  // The output buffer, resized to `shape` (no allocation when the slot already had that size).
  xt::xarray<T>& out(const Shape& shape) {
    if (node_.value.shape() != shape) node_.value.resize(shape);
    return node_.value;
  }
  xt::xarray<T>& out() { return node_.value; }
  // Saved array `slot` of the op's enum E (see detail::slot_index). The first save makes all of
  // E's slots, so a reference from an earlier save() of the same op stays valid.
  template <class E>
  xt::xarray<T>& save(E slot) {
    detail::grow_to_slots<E>(node_.saved);
    return node_.saved[detail::slot_index(slot)];
  }
  template <class E>
  void set_scalar(E slot, double v) {
    detail::grow_to_slots<E>(node_.scalars);
    node_.scalars[detail::slot_index(slot)] = v;
  }
  template <class E>
  void set_int(E slot, std::ptrdiff_t v) {
    detail::grow_to_slots<E>(node_.ints);
    node_.ints[detail::slot_index(slot)] = v;
  }
  // The ints, for an op that keeps a list: push_back appends it after E's named ints (which
  // exist from here on), read back with BackwardCtx::int_list<E>().
  template <class E>
  std::vector<std::ptrdiff_t>& int_list() {
    detail::grow_to_slots<E>(node_.ints);
    return node_.ints;
  }
  // All of the ints, for an op whose ints are just a list (axes, a permutation, targets).
  std::vector<std::ptrdiff_t>& ints() { return node_.ints; }
  Var<T> finish(typename Node<T>::BackwardFn backward);

 private:
  friend class Tape<T>;
  Recorder(Tape<T>& t, Node<T>& n) : tape_(t), node_(n) {}
  Tape<T>& tape_;
  Node<T>& node_;
};

struct BackwardOptions {
  // Keep the graph usable for another backward (PyTorch's retain_graph).
  bool retain_graph = false;
};

// One row of Tape::describe(): what a teaching printout or a test looks at.
struct NodeInfo {
  std::size_t index;
  std::string op;
  Shape shape;
  std::vector<std::uint32_t> parents;
  bool requires_grad;
  bool is_param;
  std::string name = {};  // Tape::name's, or empty
};

// What Tape::describe() and Tape::to_dot() show beyond each node's op, shape and parents (and
// its name, when it has one: Tape::name). Positional, C++17: DescribeOptions{true, true}.
struct DescribeOptions {
  bool show_values = false;      // each node's value: its first max_elements entries, "..." after
  bool show_grads = false;       // its gradient from the last backward, "-" where there is none
  std::size_t max_elements = 6;  // per value or gradient
  bool inputs_in_order = false;  // to_dot: the leaves on one rank, in the order they were created
  bool left_to_right = true;     // to_dot: rankdir=LR (inputs left, loss right); false: top to bottom
};

template <class T>
class Tape {
 public:
  Tape() = default;
  Tape(const Tape&) = delete;  // Vars point at their tape: it must not move or copy
  Tape& operator=(const Tape&) = delete;

  // ---- leaves ----
  Var<T> input(const xt::xarray<T>& value, bool requires_grad = false);
  Var<T> input(xt::xarray<T>&& value, bool requires_grad = false);
  // Binds `value` without copying it, as param() binds a Parameter: for large inputs that
  // live across steps (a dataset held in memory, a benchmark's input). The array must stay
  // alive and unchanged until reset(): ops and backward read it in place. backward throws
  // StateError if it was resized or reallocated; a change of its contents cannot be detected.
  Var<T> input_view(const xt::xarray<T>& value, bool requires_grad = false);
  Var<T> constant(const xt::xarray<T>& value) { return input(value, false); }
  Var<T> scalar(T value);
  // Binds a Parameter without copying it; backward adds into p.grad().
  Var<T> param(Parameter<T>& p);
  // A new leaf with x's value that does not require grad.
  Var<T> detach(const Var<T>& x);
  // Functional call: until reset(), param(p) returns `v` instead of binding p. gradcheck of a
  // module uses this to treat the module's parameters as ordinary differentiable inputs.
  void bind_param(const Parameter<T>& p, const Var<T>& v);

  // ---- backward ----
  // Scalar (one-element) loss: dL/dloss = 1.
  void backward(const Var<T>& loss, BackwardOptions options = {});
  // Any output, with the upstream gradient dL/dout of the output's shape. The sweep reads
  // `upstream` in place, without a copy, so afterwards the tape holds no gradient for `out`
  // itself (grad(out) throws, as PyTorch keeps no .grad for a non-leaf): it is `upstream`.
  // (A leaf `out` accumulates upstream into its grad as usual.)
  void backward(const Var<T>& out, const xt::xarray<T>& upstream, BackwardOptions options = {});
  // Several outputs at once, torch.autograd.backward(outputs, grads): `tape.backward({out, h_n},
  // {g_out, g_h})` gives every input the sum of what backward(out, g_out) and backward(h_n, g_h)
  // would give, in one sweep (an output may feed another, or be listed twice: its gradients add
  // up). Each output keeps its gradient (grad(out) reads it), unlike backward(out, upstream)
  // (which `tape.backward({out}, {g})`, one of each in braces, calls).
  // Checked before anything is written: an empty list or a different number of gradients is a
  // ValueError, a gradient of another shape than its output a ShapeError naming both, an empty
  // or stale Var, one of another tape, or an output that does not require grad a StateError
  // naming its position.
  void backward(const std::vector<Var<T>>& outputs, const std::vector<xt::xarray<T>>& grads,
                BackwardOptions options = {});

  // ---- access ----
  const xt::xarray<T>& value(const Var<T>& v) const { return node_of(v).val(); }
  const Shape& shape(const Var<T>& v) const { return node_of(v).val().shape(); }
  bool requires_grad(const Var<T>& v) const { return node_of(v).requires_grad; }
  bool has_grad(const Var<T>& v) const;
  // dL/dv from the last backward. For a Parameter leaf this is the parameter's accumulated grad.
  const xt::xarray<T>& grad(const Var<T>& v) const;
  // Throws unless v is a live Var of this tape; `what` names the caller in the message.
  void check(const Var<T>& v, const char* what) const;

  // ---- lifetime ----
  std::size_t size() const { return size_; }
  // Forget all nodes; keep their buffers for the next step. Invalidates every Var.
  void reset();
  // Forget nodes n, n+1, ... (keeping their buffers, as reset() does): rolls the tape back to
  // the size it had when size() returned n. Vars of nodes below n stay valid; Vars of the
  // dropped nodes become invalid (using one is a StateError), also once new nodes are recorded
  // into their slots, and bind_param() entries bound to a dropped Var are forgotten.
  // Sequential::forward uses it to undo a forward that throws part-way. n > size() is a
  // ValueError; truncate(size()) changes nothing.
  void truncate(std::size_t n);
  // Forget all nodes and free their memory.
  void release();
  // Bytes held by node arrays (values, grads, saved), live or kept for reuse.
  std::size_t bytes_allocated() const;

  // ---- anomaly mode ----
  // When on, the first op whose forward output or backward input-gradient has a NaN or Inf
  // throws NumericalError naming the op, its tape index and its input shapes.
  void set_detect_anomaly(bool on) { detect_anomaly_ = on; }
  bool detect_anomaly() const { return detect_anomaly_; }

  // ---- introspection ----
  NodeInfo info(std::size_t index) const;
  // A table: index, op, shape, parents, requires_grad; a name column when a node has a name;
  // value and grad columns when asked for.
  std::string describe(const DescribeOptions& options = {}) const;
  // Graphviz DOT of the live nodes (render with `dot -Tpng`): one box per node, "index: op", its
  // name when it has one, its shape, and the value and grad lines when asked for.
  std::string to_dot(const DescribeOptions& options = {}) const;
  // Names v's node for describe() and to_dot() (micrograd's `label`), e.g. tape.name(loss, "loss");
  // returns v. An empty name removes it; names need not be unique. A Var of another tape, a stale
  // or an empty one is a StateError (nothing is named). reset() forgets the names with the nodes.
  Var<T> name(const Var<T>& v, const std::string& label);
  // The name given to v's node ("" if none).
  const std::string& name(const Var<T>& v) const { return node_of(v).name; }

  // ---- for op implementations ----
  // The inputs' tape, after checking every input as record() does: a StateError naming `op`
  // and the input for an empty Var, one from another tape, or one from before reset() (or
  // dropped by truncate()). An op calls it first, before it reads any input's shape, so that
  // every error names the op ("matmul: input 1 ...") rather than the tape accessor.
  static Tape& of(const char* op, std::initializer_list<Var<T>> inputs);
  static Tape& of(const char* op, const std::vector<Var<T>>& inputs);
  // The same check for input k of op alone (an optional input, checked when given).
  void check_input(const char* op, std::size_t k, const Var<T>& v) const;
  // Starts recording op `op` with these inputs (all from this tape). Validates the inputs and
  // prepares a node slot; the op then fills it through the Recorder and calls finish().
  Recorder<T> record(const char* op, std::initializer_list<Var<T>> inputs);
  Recorder<T> record(const char* op, const std::vector<Var<T>>& inputs);
  // The live node at `index`: a ValueError naming the index and size() past the end (a slot
  // kept for reuse beyond size() holds a dropped node and is not live).
  const Node<T>& node(std::size_t index) const {
    if (index >= size_) {
      throw ValueError("Tape::node: index " + std::to_string(index) + " is out of range for a tape of " +
                       std::to_string(size_) + " nodes");
    }
    return nodes_[index];
  }

 private:
  friend class Recorder<T>;
  friend class BackwardCtx<T>;
  const Node<T>& node_of(const Var<T>& v) const;
  template <class It>
  static Tape& of_range(const char* op, It first, It last);
  Node<T>& slot();  // the node slot at size_, reset for reuse
  Var<T> commit(Node<T>& n, typename Node<T>::BackwardFn backward_fn);
  Var<T> leaf(bool requires_grad);
  template <class It>
  Recorder<T> record_range(const char* op, It first, It last);
  void run_backward(const Var<T>& out, const xt::xarray<T>* upstream, BackwardOptions options);
  // The forgotten-reset() check (core/warning.hpp): warns once or throws; returns the count of
  // growing sweeps including this backward.
  std::size_t check_growth();
  void check_backward_roots(const std::vector<Var<T>>& outputs,
                            const std::vector<xt::xarray<T>>& grads) const;
  void check_finite_output(const Node<T>& n, std::size_t index) const;
  void check_finite_input_grads(const Node<T>& n, std::size_t index) const;
  std::string input_shapes(const Node<T>& n) const;

  std::deque<Node<T>> nodes_;
  std::vector<std::pair<const Parameter<T>*, Var<T>>> bound_params_;
  std::size_t size_ = 0;
  // Stamped on each node as it is recorded and carried by its Vars. reset() and a truncate()
  // that drops nodes start a new generation, so a slot recorded again afterwards carries a
  // stamp that no Var of its earlier occupant has.
  std::uint64_t generation_ = 1;
  bool detect_anomaly_ = false;
  // For check_growth: size_ after the last backward since reset() (0: none), the backwards
  // since reset() that found new nodes on top of it, and whether this tape has warned.
  std::size_t swept_size_ = 0;
  std::size_t growing_sweeps_ = 0;
  bool growth_warned_ = false;
  friend struct detail::TapeTestAccess;  // tests: start a generation near 2^32
};

// ---- what a backward function sees ---------------------------------------------------------

template <class T>
class BackwardCtx {
 public:
  // `grad` is dL/d(output) when it is not the node's own buffer (the caller's upstream).
  BackwardCtx(Tape<T>& t, Node<T>& n, const xt::xarray<T>* grad = nullptr)
      : tape_(t), node_(n), grad_(grad ? grad : &n.grad) {}

  // dL/d(output), shaped like the output.
  const xt::xarray<T>& grad() const { return *grad_; }
  const xt::xarray<T>& output() const { return node_.value; }
  std::size_t num_inputs() const { return node_.parents.size(); }
  const xt::xarray<T>& input(std::size_t k) const { return parent(k).val(); }
  bool needs_grad(std::size_t k) const { return parent(k).requires_grad; }
  // Input k's gradient buffer, shaped like input k: zero-filled when this backward pass
  // touches it first, otherwise holding what other consumers already added. Add into it.
  xt::xarray<T>& input_grad(std::size_t k);
  // For a backward that writes EVERY element of input k's gradient: the same buffer, without
  // the zero-fill, and BLAS's beta for it (GradWrite). Write all of it before asking for
  // another input's buffer (two inputs may be the same node or Parameter).
  GradWrite<T> input_grad_write(std::size_t k);
  // Adds g into input k's gradient. g may have a broadcast shape (the output's): it is
  // summed back down to input k's shape (NumPy broadcasting in reverse).
  void accumulate(std::size_t k, const xt::xarray<T>& g);

  // What the op recorded, by its slot enum E (asserted in range in debug builds).
  template <class E>
  const xt::xarray<T>& saved(E slot) const {
    return node_.saved[checked(slot, node_.saved.size())];
  }
  template <class E>
  double scalar(E slot) const {
    return node_.scalars[checked(slot, node_.scalars.size())];
  }
  template <class E>
  std::ptrdiff_t int_at(E slot) const {
    return node_.ints[checked(slot, node_.ints.size())];
  }
  // The list the op appended after E's named ints (Recorder::int_list<E>()).
  template <class E>
  IntSpan int_list() const {
    const std::ptrdiff_t* p = node_.ints.data();
    assert(detail::slot_count<E>() <= node_.ints.size());
    return {p + detail::slot_count<E>(), p + node_.ints.size()};
  }
  // All of the ints, for an op whose ints are just a list.
  const std::vector<std::ptrdiff_t>& ints() const { return node_.ints; }
  const Node<T>& node() const { return node_; }

 private:
  Node<T>& parent(std::size_t k) const { return tape_.nodes_[node_.parents[k]]; }
  template <class E>
  static std::size_t checked(E slot, std::size_t size) {
    const std::size_t i = detail::slot_index(slot);
    assert(i < size && "BackwardCtx: a slot the op did not record");
    (void)size;
    return i;
  }
  Tape<T>& tape_;
  Node<T>& node_;
  const xt::xarray<T>* grad_;
};

// acc += g summed down to acc's shape, where acc's shape broadcasts to g's shape: every element
// of g is added to the element of acc it was broadcast from. This is the adjoint of broadcasting
// a value of acc's shape up to g's shape. An acc of more dimensions than g (and more than one
// element) is a ShapeError.
template <class T>
void sum_to_add(const xt::xarray<T>& g, xt::xarray<T>& acc);

// ---- Var's inline members ----
template <class T>
Tape<T>& Var<T>::tape() const {
  if (!tape_) throw StateError("Var: this Var is empty (default-constructed); it belongs to no tape");
  return *tape_;
}
template <class T>
const xt::xarray<T>& Var<T>::value() const {
  return tape().value(*this);
}
template <class T>
bool Var<T>::requires_grad() const {
  return tape().requires_grad(*this);
}
template <class T>
const xt::xarray<T>& Var<T>::grad() const {
  return tape().grad(*this);
}

extern template class Tape<float>;
extern template class Tape<double>;
extern template class Var<float>;
extern template class Var<double>;
extern template class Recorder<float>;
extern template class Recorder<double>;
extern template class BackwardCtx<float>;
extern template class BackwardCtx<double>;

}  // namespace tapegrad
