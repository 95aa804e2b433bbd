#pragma once
#include "tapegrad/optim/optimizer.hpp"

namespace tapegrad {

struct AdamOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;  // Adam: L2 added to the grad; AdamW: decoupled (AdamWOptions: 1e-2)
  bool amsgrad = false;
  bool maximize = false;  // ascend: the grad's sign is flipped first (PyTorch 1.13's maximize)
};

// torch.optim.Adam (step t counted per parameter):
//   g = grad (maximize: -grad) + weight_decay * p
//   m = b1 m + (1 - b1) g;   v = b2 v + (1 - b2) g^2;   (amsgrad: vmax = max(vmax, v))
//   p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
template <class T>
class Adam : public Optimizer<T> {
 public:
  Adam(std::vector<Parameter<T>*> params, double lr = 1e-3, AdamOptions options = {});

 protected:
  Adam(std::vector<Parameter<T>*> params, double lr, AdamOptions options, bool decoupled, const char* name);
  void update(std::size_t i, Parameter<T>& p) override;
  Hyperparameters options() const override;
  void set_options(const Hyperparameters& values) override;

 private:
  AdamOptions options_;
  bool decoupled_;
};

// AdamW's options: AdamOptions with torch.optim.AdamW's weight_decay default, 1e-2.
struct AdamWOptions : AdamOptions {
  AdamWOptions() { weight_decay = 1e-2; }
  // Code written before AdamWOptions passed AdamOptions: it still compiles, with a warning,
  // and keeps the given weight_decay, which for a default AdamOptions is Adam's 0, not 1e-2.
  [[deprecated(
      "AdamW from AdamOptions uses its weight_decay (default 0, Adam's); pass AdamWOptions "
      "(default 1e-2, as torch.optim.AdamW)")]] AdamWOptions(const AdamOptions& o)
      : AdamOptions(o) {}
};

// torch.optim.AdamW: p *= 1 - lr * weight_decay, then Adam without weight decay in the grad.
// Its weight_decay default is 1e-2: AdamW(params, lr, {}) and AdamW(params, lr, AdamWOptions{})
// use it.
template <class T>
class AdamW : public Adam<T> {
 public:
  static AdamWOptions default_options() { return AdamWOptions(); }
  AdamW(std::vector<Parameter<T>*> params, double lr = 1e-3, AdamWOptions options = AdamWOptions());
};

extern template class Adam<float>;
extern template class Adam<double>;
extern template class AdamW<float>;
extern template class AdamW<double>;

}  // namespace tapegrad
