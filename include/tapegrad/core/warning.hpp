#pragma once
// Warnings: where tapegrad's one-time notices go, and the forgotten-reset() check.
//
// A warning is one line of text. By default it is written to stderr; set_warning_handler
// sends it elsewhere (a log, a test's capture) and returns the handler it replaced.
#include <cstddef>
#include <functional>
#include <string>

namespace tapegrad {

using WarningHandler = std::function<void(const std::string&)>;
// An empty handler restores the default (stderr). Thread-safe.
WarningHandler set_warning_handler(WarningHandler handler);
// Sends `message` to the current handler.
void emit_warning(const std::string& message);

// ---- a tape that keeps growing across steps (tape.reset() forgotten) ----------------------
// A training loop that forgets tape.reset() records each step after the last one: the tape
// grows by a step's nodes (and their arrays) every step, without bound. The check counts
// "growing sweeps": calls of backward() without retain_graph made after the tape had already
// completed such a backward and then recorded new nodes (the earlier nodes are dead weight: a
// backward through them is refused). When a tape has made `min_sweeps` of them since its last
// reset() and holds at least `min_nodes` nodes or `min_bytes` bytes, the check fires once per
// tape: mode warn emits a warning naming the node count and bytes and telling to call
// tape.reset(); mode error throws StateError from that backward (and every later one that
// meets the condition) before it changes anything.
// No false positives for legitimate use: one backward over a long graph (an RNN over a long
// sequence), several backwards over one graph (retain_graph), fresh tapes (gradcheck) and loops
// that reset() never count.
enum class TapeGrowthMode { off, warn, error };
struct TapeGrowthCheck {
  TapeGrowthMode mode = TapeGrowthMode::warn;
  std::size_t min_sweeps = 10;
  std::size_t min_nodes = 10000;
  std::size_t min_bytes = std::size_t(64) << 20;
};
// min_sweeps must be >= 1 (ValueError naming it; the setting is unchanged). Thread-safe; applies
// to every tape. Returns the setting it replaced.
TapeGrowthCheck set_tape_growth_check(const TapeGrowthCheck& check);
TapeGrowthCheck tape_growth_check();

}  // namespace tapegrad
