#pragma once
// The public API in one include.
#include "tapegrad/core/error.hpp"
#include "tapegrad/core/parameter.hpp"
#include "tapegrad/core/shape.hpp"
#include "tapegrad/core/tape.hpp"
#include "tapegrad/core/blas.hpp"
#include "tapegrad/core/batch_invariant.hpp"
#include "tapegrad/autograd/gradcheck.hpp"
#include "tapegrad/ops/elementwise.hpp"
#include "tapegrad/ops/matmul.hpp"
