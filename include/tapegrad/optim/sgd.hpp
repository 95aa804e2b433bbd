#pragma once
#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad {

struct SGDOptions {
  double momentum = 0;
  double dampening = 0;
  double weight_decay = 0;
  bool nesterov = false;
  bool maximize = false;  // ascend: the grad's sign is flipped first (PyTorch 1.13's maximize)
};

// torch.optim.SGD:
//   g = grad (maximize: -grad) + weight_decay * p
//   buf = g on the first step, else momentum * buf + (1 - dampening) * g
//   g = g + momentum * buf (nesterov) or buf (momentum > 0)
//   p -= lr * g
template <class T>
class SGD : public Optimizer<T> {
 public:
  SGD(std::vector<Parameter<T>*> params, double lr, SGDOptions options = {});

 private:
  void update(std::size_t i, Parameter<T>& p) override;
  Hyperparameters options() const override;
  void set_options(const Hyperparameters& values) override;
  SGDOptions options_;
};

extern template class SGD<float>;
extern template class SGD<double>;

}  // namespace tapegrad
