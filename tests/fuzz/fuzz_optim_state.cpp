// libFuzzer target: Optimizer::load_state_dict on a state read from arbitrary safetensors bytes.
//
// Input: byte 0 picks the optimizer (even: SGD with momentum, odd: Adam); the rest is a
// safetensors file (load_safetensors_from_bytes<float>) whose tensors are the state dict.
// Properties: a rejected state is a tapegrad::Error and leaves the optimizer's state_dict() and
// learning rate bit-identical; an accepted one is exactly what state_dict() then returns ("lr" and
// "group.*" hyperparameters as scalars, those it leaves out as they were), and
// a step() afterwards either works or throws a tapegrad::Error.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_model.hpp"
#include "tapegrad/core/error.hpp"
#include "tapegrad/io/safetensors.hpp"

namespace tg = tapegrad;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool adam = data[0] & 1;
  tg::StateDict<float> state;
  try {
    state =
        tg::load_safetensors_from_bytes<float>(std::string(reinterpret_cast<const char*>(data + 1), size - 1))
            .tensors;
  } catch (const tg::Error&) {
    return 0;
  }
  auto model = fuzz::make_model();
  auto opt = fuzz::make_optimizer(*model, adam);
  const tg::StateDict<float> before = opt->state_dict();
  const double lr = opt->lr();
  std::string key;
  try {
    opt->load_state_dict(state);
  } catch (const tg::Error&) {
    if (!fuzz::same(before, opt->state_dict(), key) || opt->lr() != lr) {
      fuzz::fail("fuzz_optim_state", "a rejected state changed the optimizer", key);
    }
    return 0;
  }
  // "lr" and "group.<name>" may come as any one-element shape; state_dict() writes them as
  // scalars, and the hyperparameters a state leaves out keep the optimizer's values.
  state["lr"] = xt::xarray<float>(*state.at("lr").data());
  for (const auto& [k, v] : opt->state_dict()) {
    if (k.compare(0, 6, "group.") != 0) continue;
    const auto it = state.find(k);
    state[k] = it == state.end() ? v : xt::xarray<float>(*it->second.data());
  }
  if (!fuzz::same(state, opt->state_dict(), key)) {
    fuzz::fail("fuzz_optim_state", "the loaded state is not what state_dict() returns", key);
  }
  try {
    opt->step();
  } catch (const tg::Error&) {
  }
  return 0;
}
