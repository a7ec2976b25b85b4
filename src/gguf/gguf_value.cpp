// Metadata values: names of the value types, factories, comparison and rendering.
#include <cstdio>
#include <sstream>

#include "base/error.h"
#include "gguf/gguf.h"

namespace xtile::gguf {

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::U8:
      return "u8";
    case ValueType::I8:
      return "i8";
    case ValueType::U16:
      return "u16";
    case ValueType::I16:
      return "i16";
    case ValueType::U32:
      return "u32";
    case ValueType::I32:
      return "i32";
    case ValueType::F32:
      return "f32";
    case ValueType::BOOL:
      return "bool";
    case ValueType::STRING:
      return "string";
    case ValueType::ARRAY:
      return "array";
    case ValueType::U64:
      return "u64";
    case ValueType::I64:
      return "i64";
    case ValueType::F64:
      return "f64";
  }
  return "unknown";
}

Value Value::string_array(const std::vector<std::string>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (const std::string& s : v) items.push_back(Value::string(s));
  return array(ValueType::STRING, std::move(items));
}

Value Value::f32_array(const std::vector<float>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (float x : v) items.push_back(Value::f32(x));
  return array(ValueType::F32, std::move(items));
}

Value Value::i32_array(const std::vector<int32_t>& v) {
  std::vector<Value> items;
  items.reserve(v.size());
  for (int32_t x : v) items.push_back(Value::i32(x));
  return array(ValueType::I32, std::move(items));
}

bool operator==(const Array& a, const Array& b) {
  return a.elem_type == b.elem_type && a.items == b.items;
}

std::string TensorInfo::shape_string() const {
  std::string s = "[";
  for (uint32_t d = 0; d < n_dims && d < 4; ++d) {
    if (d) s += ", ";
    s += std::to_string(ne[d]);
  }
  return s + "]";
}

namespace detail {
std::string quoted(std::string_view s) {
  constexpr size_t kMaxShown = 120;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > kMaxShown) out += "...";
  return out + "'";
}
}  // namespace detail

namespace {
void format_into(std::ostringstream& os, const Value& v, size_t max_items) {
  if (const auto* u = std::get_if<uint64_t>(&v.data)) {
    os << *u;
  } else if (const auto* i = std::get_if<int64_t>(&v.data)) {
    os << *i;
  } else if (const auto* d = std::get_if<double>(&v.data)) {
    // Shortest text that reads back to the same value of the on-disk precision.
    char buf[32];
    if (v.type == ValueType::F32)
      std::snprintf(buf, sizeof buf, "%.9g", static_cast<float>(*d));
    else
      std::snprintf(buf, sizeof buf, "%.17g", *d);
    os << buf;
  } else if (const auto* b = std::get_if<bool>(&v.data)) {
    os << (*b ? "true" : "false");
  } else if (const auto* s = std::get_if<std::string>(&v.data)) {
    os << detail::quoted(*s);
  } else if (const auto* a = std::get_if<Array>(&v.data)) {
    os << '[';
    const size_t shown = a->items.size() < max_items ? a->items.size() : max_items;
    for (size_t k = 0; k < shown; ++k) {
      if (k) os << ", ";
      format_into(os, a->items[k], max_items);
    }
    if (shown < a->items.size()) os << ", ... (" << a->items.size() << " items)";
    os << ']';
  }
}
}  // namespace

std::string format_value(const Value& v, size_t max_items) {
  std::ostringstream os;
  format_into(os, v, max_items);
  return os.str();
}

}  // namespace xtile::gguf
