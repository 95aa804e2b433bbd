#pragma once
// The safetensors header reader (lib/ internals of io/safetensors.cpp).
//
// The header is read with a streaming (SAX) parser that accepts only its one shape,
//   {"<name>": {"dtype": ..., "shape": [...], "data_offsets": [b, e]}, ..., "__metadata__": {...}},
// so a hostile header costs memory in proportion to the entries it names, never a JSON tree
// (a DOM of 12 MB of "[[],[],...]" takes about 190 MB), and a duplicate name is seen (a DOM
// keeps the last one silently). Unknown members of an entry are skipped whatever they hold.
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tapegrad/core/shape.hpp"

namespace tapegrad::detail {

// One validated header entry.
struct SafetensorsEntry {
  std::string name;
  std::size_t itemsize = 0;  // 4 (F32) or 8 (F64)
  Shape shape;
  std::uint64_t begin = 0, end = 0;  // [begin, end) in the data section
};

struct SafetensorsHeader {
  std::vector<SafetensorsEntry> entries;  // sorted by position in the data section
  std::map<std::string, std::string> metadata;
};

// Parses and validates the `n` header bytes at `text` against a data section of `data_len`
// bytes: every entry well formed and inside the data, the entries tiling the data section
// exactly. IoError "<where>..." naming the tensor and the numbers.
SafetensorsHeader parse_safetensors_header(const char* text, std::size_t n, std::uint64_t data_len,
                                           const std::string& where);

}  // namespace tapegrad::detail
