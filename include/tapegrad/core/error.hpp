#pragma once
// The exception hierarchy. Every error tapegrad throws derives from tapegrad::Error, and its
// message names the op and the shapes or values involved, so the user sees what went wrong
// without a debugger. An op validates before it records anything: a thrown error leaves the
// tape, the modules and the parameters as they were.
#include <stdexcept>
#include <string>

namespace tapegrad {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Shapes that do not fit together: broadcasting, matmul inner dims, a layer's expected features.
class ShapeError : public Error {
 public:
  using Error::Error;
};

// A value out of its allowed range: a negative learning rate, an axis that does not exist,
// a class index >= number of classes, a batch size of 0.
class ValueError : public Error {
 public:
  using Error::Error;
};

// An operation that is not allowed in the current state: backward twice through a freed tape,
// a Var from another (or a reset) tape, BatchNorm training with one value per channel.
class StateError : public Error {
 public:
  using Error::Error;
};

// A file that cannot be read or written, or whose contents are malformed.
class IoError : public Error {
 public:
  using Error::Error;
};

// Anomaly mode: an op produced NaN or Inf.
class NumericalError : public Error {
 public:
  using Error::Error;
};

// tapegrad::dist: MPI itself reported a failure (a collective, initialisation); the message
// names the operation and MPI's error string. (Shapes that differ across ranks are ShapeErrors.)
class DistError : public Error {
 public:
  using Error::Error;
};

}  // namespace tapegrad
