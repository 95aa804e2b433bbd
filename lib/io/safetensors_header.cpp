#include "safetensors_header.hpp"

#include <algorithm>
#include <limits>
#include <set>

#include <nlohmann/json.hpp>

#include "tapegrad/core/error.hpp"

namespace tapegrad::detail {

namespace {

using json = nlohmann::json;

// A sanity bound on a tensor's rank, so a hostile header cannot make us build huge shapes.
constexpr std::size_t kMaxRank = 64;
// The most JSON tokens a skipped value (an unknown member, or a misplaced container being
// counted for a message) may hold. nlohmann's lexer keeps every structural token since the
// last string or number ("[],[],..."), so skipping costs memory after all unless bounded.
constexpr std::size_t kMaxSkipTokens = 1'000'000;

std::string squote(const std::string& s) { return "'" + s + "'"; }

std::string cut(std::string s) {
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

// An array member of an entry ("shape", "data_offsets") as read: its non-negative integer
// elements, or what was there instead.
struct ArrayField {
  bool seen = false;
  bool is_array = false;
  std::string not_array;              // the value's description when it is not an array
  std::size_t count = 0;              // elements
  std::vector<std::uint64_t> values;  // the first kMaxRank + 1, while all are valid
  std::string bad;                    // description of the first element that is not a valid integer
  std::size_t bad_index = 0;
};

struct EntryFields {
  bool has_dtype = false;
  std::string dtype;  // the string, or the description of a non-string
  bool dtype_is_string = false;
  ArrayField shape, offsets;
};

std::size_t dtype_itemsize(const std::string& t, const EntryFields& f) {
  if (f.dtype_is_string && f.dtype == "F32") return 4;
  if (f.dtype_is_string && f.dtype == "F64") return 8;
  static const char* known[] = {"BOOL", "U8",   "I8",  "F8_E5M2", "F8_E4M3", "I16", "U16",
                                "F16",  "BF16", "I32", "U32",     "I64",     "U64"};
  const bool is_known =
      f.dtype_is_string && std::find(std::begin(known), std::end(known), f.dtype) != std::end(known);
  throw IoError(t + ": " +
                (is_known ? "dtype " + f.dtype + " is not supported" : "unknown dtype " + f.dtype) +
                " (tapegrad reads F32 and F64)");
}

void check_elements(const std::string& t, const char* field, const ArrayField& a) {
  if (!a.bad.empty()) {
    throw IoError(t + ": " + field + "[" + std::to_string(a.bad_index) +
                  "] must be a non-negative integer; got " + a.bad);
  }
}

// The number of elements of `shape`, which must be indexable with a signed 64-bit index
// (xtensor's strides are signed) even when a zero dim makes the tensor empty.
std::uint64_t checked_numel(const std::string& t, const Shape& shape, std::size_t itemsize) {
  constexpr auto kMaxIndex = static_cast<std::uint64_t>(std::numeric_limits<std::ptrdiff_t>::max());
  std::uint64_t nonzero_product = 1;
  bool has_zero = false, too_big = false;
  for (const std::uint64_t d : shape) {
    if (d == 0) {
      has_zero = true;
    } else if (nonzero_product > kMaxIndex / d) {
      too_big = true;
    } else {
      nonzero_product *= d;
    }
  }
  if (too_big || nonzero_product > kMaxIndex / itemsize) {
    throw IoError(t + ": shape " + shape_str(shape) + " has too many elements");
  }
  return has_zero ? 0 : nonzero_product;
}

SafetensorsEntry make_entry(const std::string& t, const std::string& name, const EntryFields& f) {
  if (!f.has_dtype) throw IoError(t + ": header entry has no \"dtype\"");
  if (!f.shape.seen) throw IoError(t + ": header entry has no \"shape\"");
  if (!f.offsets.seen) throw IoError(t + ": header entry has no \"data_offsets\"");
  SafetensorsEntry e;
  e.name = name;
  e.itemsize = dtype_itemsize(t, f);
  if (!f.shape.is_array) throw IoError(t + ": shape must be an array; got " + f.shape.not_array);
  if (f.shape.count > kMaxRank) {
    throw IoError(t + ": shape has " + std::to_string(f.shape.count) + " dims, more than " +
                  std::to_string(kMaxRank));
  }
  check_elements(t, "shape", f.shape);
  for (const std::uint64_t d : f.shape.values) e.shape.push_back(static_cast<std::size_t>(d));
  const std::uint64_t numel = checked_numel(t, e.shape, e.itemsize);
  if (!f.offsets.is_array || f.offsets.count != 2) {
    throw IoError(t + ": data_offsets must be [begin, end]; got " +
                  (f.offsets.is_array ? "an array of " + std::to_string(f.offsets.count) + " elements"
                                      : f.offsets.not_array));
  }
  check_elements(t, "data_offsets", f.offsets);
  e.begin = f.offsets.values[0];
  e.end = f.offsets.values[1];
  const std::string range = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
  if (e.begin > e.end) throw IoError(t + ": " + range + " has begin > end");
  const std::uint64_t nbytes = numel * e.itemsize;
  if (e.end - e.begin != nbytes) {
    throw IoError(t + ": " + range + " span " + std::to_string(e.end - e.begin) + " bytes, but shape " +
                  shape_str(e.shape) + " of " + f.dtype + " needs " + std::to_string(numel) + " x " +
                  std::to_string(e.itemsize) + " = " + std::to_string(nbytes) + " bytes");
  }
  return e;
}

// Sorted by position, the tensors must tile the data section exactly: each starts where the
// previous one ended (earlier = overlap, later = a gap of unaccounted bytes), and the last one
// ends at the end of the data.
void check_tiling(std::vector<SafetensorsEntry>& entries, std::uint64_t data_len, const std::string& where) {
  std::sort(entries.begin(), entries.end(), [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  std::uint64_t pos = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const SafetensorsEntry& e : entries) {
    if (e.begin < pos) {
      throw IoError(where + "tensors " + squote(prev->name) + " [" + std::to_string(prev->begin) + ", " +
                    std::to_string(prev->end) + ") and " + squote(e.name) + " [" + std::to_string(e.begin) +
                    ", " + std::to_string(e.end) + ") overlap");
    }
    if (e.begin > pos) {
      throw IoError(where + "bytes [" + std::to_string(pos) + ", " + std::to_string(e.begin) +
                    ") of the data section (before tensor " + squote(e.name) + ") belong to no tensor");
    }
    pos = e.end;
    prev = &e;
  }
  if (pos != data_len) {
    throw IoError(where + "bytes [" + std::to_string(pos) + ", " + std::to_string(data_len) +
                  ") at the end of the data section belong to no tensor");
  }
}

// A JSON value as the SAX parser reports it: a scalar with its text, or the start of a container.
struct Value {
  enum Kind { kNull, kBool, kString, kInt, kUint, kFloat, kObject, kArray } kind;
  std::string text;  // scalars: the value as JSON text (strings quoted), cut at 60 characters
  std::uint64_t u = 0;
  bool container() const { return kind == kObject || kind == kArray; }
  const char* type_name() const {
    static const char* names[] = {"null",   "boolean", "string", "number",
                                  "number", "number",  "object", "array"};
    return names[kind];
  }
};

// See safetensors_header.hpp. States: the top-level value, the header object, an entry, the
// metadata object, an entry's array, and skipping a container (an unknown member's value, or
// one whose description is wanted: "an array of N elements", counted without storing it).
class HeaderSax : public nlohmann::json_sax<json> {
 public:
  HeaderSax(std::string where, std::uint64_t data_len) : where_(std::move(where)), data_len_(data_len) {}

  std::string error;
  SafetensorsHeader header;

  bool null() override { return value({Value::kNull, "null"}); }
  bool boolean(bool b) override { return value({Value::kBool, b ? "true" : "false"}); }
  bool string(string_t& s) override {
    Value v{Value::kString, cut(json(s).dump(-1, ' ', false, json::error_handler_t::replace))};
    raw_string_ = s;
    return value(v);
  }
  bool binary(binary_t&) override { return value({Value::kNull, "binary data"}); }
  bool number_integer(number_integer_t i) override { return value({Value::kInt, std::to_string(i)}); }
  bool number_unsigned(number_unsigned_t u) override { return value({Value::kUint, std::to_string(u), u}); }
  bool number_float(number_float_t, const string_t& raw) override { return value({Value::kFloat, cut(raw)}); }
  bool start_object(std::size_t) override { return value({Value::kObject, ""}); }
  bool start_array(std::size_t) override { return value({Value::kArray, ""}); }
  bool key(string_t& k) override;
  bool end_object() override { return end(); }
  bool end_array() override { return end(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return fail(where_ + "the header is not valid JSON: " + e.what());
  }

 private:
  enum class Mode { kTop, kHeader, kEntry, kMetadata, kArray, kSkip, kEnd };

  bool fail(std::string msg) {
    error = std::move(msg);
    return false;
  }
  std::string tensor() const { return where_ + "tensor " + squote(name_); }
  bool value(const Value& v);
  bool entry_value(const Value& v);
  bool array_element(const Value& v);
  bool end();
  // Describes v into *sink, or fails with prefix + description when sink is null; a container
  // is skipped first to count its members.
  bool describe(const Value& v, std::string* sink, std::string prefix = "");
  bool finish_skip();
  bool count_skipped() {
    if (++skip_tokens_ <= kMaxSkipTokens) return true;
    return fail(where_ + "the header holds a JSON value of more than " + std::to_string(kMaxSkipTokens) +
                " tokens in " + (mode_ == Mode::kTop || name_.empty() ? std::string("it") : squote(name_)) +
                "; a safetensors header is a flat object of objects");
  }

  std::string where_;
  std::uint64_t data_len_;
  Mode mode_ = Mode::kTop;
  std::string name_;        // the current entry's name
  std::string field_;       // the current member of an entry
  std::string raw_string_;  // the last string value, unquoted
  std::set<std::string> names_, fields_;
  EntryFields entry_;
  ArrayField* array_ = nullptr;  // the array being read
  // Skipping: where to return, the depth inside the skipped value, its direct members, and
  // where its description goes.
  Mode skip_return_ = Mode::kTop;
  std::size_t skip_depth_ = 0, skip_members_ = 0, skip_tokens_ = 0;
  bool skip_is_array_ = false;
  std::string* skip_sink_ = nullptr;
  std::string skip_prefix_, discard_;
};

bool HeaderSax::key(string_t& k) {
  switch (mode_) {
    case Mode::kHeader:
      if (!names_.insert(k).second) {
        return fail(where_ + (k == "__metadata__" ? std::string("__metadata__ appears twice")
                                                  : "duplicate tensor name " + squote(k)));
      }
      name_ = k;
      return true;
    case Mode::kMetadata:
      if (header.metadata.count(k)) return fail(where_ + "__metadata__ has duplicate key " + squote(k));
      field_ = k;
      return true;
    case Mode::kEntry:
      if (!fields_.insert(k).second) return fail(tensor() + ": header entry has \"" + k + "\" twice");
      field_ = k;
      return true;
    default:
      return true;  // inside a skipped object
  }
}

bool HeaderSax::value(const Value& v) {
  switch (mode_) {
    case Mode::kTop:
      if (v.kind != Value::kObject) {
        return fail(where_ + "the header must be a JSON object; got " + v.type_name());
      }
      mode_ = Mode::kHeader;
      return true;
    case Mode::kHeader:
      if (name_ == "__metadata__") {
        if (v.kind == Value::kObject) {
          mode_ = Mode::kMetadata;
          return true;
        }
        return describe(v, nullptr, where_ + "__metadata__ must be an object; got ");
      }
      if (v.kind != Value::kObject)
        return describe(v, nullptr, tensor() + ": header entry must be an object; got ");
      mode_ = Mode::kEntry;
      entry_ = EntryFields{};
      fields_.clear();
      return true;
    case Mode::kMetadata:
      if (v.kind != Value::kString) {
        return describe(v, nullptr, where_ + "__metadata__[" + squote(field_) + "] must be a string; got ");
      }
      header.metadata.emplace(field_, raw_string_);
      return true;
    case Mode::kEntry:
      return entry_value(v);
    case Mode::kArray:
      return array_element(v);
    case Mode::kSkip:
      if (skip_depth_ == 1) ++skip_members_;
      if (v.container()) ++skip_depth_;
      return count_skipped();
    case Mode::kEnd:
      break;
  }
  return fail(where_ + "unexpected JSON after the header object");
}

bool HeaderSax::entry_value(const Value& v) {
  if (field_ == "dtype") {
    entry_.has_dtype = true;
    entry_.dtype_is_string = v.kind == Value::kString;
    if (entry_.dtype_is_string) {
      entry_.dtype = raw_string_;
      return true;
    }
    return describe(v, &entry_.dtype);
  }
  if (field_ != "shape" && field_ != "data_offsets") return describe(v, &discard_);  // ignored
  ArrayField& a = field_ == "shape" ? entry_.shape : entry_.offsets;
  a.seen = true;
  if (v.kind != Value::kArray) return describe(v, &a.not_array);
  a.is_array = true;
  array_ = &a;
  mode_ = Mode::kArray;
  return true;
}

bool HeaderSax::array_element(const Value& v) {
  ArrayField& a = *array_;
  const std::size_t index = a.count++;
  if (!a.bad.empty()) return v.container() ? describe(v, &discard_) : true;
  if (v.kind == Value::kUint) {
    if (a.values.size() <= kMaxRank) a.values.push_back(v.u);
    return true;
  }
  a.bad_index = index;
  return describe(v, &a.bad);
}

bool HeaderSax::describe(const Value& v, std::string* sink, std::string prefix) {
  if (!v.container()) {
    if (sink) {
      *sink = v.text;
      return true;
    }
    return fail(prefix + v.text);
  }
  skip_return_ = mode_;
  mode_ = Mode::kSkip;
  skip_depth_ = 1;
  skip_members_ = 0;
  skip_tokens_ = 0;
  skip_is_array_ = v.kind == Value::kArray;
  skip_sink_ = sink;
  skip_prefix_ = std::move(prefix);
  return true;
}

bool HeaderSax::finish_skip() {
  const std::string d = skip_is_array_ ? "an array of " + std::to_string(skip_members_) + " elements"
                                       : "an object of " + std::to_string(skip_members_) + " members";
  mode_ = skip_return_;
  if (!skip_sink_) return fail(skip_prefix_ + d);
  *skip_sink_ = d;
  return true;
}

bool HeaderSax::end() {
  switch (mode_) {
    case Mode::kSkip:
      if (!count_skipped()) return false;
      return --skip_depth_ == 0 ? finish_skip() : true;
    case Mode::kArray:
      mode_ = Mode::kEntry;
      return true;
    case Mode::kMetadata:
      mode_ = Mode::kHeader;
      return true;
    case Mode::kEntry: {
      SafetensorsEntry e = make_entry(tensor(), name_, entry_);
      if (e.end > data_len_) {
        return fail(tensor() + ": data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                    "] end past the data section of " + std::to_string(data_len_) + " bytes");
      }
      header.entries.push_back(std::move(e));
      mode_ = Mode::kHeader;
      return true;
    }
    default:
      mode_ = Mode::kEnd;
      return true;
  }
}

}  // namespace

SafetensorsHeader parse_safetensors_header(const char* text, std::size_t n, std::uint64_t data_len,
                                           const std::string& where) {
  HeaderSax sax(where, data_len);
  bool ok = false;
  try {
    ok = json::sax_parse(text, text + n, &sax);
  } catch (const json::exception& e) {  // the SAX interface reports errors itself; a backstop
    throw IoError(where + "the header is not valid JSON: " + e.what());
  }
  if (!sax.error.empty()) throw IoError(sax.error);
  if (!ok) throw IoError(where + "the header is not valid JSON");
  check_tiling(sax.header.entries, data_len, where);
  return std::move(sax.header);
}

}  // namespace tapegrad::detail
