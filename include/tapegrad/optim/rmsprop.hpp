#pragma once
#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad {

struct RMSpropOptions {
  double alpha = 0.99;
  double eps = 1e-8;
  double weight_decay = 0;
  double momentum = 0;
  bool centered = false;
  bool maximize = false;  // ascend: the grad's sign is flipped first (PyTorch 1.13's maximize)
};

// torch.optim.RMSprop:
//   g = grad (maximize: -grad) + weight_decay * p
//   s = alpha s + (1 - alpha) g^2
//   centered: a = alpha a + (1 - alpha) g;  d = sqrt(s - a^2) + eps;  else d = sqrt(s) + eps
//   momentum > 0: buf = momentum buf + g / d;  p -= lr buf;   else p -= lr g / d
template <class T>
class RMSprop : public Optimizer<T> {
 public:
  RMSprop(std::vector<Parameter<T>*> params, double lr = 1e-2, RMSpropOptions options = {});

 private:
  void update(std::size_t i, Parameter<T>& p) override;
  Hyperparameters options() const override;
  void set_options(const Hyperparameters& values) override;
  void check(const RMSpropOptions& o) const;
  RMSpropOptions options_;
};

extern template class RMSprop<float>;
extern template class RMSprop<double>;

}  // namespace tapegrad
