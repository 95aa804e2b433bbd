#pragma once
// Pieces shared by the example chapters: the MLP they train and a parser for its norm flag.
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include <tapegrad/tapegrad.hpp>

namespace examples {

namespace tg = tapegrad;

// in -> [Linear(h), norm, Tanh] for each h in hidden -> Linear(out), initialized from `seed`.
// norm is "none", "layer" (LayerNorm) or "batch" (BatchNorm1d).
template <class T>
std::shared_ptr<tg::Sequential<T>> make_mlp(std::size_t in, const std::vector<std::size_t>& hidden,
                                            std::size_t out, const std::string& norm, std::uint64_t seed) {
  if (norm != "none" && norm != "layer" && norm != "batch") {
    throw std::invalid_argument("unknown norm '" + norm + "' (expected none, layer or batch)");
  }
  tg::Generator gen(seed);
  auto net = std::make_shared<tg::Sequential<T>>();
  std::size_t width = in;
  for (std::size_t h : hidden) {
    net->template emplace_back<tg::Linear<T>>(width, h, tg::LinearOptions(), gen);
    if (norm == "layer") net->template emplace_back<tg::LayerNorm<T>>(tg::Shape{h});
    if (norm == "batch") net->template emplace_back<tg::BatchNorm1d<T>>(h);
    net->template emplace_back<tg::Tanh<T>>();
    width = h;
  }
  net->template emplace_back<tg::Linear<T>>(width, out, tg::LinearOptions(), gen);
  return net;
}

}  // namespace examples
