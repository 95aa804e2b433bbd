// libFuzzer target: parse_mnist_digits<float> on arbitrary text, in full and stopping after
// the first image (max_images = 1, the early-exit path load_mnist uses).
//
// A finding is a sanitizer report, any exception other than tapegrad::Error, a hang, or a
// broken property of an accepted file: (k >= 1, 784) images with every value in [0, 1]; the
// one-image parse is the first row of the full parse whenever the full parse is accepted.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "tapegrad/core/error.hpp"
#include "tapegrad/data/mnist.hpp"

namespace tg = tapegrad;

namespace {

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "fuzz_mnist: property broken: %s\n", what);
  std::abort();
}

bool parse(const std::string& text, std::size_t max_images, xt::xarray<float>& out) {
  try {
    out = tg::parse_mnist_digits<float>(text, max_images, "fuzz");
  } catch (const tg::Error&) {
    return false;
  }
  if (out.dimension() != 2 || out.shape()[1] != tg::kMnistPixels || out.shape()[0] == 0) {
    fail("accepted images are not (k >= 1, 784)");
  }
  if (max_images != 0 && out.shape()[0] > max_images) fail("more images than max_images");
  for (std::size_t i = 0; i < out.size(); ++i) {
    const float v = out.data()[i];
    if (!(v >= 0.0f && v <= 1.0f)) fail("a pixel outside [0, 1]");
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  xt::xarray<float> all, first;
  const bool ok_all = parse(text, 0, all);
  const bool ok_first = parse(text, 1, first);
  if (ok_all) {
    if (!ok_first) fail("the full parse accepted what the one-image parse rejected");
    if (std::memcmp(all.data(), first.data(), tg::kMnistPixels * sizeof(float)) != 0) {
      fail("the one-image parse differs from the first image of the full parse");
    }
  }
  return 0;
}
