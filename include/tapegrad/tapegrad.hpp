#pragma once
// The public API in one include.
#include "tapegrad/core/error.hpp"
#include "tapegrad/core/parameter.hpp"
#include "tapegrad/core/shape.hpp"
#include "tapegrad/core/tape.hpp"
#include "tapegrad/autograd/gradcheck.hpp"
#include "tapegrad/core/random.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/module_check.hpp"
#include "tapegrad/ops/elementwise.hpp"
