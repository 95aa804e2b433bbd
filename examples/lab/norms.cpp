#include "lab.hpp"

namespace lab {

namespace {

struct NormNames {
  const char* name;
  const char* title;
};

NormNames names(Norm n) {
  switch (n) {
    case Norm::None:
      return {"none", "no norm"};
    case Norm::Layer:
      return {"layer", "LayerNorm"};
    case Norm::Batch:
      return {"batch", "BatchNorm"};
  }
  return {"?", "?"};
}

}  // namespace

const char* norm_name(Norm n) { return names(n).name; }
const char* norm_title(Norm n) { return names(n).title; }

}  // namespace lab
