#pragma once
// The bad-input catalogue's assertion: a call must throw exactly one tapegrad error type, with
// the given parts in its message.
#include <initializer_list>
#include <string>
#include <typeinfo>

#include "support.hpp"

namespace tgtest {

inline const char* kind(const tapegrad::Error& e) {
  if (dynamic_cast<const tapegrad::ShapeError*>(&e)) return "ShapeError";
  if (dynamic_cast<const tapegrad::ValueError*>(&e)) return "ValueError";
  if (dynamic_cast<const tapegrad::StateError*>(&e)) return "StateError";
  if (dynamic_cast<const tapegrad::IoError*>(&e)) return "IoError";
  if (dynamic_cast<const tapegrad::NumericalError*>(&e)) return "NumericalError";
  if (dynamic_cast<const tapegrad::DistError*>(&e)) return "DistError";
  return "Error";
}

// Calls f, which must throw exactly E (not a subclass, not a sibling) with every string of
// `parts` in its message. Returns the message.
template <class E, class F>
std::string expect_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
  } catch (const tapegrad::Error& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(typeid(e) == typeid(E));
    INFO("thrown: " << kind(e));
    for (const auto& p : parts) CHECK_THAT(msg, Catch::Contains(p));
    return msg;
  } catch (const std::exception& e) {
    FAIL("threw a non-tapegrad exception: " << e.what());
  }
  FAIL("no exception was thrown");
  return "";
}

// What "the tape did not change" means: same node count and the same table of ops and shapes.
template <class T>
struct TapeSnapshot {
  explicit TapeSnapshot(const tapegrad::Tape<T>& t) : tape(t), size(t.size()), table(t.describe()) {}
  void check_unchanged() const {
    CHECK(tape.size() == size);
    CHECK(tape.describe() == table);
  }
  const tapegrad::Tape<T>& tape;
  std::size_t size;
  std::string table;
};

}  // namespace tgtest
