#include "lab.hpp"

namespace lab {

namespace {

struct NormNames {
  const char* name;
  const char* title;
};

NormNames names(Norm n) {
  switch (n) {
    case Norm::None:
      return {"none", "no norm"};
    case Norm::Layer:
      return {"layer", "LayerNorm"};
    case Norm::Batch:
      return {"batch", "BatchNorm"};
    case Norm::BatchRenorm:
      return {"batch_renorm", "BatchRenorm"};
    case Norm::GhostBatch:
      return {"ghost_batch", "GhostBatchNorm"};
    case Norm::Group:
      return {"group", "GroupNorm"};
    case Norm::RMS:
      return {"rms", "RMSNorm"};
  }
  return {"?", "?"};
}

void add_norm(tg::Sequential<float>& net, Norm norm, std::size_t h) {
  switch (norm) {
    case Norm::BatchRenorm:
      net.emplace_back<tg::BatchRenorm1d<float>>(h);
      break;
    case Norm::GhostBatch:
      net.emplace_back<tg::GhostBatchNorm1d<float>>(h, kGhostVirtualBatch);
      break;
    case Norm::Group:
      net.emplace_back<tg::GroupNorm<float>>(kGroupNormGroups, h);
      break;
    case Norm::RMS:
      net.emplace_back<tg::RMSNorm<float>>(tg::Shape{h});
      break;
    default:
      break;
  }
}

}  // namespace

const char* norm_name(Norm n) { return names(n).name; }
const char* norm_title(Norm n) { return names(n).title; }

bool uses_batch_statistics(Norm n) {
  return n == Norm::Batch || n == Norm::BatchRenorm || n == Norm::GhostBatch;
}

std::shared_ptr<tg::Sequential<float>> make_net(std::size_t in, const std::vector<std::size_t>& hidden,
                                                std::size_t out, Norm norm, std::uint64_t seed) {
  if (norm == Norm::None || norm == Norm::Layer || norm == Norm::Batch)
    return examples::make_mlp<float>(in, hidden, out, norm_name(norm), seed);
  tg::Generator gen(seed);  // the draws of examples::make_mlp: the norms draw nothing
  auto net = std::make_shared<tg::Sequential<float>>();
  std::size_t width = in;
  for (std::size_t h : hidden) {
    net->emplace_back<tg::Linear<float>>(width, h, tg::LinearOptions(), gen);
    add_norm(*net, norm, h);
    net->emplace_back<tg::Tanh<float>>();
    width = h;
  }
  net->emplace_back<tg::Linear<float>>(width, out, tg::LinearOptions(), gen);
  return net;
}

}  // namespace lab
