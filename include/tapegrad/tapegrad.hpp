#pragma once
// The public API in one include.
#include "tapegrad/core/error.hpp"
#include "tapegrad/core/parameter.hpp"
#include "tapegrad/core/shape.hpp"
#include "tapegrad/core/tape.hpp"
#include "tapegrad/autograd/gradcheck.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/data/csv.hpp"
#include "tapegrad/data/dataloader.hpp"
#include "tapegrad/data/dataset.hpp"
#include "tapegrad/data/mnist.hpp"
#include "tapegrad/data/synthetic.hpp"
#include "tapegrad/io/safetensors.hpp"
