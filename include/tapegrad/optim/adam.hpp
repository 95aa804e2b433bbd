#pragma once
#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad {

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  // Adam: L2 added to the grad; AdamW: decoupled (default 1e-2)
  bool amsgrad = false;
};

// torch.optim.Adam (step t counted per parameter):
//   g = grad + weight_decay * p
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   (amsgrad: vmax = max(vmax, v))
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
template <class T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Parameter<T>*> params, double lr = 1e-3, AdamOptions options = {});

 protected:
  Adam(std::vector<Parameter<T>*> params, double lr, AdamOptions options, bool decoupled, const char* name);
  void update(std::size_t i, Parameter<T>& p) override;

 private:
  AdamOptions options_;
  bool decoupled_;
};

// torch.optim.AdamW: p *= 1 - lr * weight_decay, then Adam without weight decay in the grad.
// Its weight_decay default is 1e-2 (AdamW::default_options() sets it).
template <class T>
class AdamW : public Adam<T> {
 public:
  static AdamOptions default_options() {
    AdamOptions o;
    o.weight_decay = 1e-2;
    return o;
  }
  AdamW(std::vector<Parameter<T>*> params, double lr = 1e-3, AdamOptions options = default_options());
};

extern template class Adam<float>;
extern template class Adam<double>;
extern template class AdamW<float>;
extern template class AdamW<double>;

}  // namespace tapegrad
