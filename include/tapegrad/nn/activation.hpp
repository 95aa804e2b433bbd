#pragma once
// Activation functions and dropout as modules, for Sequential.
#include "tapegrad/core/random.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/repr.hpp"
#include "tapegrad/ops/activation.hpp"
#include "tapegrad/ops/dropout.hpp"

namespace tapegrad {

template <class T>
class ReLU : public Module<T> {
 public:
  Var<T> forward(Tape<T>&, const Var<T>& x) override { return relu(x); }
  std::string type_name() const override { return "ReLU"; }
};

template <class T>
class Tanh : public Module<T> {
 public:
  Var<T> forward(Tape<T>&, const Var<T>& x) override { return tanh(x); }
  std::string type_name() const override { return "Tanh"; }
};

template <class T>
class Sigmoid : public Module<T> {
 public:
  Var<T> forward(Tape<T>&, const Var<T>& x) override { return sigmoid(x); }
  std::string type_name() const override { return "Sigmoid"; }
};

template <class T>
class LeakyReLU : public Module<T> {
 public:
  explicit LeakyReLU(double negative_slope = 0.01) : slope_(negative_slope) {}
  Var<T> forward(Tape<T>&, const Var<T>& x) override { return leaky_relu(x, static_cast<T>(slope_)); }
  std::string type_name() const override { return "LeakyReLU"; }
  std::string extra_repr() const override { return "negative_slope=" + python_float(slope_); }

 private:
  double slope_;
};

template <class T>
class GELU : public Module<T> {
 public:
  explicit GELU(GeluApprox approximate = GeluApprox::None) : approx_(approximate) {}
  Var<T> forward(Tape<T>&, const Var<T>& x) override { return gelu(x, approx_); }
  std::string type_name() const override { return "GELU"; }
  std::string extra_repr() const override {
    return approx_ == GeluApprox::Tanh ? "approximate='tanh'" : "approximate='none'";
  }

 private:
  GeluApprox approx_;
};

template <class T>
class ELU : public Module<T> {
 public:
  explicit ELU(double alpha = 1.0) : alpha_(alpha) {}
  Var<T> forward(Tape<T>&, const Var<T>& x) override { return elu(x, static_cast<T>(alpha_)); }
  std::string type_name() const override { return "ELU"; }
  std::string extra_repr() const override { return "alpha=" + python_float(alpha_); }

 private:
  double alpha_;
};

template <class T>
class Softplus : public Module<T> {
 public:
  explicit Softplus(double beta = 1.0, double threshold = 20.0) : beta_(beta), threshold_(threshold) {}
  Var<T> forward(Tape<T>&, const Var<T>& x) override {
    return softplus(x, static_cast<T>(beta_), static_cast<T>(threshold_));
  }
  std::string type_name() const override { return "Softplus"; }

 private:
  double beta_, threshold_;
};

// Dropout with its own generator, seeded at construction: a model built with the same seed
// drops the same units. Identity in eval mode. Dropout(p, gen) seeds it with one draw from
// `gen` (the Generator a model's Linear layers take), so a whole model built from one Generator
// is reproducible from its seed; the module keeps no reference to `gen`.
template <class T>
class Dropout : public Module<T> {
 public:
  explicit Dropout(double p = 0.5, std::uint64_t seed = 0) : p_(checked_p(p)), gen_(seed) {}
  Dropout(double p, Generator& gen) : p_(checked_p(p)), gen_(gen.engine()()) {}
  Var<T> forward(Tape<T>&, const Var<T>& x) override { return dropout(x, p_, this->is_training(), gen_); }
  std::string type_name() const override { return "Dropout"; }
  std::string extra_repr() const override { return "p=" + python_float(p_); }

 private:
  static double checked_p(double p) {
    if (!(p >= 0 && p <= 1)) {
      throw ValueError("Dropout: probability has to be between 0 and 1, but got " + std::to_string(p));
    }
    return p;
  }
  double p_;
  Generator gen_;
};

}  // namespace tapegrad
