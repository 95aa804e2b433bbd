// libFuzzer target: load_safetensors_from_bytes<float> on arbitrary bytes.
//
// A finding is anything but a clean result or a tapegrad::Error: a sanitizer report (out-of-
// bounds read, overflow, ...), any other exception escaping (libFuzzer reports it as a crash),
// a hang, or a broken property. Properties of an accepted file:
//   - every tensor's size equals the product of its shape;
//   - writing the result back with safetensors_to_bytes and loading that gives bit-identical
//     tensors and the same metadata (the loader and the writer agree).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <cstdio>
#include <string>

#include "tapegrad/core/error.hpp"
#include "tapegrad/io/safetensors.hpp"

namespace tg = tapegrad;

namespace {

[[noreturn]] void fail(const char* what, const std::string& name) {
  std::fprintf(stderr, "fuzz_safetensors: property broken: %s (tensor '%s')\n", what, name.c_str());
  std::abort();
}

void check_same(const tg::SafetensorsData<float>& a, const tg::SafetensorsData<float>& b) {
  if (a.metadata != b.metadata) fail("metadata differs after a round trip", "");
  if (a.tensors.size() != b.tensors.size()) fail("tensor count differs after a round trip", "");
  for (const auto& [name, x] : a.tensors) {
    const auto it = b.tensors.find(name);
    if (it == b.tensors.end()) fail("tensor missing after a round trip", name);
    const auto& y = it->second;
    if (x.shape() != y.shape()) fail("shape differs after a round trip", name);
    if (x.size() != 0 && std::memcmp(x.data(), y.data(), x.size() * sizeof(float)) != 0) {
      fail("values differ after a round trip", name);
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  tg::SafetensorsData<float> loaded;
  try {
    loaded = tg::load_safetensors_from_bytes<float>(bytes);
  } catch (const tg::Error&) {
    return 0;  // rejected with tapegrad's own error: fine
  }
  for (const auto& [name, x] : loaded.tensors) {
    std::size_t n = 1;
    for (auto d : x.shape()) n *= d;
    if (n != x.size()) fail("size is not the product of the shape", name);
  }
  const std::string again = tg::safetensors_to_bytes<float>(loaded.tensors, loaded.metadata);
  check_same(loaded, tg::load_safetensors_from_bytes<float>(again));
  return 0;
}
