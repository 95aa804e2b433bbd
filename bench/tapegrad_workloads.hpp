#pragma once
// model_workloads.hpp's MLP built with tapegrad, shared by bench_models.cpp and bench_dist.cpp
// (model_workloads.hpp itself stays free of tapegrad: the libtorch program includes it too).
#include <memory>

#include "model_workloads.hpp"
#include "tapegrad/tapegrad.hpp"

namespace bench_models {

// kMlpIn -> [Linear(kMlpHidden), norm, Tanh] x kMlpBlocks -> Linear(kMlpClasses), PyTorch's init.
inline std::shared_ptr<tapegrad::Sequential<float>> make_tapegrad_mlp(Norm norm) {
  namespace tg = tapegrad;
  auto net = std::make_shared<tg::Sequential<float>>();
  std::size_t in = kMlpIn;
  for (std::size_t k = 0; k < kMlpBlocks; ++k) {
    net->emplace_back<tg::Linear<float>>(in, kMlpHidden);
    if (norm == Norm::Layer) net->emplace_back<tg::LayerNorm<float>>(tg::Shape{kMlpHidden});
    if (norm == Norm::Batch) net->emplace_back<tg::BatchNorm1d<float>>(kMlpHidden);
    net->emplace_back<tg::Tanh<float>>();
    in = kMlpHidden;
  }
  net->emplace_back<tg::Linear<float>>(kMlpHidden, kMlpClasses);
  return net;
}

}  // namespace bench_models
