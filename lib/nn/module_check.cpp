#include "tapegrad/nn/module_check.hpp"

namespace tapegrad {

GradcheckResult gradcheck_module(Module<double>& module, const xt::xarray<double>& input,
                                 const GradcheckOptions& options) {
  const auto params = module.named_parameters();
  std::vector<std::pair<xt::xarray<double>*, xt::xarray<double>>> saved;
  for (auto& [name, b] : module.named_buffers()) saved.emplace_back(b, *b);
  auto restore = [&] {
    for (auto& [b, v] : saved) *b = v;
  };

  std::vector<xt::xarray<double>> inputs = {input};
  for (auto& [name, p] : params) inputs.push_back(p->value);
  GradcheckFn f = [&](Tape<double>& t, const std::vector<Var<double>>& v) {
    restore();
    for (std::size_t i = 0; i < params.size(); ++i) t.bind_param(*params[i].second, v[i + 1]);
    return module.forward(t, v[0]);
  };
  GradcheckResult r;
  try {
    r = gradcheck(f, inputs, options);
  } catch (...) {
    restore();
    throw;
  }
  restore();
  r.message +=
      " [input " + std::to_string(r.input) + " is " +
      (r.input == 0 ? std::string("the module input") : "parameter '" + params[r.input - 1].first + "'") +
      "]";
  return r;
}

}  // namespace tapegrad
