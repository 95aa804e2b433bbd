#pragma once
#include "tapegrad/core/random.hpp"
#include "tapegrad/nn/module.hpp"

namespace tapegrad {

class LinearOptions {
 public:
  LinearOptions& bias(bool b) {
    bias_ = b;
    return *this;
  }
  bool bias() const { return bias_; }

 private:
  bool bias_ = true;
};

// torch.nn.Linear: y = x W^T + b for x of shape (..., in_features).
// Init as PyTorch: W ~ kaiming_uniform(a = sqrt(5)), which is U(-1/sqrt(in), 1/sqrt(in)), and
// b ~ U(-1/sqrt(in), 1/sqrt(in)), drawn from `gen`.
template <class T>
class Linear : public Module<T> {
 public:
  Linear(std::size_t in_features, std::size_t out_features, LinearOptions options = {},
         Generator& gen = default_generator());
  // Linear(in_features, out_features, gen): the default options, drawn from gen.
  Linear(std::size_t in_features, std::size_t out_features, Generator& gen)
      : Linear(in_features, out_features, LinearOptions(), gen) {}
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "Linear"; }
  std::string extra_repr() const override;

  // Public parameters are pointers in every module, as an optional one (bias) must be: weight is
  // never null, bias is null when LinearOptions().bias(false).
  Parameter<T>* weight;
  Parameter<T>* bias = nullptr;

 private:
  std::size_t in_, out_;
};

extern template class Linear<float>;
extern template class Linear<double>;

}  // namespace tapegrad
