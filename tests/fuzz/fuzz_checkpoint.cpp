// libFuzzer target: load_checkpoint end to end, from a file into a model and an optimizer.
//
// Input: byte 0's bit 0 picks the optimizer (0: SGD with momentum, 1: Adam) and bit 1 whether
// one is passed at all; the rest is written to a file and loaded with load_checkpoint.
// Properties: either a tapegrad::Error and the model's and optimizer's state_dict() are
// bit-identical to before, or success and both hold what read_checkpoint reads from the file
// (the optimizer's "lr" as a scalar; its hyperparameters as described below).
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "fuzz_model.hpp"
#include "tapegrad/core/error.hpp"
#include "tapegrad/io/checkpoint.hpp"
#include "tapegrad/io/safetensors.hpp"

namespace tg = tapegrad;

namespace {

// One file per fuzzing process, in memory where /dev/shm exists.
const std::string& scratch_path() {
  static const std::string path = [] {
    const char* dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    return std::string(dir) + "/tapegrad_fuzz_checkpoint_" + std::to_string(::getpid());
  }();
  static const bool cleanup = std::atexit([] { ::unlink(scratch_path().c_str()); }) == 0;
  (void)cleanup;
  return path;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const bool adam = data[0] & 1, with_optimizer = data[0] & 2;
  const std::string& path = scratch_path();
  tg::write_file_atomic(path, std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  auto model = fuzz::make_model();
  auto opt = fuzz::make_optimizer(*model, adam);
  const tg::StateDict<float> model_before = model->state_dict(), opt_before = opt->state_dict();
  std::string key;
  try {
    tg::load_checkpoint(path, *model, with_optimizer ? opt.get() : nullptr);
  } catch (const tg::Error&) {
    if (!fuzz::same(model_before, model->state_dict(), key)) {
      fuzz::fail("fuzz_checkpoint", "a rejected checkpoint changed the model", key);
    }
    if (!fuzz::same(opt_before, opt->state_dict(), key)) {
      fuzz::fail("fuzz_checkpoint", "a rejected checkpoint changed the optimizer", key);
    }
    return 0;
  }
  tg::Checkpoint<float> ck = tg::read_checkpoint<float>(path);  // accepted above: cannot throw
  if (!fuzz::same(ck.model, model->state_dict(), key)) {
    fuzz::fail("fuzz_checkpoint", "the model does not hold the checkpoint's state", key);
  }
  if (with_optimizer) {
    // What the optimizer must hold: the file's "optim.*" state ("lr" as a scalar); a
    // hyperparameter ("group.<name>") the file's state lacks keeps its value from before (older
    // files have none); the exact "optimizer.<name>" metadata, when there, overrides both.
    ck.optimizer["lr"] = xt::xarray<float>(*ck.optimizer.at("lr").data());
    for (const auto& [k, v] : opt_before) {
      if (k.rfind("group.", 0) == 0 && ck.optimizer.count(k) == 0) ck.optimizer[k] = v;
    }
    for (const auto& [name, v] : ck.hyperparameters) {
      ck.optimizer[name == "lr" ? name : "group." + name] = xt::xarray<float>(static_cast<float>(v));
    }
    if (!fuzz::same(ck.optimizer, opt->state_dict(), key)) {
      fuzz::fail("fuzz_checkpoint", "the optimizer does not hold the checkpoint's state", key);
    }
  } else if (!fuzz::same(opt_before, opt->state_dict(), key)) {
    fuzz::fail("fuzz_checkpoint", "a load without the optimizer changed it", key);
  }
  return 0;
}
