#include <stdexcept>

#include "lab.hpp"

namespace lab {

const char* norm_name(Norm n) {
  switch (n) {
    case Norm::None: return "none";
    case Norm::Layer: return "layer";
    case Norm::Batch: return "batch";
  }
  return "?";
}

Norm parse_norm(const std::string& s) {
  if (s == "none") return Norm::None;
  if (s == "layer") return Norm::Layer;
  if (s == "batch") return Norm::Batch;
  throw std::invalid_argument("unknown norm '" + s + "' (expected none, layer or batch)");
}

template <class T>
std::shared_ptr<tg::Sequential<T>> make_mlp(std::size_t in, const std::vector<std::size_t>& hidden,
                                            std::size_t out, Norm norm, std::uint64_t seed) {
  tg::Generator gen(seed);
  auto net = std::make_shared<tg::Sequential<T>>();
  std::size_t width = in;
  for (std::size_t h : hidden) {
    net->template emplace_back<tg::Linear<T>>(width, h, tg::LinearOptions(), gen);
    if (norm == Norm::Layer) net->template emplace_back<tg::LayerNorm<T>>(tg::Shape{h});
    if (norm == Norm::Batch) net->template emplace_back<tg::BatchNorm1d<T>>(h);
    net->template emplace_back<tg::Tanh<T>>();
    width = h;
  }
  net->template emplace_back<tg::Linear<T>>(width, out, tg::LinearOptions(), gen);
  return net;
}

template std::shared_ptr<tg::Sequential<float>> make_mlp<float>(std::size_t, const std::vector<std::size_t>&,
                                                                std::size_t, Norm, std::uint64_t);
template std::shared_ptr<tg::Sequential<double>> make_mlp<double>(std::size_t, const std::vector<std::size_t>&,
                                                                  std::size_t, Norm, std::uint64_t);

}  // namespace lab
