#pragma once
// What the optimizer and checkpoint fuzz targets load into: a Sequential of two tiny modules
// with parameters and a buffer (forward is the identity: the targets never run it, and real
// layers would pull the ops and BLAS into the fuzz build), and SGD / Adam over its parameters.
// The seed corpus (make_seeds.py) writes files for exactly these names and shapes.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "tapegrad/nn/module.hpp"
#include "tapegrad/optim/adam.hpp"
#include "tapegrad/optim/sgd.hpp"

namespace fuzz {

namespace tg = tapegrad;

// weight (2, 3), bias (3), buffer running (3).
class Tiny : public tg::Module<float> {
 public:
  explicit Tiny(float fill) {
    register_parameter("weight", xt::xarray<float>(xt::ones<float>({2, 3}) * fill));
    register_parameter("bias", xt::xarray<float>(xt::zeros<float>({3})));
    register_buffer("running", xt::xarray<float>(xt::ones<float>({3})));
  }
  tg::Var<float> forward(tg::Tape<float>&, const tg::Var<float>& x) override { return x; }
  std::string type_name() const override { return "Tiny"; }
};

inline std::shared_ptr<tg::Sequential<float>> make_model() {
  auto net = std::make_shared<tg::Sequential<float>>();
  net->emplace_back<Tiny>(0.5f);
  net->emplace_back<Tiny>(-1.5f);
  return net;
}

// SGD with momentum or Adam, with state from one step on fixed gradients, so a failed load
// has something to leave unchanged.
inline std::unique_ptr<tg::Optimizer<float>> make_optimizer(tg::Module<float>& model, bool adam) {
  std::unique_ptr<tg::Optimizer<float>> opt;
  if (adam) {
    opt = std::make_unique<tg::Adam<float>>(model.parameters(), 0.01);
  } else {
    opt = std::make_unique<tg::SGD<float>>(model.parameters(), 0.1, tg::SGDOptions{0.9});
  }
  for (auto* p : model.parameters()) p->mutable_grad().fill(0.25f);
  opt->step();
  return opt;
}

[[noreturn]] inline void fail(const char* target, const char* what, const std::string& key) {
  std::fprintf(stderr, "%s: property broken: %s (key '%s')\n", target, what, key.c_str());
  std::abort();
}

// Same keys, shapes and bytes (== would let -0 pass for 0 and fail NaN against itself).
inline bool same(const tg::StateDict<float>& a, const tg::StateDict<float>& b, std::string& key) {
  if (a.size() != b.size()) {
    key = "(" + std::to_string(a.size()) + " keys vs " + std::to_string(b.size()) + ")";
    return false;
  }
  for (const auto& [k, v] : a) {
    key = k;
    const auto it = b.find(k);
    if (it == b.end() || it->second.shape() != v.shape()) return false;
    if (v.size() != 0 && std::memcmp(it->second.data(), v.data(), v.size() * sizeof(float)) != 0)
      return false;
  }
  return true;
}

}  // namespace fuzz
