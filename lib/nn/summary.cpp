#include "tapegrad/nn/summary.hpp"

#include <map>
#include <vector>

#include <xtensor/xbuilder.hpp>

namespace tapegrad {

namespace {

// The last output shape of each module called during summary's forward.
class ShapeRecorder : public detail::ForwardObserver {
 public:
  void called(const void* module, const Shape& output) override { shapes_[module] = output; }
  const Shape* find(const void* module) const {
    auto it = shapes_.find(module);
    return it == shapes_.end() ? nullptr : &it->second;
  }

 private:
  std::map<const void*, Shape> shapes_;
};

// Installs a recorder on this thread for its lifetime (also when the forward throws).
class ObserverScope {
 public:
  explicit ObserverScope(detail::ForwardObserver* o) : previous_(detail::set_forward_observer(o)) {}
  ~ObserverScope() { detail::set_forward_observer(previous_); }
  ObserverScope(const ObserverScope&) = delete;
  ObserverScope& operator=(const ObserverScope&) = delete;

 private:
  detail::ForwardObserver* previous_;
};

// 1234567 -> "1,234,567"
std::string thousands(std::size_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string shape_list(const Shape* s) {
  if (!s) return "--";
  std::string out = "[";
  for (std::size_t i = 0; i < s->size(); ++i) out += (i ? ", " : "") + std::to_string((*s)[i]);
  return out + "]";
}

// Pads to `width` characters (UTF-8: the tree's box-drawing characters are one each), keeping
// at least one space after a longer text.
std::string pad(const std::string& s, std::size_t width) {
  std::size_t chars = 0;
  for (unsigned char c : s) chars += (c & 0xC0) != 0x80;
  return s + std::string(chars < width ? width - chars : 1, ' ');
}

struct Row {
  std::string label, shape, params;
};

// The parameters a module holds itself (its own names have no '.').
template <class T>
std::string own_params(Module<T>& m) {
  std::size_t n = 0;
  for (const auto& np : m.named_parameters()) {
    if (np.first.find('.') == std::string::npos) n += np.second->size();
  }
  return n ? thousands(n) : "--";
}

template <class T>
void collect(Module<T>& m, const ShapeRecorder& rec, const std::string& prefix, std::size_t depth,
             std::vector<Row>& rows) {
  const auto children = m.named_children();
  for (std::size_t k = 0; k < children.size(); ++k) {
    Module<T>& c = *children[k].second;
    const bool last = k + 1 == children.size();
    rows.push_back(Row{prefix + (last ? "└─" : "├─") + c.type_name() + ": " + std::to_string(depth) + "-" +
                           std::to_string(k + 1),
                       shape_list(rec.find(&c)), own_params(c)});
    collect(c, rec, prefix + (last ? "     " : "│    "), depth + 1, rows);
  }
}

}  // namespace

template <class T>
std::string summary(Module<T>& model, const Shape& input_shape) {
  checked_numel("summary: input shape", input_shape);
  ShapeRecorder rec;
  {
    Tape<T> tape;
    EvalModeGuard eval;
    NoGradGuard no_grad;
    ObserverScope scope(&rec);
    model(tape, tape.input(xt::xarray<T>(xt::zeros<T>(input_shape))));
  }
  std::vector<Row> rows{Row{model.type_name(), shape_list(rec.find(&model)), own_params(model)}};
  collect(model, rec, "", 1, rows);
  std::size_t total = 0, trainable = 0;
  for (const Parameter<T>* p : model.parameters()) {
    total += p->size();
    if (p->requires_grad) trainable += p->size();
  }
  const std::string rule(90, '=');
  std::string out =
      rule + "\n" + pad("Layer (type:depth-idx)", 41) + pad("Output Shape", 26) + "Param #\n" + rule + "\n";
  for (const Row& r : rows) out += pad(r.label, 41) + pad(r.shape, 26) + r.params + "\n";
  out += rule + "\nTotal params: " + thousands(total) + "\nTrainable params: " + thousands(trainable) +
         "\nNon-trainable params: " + thousands(total - trainable) + "\n" + rule + "\n";
  return out;
}

template std::string summary<float>(Module<float>&, const Shape&);
template std::string summary<double>(Module<double>&, const Shape&);

}  // namespace tapegrad
