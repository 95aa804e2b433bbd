#pragma once
// RMSNorm module with the semantics of PyTorch 2.4's torch.nn.RMSNorm. The arithmetic is the
// fused op of ops/rms_norm.hpp; the module holds the weight.
#include <optional>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/ops/rms_norm.hpp"

namespace tapegrad {

class RMSNormOptions {
 public:
  // std::nullopt (the default): the dtype's machine epsilon, as PyTorch 2.4.
  RMSNormOptions& eps(std::optional<double> e) {
    eps_ = e;
    return *this;
  }
  RMSNormOptions& elementwise_affine(bool a) {
    affine_ = a;
    return *this;
  }
  std::optional<double> eps() const { return eps_; }
  bool elementwise_affine() const { return affine_; }

 private:
  std::optional<double> eps_;
  bool affine_ = true;
};

// torch.nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True) (PyTorch 2.4):
// each example is scaled over its trailing dims `normalized_shape` by the inverse root mean
// square, y = x / sqrt(mean(x^2) + eps) * weight (weight = 1 at init; no bias, no centring).
// An example's output depends on that example alone. Throws ValueError for an empty
// normalized_shape or a bad eps at construction; ShapeError for an input whose trailing dims
// are not normalized_shape.
template <class T>
class RMSNorm : public Module<T> {
 public:
  explicit RMSNorm(Shape normalized_shape, RMSNormOptions options = {});
  // RMSNorm(64) as in PyTorch: an int is the size of the last dim, RMSNorm(Shape{64}).
  explicit RMSNorm(std::size_t normalized_shape, RMSNormOptions options = {})
      : RMSNorm(Shape{normalized_shape}, options) {}
  Var<T> forward(Tape<T>& t, const Var<T>& x) override;
  std::string type_name() const override { return "RMSNorm"; }
  std::string extra_repr() const override;
  const RMSNormOptions& options() const { return options_; }

  Parameter<T>* weight = nullptr;  // null without elementwise_affine

 private:
  Shape shape_;
  RMSNormOptions options_;
};

extern template class RMSNorm<float>;
extern template class RMSNorm<double>;

}  // namespace tapegrad
