// GGUF v2/v3 reader (mmap, strict validation) and writer.
//
// File layout (little-endian): magic "GGUF", u32 version, u64 tensor_count, u64 kv_count,
// kv_count × {string key, u32 value_type, value}, tensor_count × {string name, u32 n_dims,
// n_dims × u64 ne, u32 ggml_type, u64 offset}, padding to `general.alignment` (default 32; a
// power of two and a multiple of 8), then the data section; each tensor's offset is relative
// to the data section and aligned.
// Strings are u64 length + bytes (no NUL). Arrays are u32 element type + u64 count + elements.
//
// The reader trusts nothing: every count, length, shape and offset is checked (overflow-safe)
// against the file size before it is used or allocated, so a hostile file gives an xtile::Error
// that starts with the file's label and names the problem, never a crash or a huge allocation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/mapped_file.h"
#include "gguf/ggml_types.h"

namespace xtile::gguf {

// `general.alignment` when the key is absent (llama.cpp's GGUF_DEFAULT_ALIGNMENT).
inline constexpr uint32_t kDefaultAlignment = 32;
// Arrays may nest (an array of arrays ...) at most this deep; deeper files are rejected so a
// hostile file cannot exhaust the stack of the recursive reader. The writer enforces the same.
inline constexpr int kMaxArrayDepth = 8;
inline constexpr int kMaxDims = 4;
// The parsed metadata may take at most this much memory (each value is a sizeof(Value) Value,
// plus the characters of strings). The largest real tokenizers (256k tokens and merges) take
// ~50 MiB; without a bound, a file of 1 GiB of u8 arrays would ask for ~48 GiB.
inline constexpr uint64_t kMaxMetadataMemory = uint64_t{512} << 20;

enum class ValueType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};
// "u8", "i32", "f32", "bool", "string", "array", ...; "unknown" for an id outside the enum.
std::string_view value_type_name(ValueType t);

struct Value;
struct Array {
  ValueType elem_type = ValueType::U8;
  std::vector<Value> items;  // every item has type elem_type (nested arrays allowed)
};

// One metadata value. Integers keep their exact on-disk type; storage is widened
// (unsigned -> uint64_t, signed -> int64_t, f32/f64 -> double).
struct Value {
  ValueType type = ValueType::U8;
  std::variant<uint64_t, int64_t, double, bool, std::string, Array> data;

  static Value u8(uint8_t v) { return {ValueType::U8, uint64_t{v}}; }
  static Value i8(int8_t v) { return {ValueType::I8, int64_t{v}}; }
  static Value u16(uint16_t v) { return {ValueType::U16, uint64_t{v}}; }
  static Value i16(int16_t v) { return {ValueType::I16, int64_t{v}}; }
  static Value u32(uint32_t v) { return {ValueType::U32, uint64_t{v}}; }
  static Value i32(int32_t v) { return {ValueType::I32, int64_t{v}}; }
  static Value u64(uint64_t v) { return {ValueType::U64, v}; }
  static Value i64(int64_t v) { return {ValueType::I64, v}; }
  static Value f32(float v) { return {ValueType::F32, double{v}}; }
  static Value f64(double v) { return {ValueType::F64, v}; }
  static Value boolean(bool v) { return {ValueType::BOOL, v}; }
  static Value string(std::string v) { return {ValueType::STRING, std::move(v)}; }
  static Value array(ValueType elem, std::vector<Value> items) {
    return {ValueType::ARRAY, Array{elem, std::move(items)}};
  }
  static Value string_array(const std::vector<std::string>& v);
  static Value f32_array(const std::vector<float>& v);
  static Value i32_array(const std::vector<int32_t>& v);

  bool operator==(const Value& o) const = default;
};
bool operator==(const Array& a, const Array& b);

// Human-readable rendering for `xtile info`: numbers, quoted strings, arrays as
// "[a, b, ... (N items)]" showing at most `max_items` items per level.
std::string format_value(const Value& v, size_t max_items = 8);

namespace detail {
// 'name' for error messages: control and non-ASCII bytes escaped as \xNN, long names cut,
// so a hostile key cannot garble a terminal or produce a megabyte message.
std::string quoted(std::string_view s);
}  // namespace detail

struct TensorInfo {
  std::string name;
  uint32_t n_dims = 0;
  uint64_t ne[4] = {1, 1, 1, 1};  // ne[0] is the innermost (row) dimension, as in ggml
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;            // relative to the data section
  const uint8_t* data = nullptr;  // into the mapping / buffer (reader only)
  uint64_t bytes = 0;             // ggml_row_bytes(type, ne[0]) * ne[1] * ne[2] * ne[3]
  uint64_t elements() const { return ne[0] * ne[1] * ne[2] * ne[3]; }
  std::string shape_string() const;  // "[2048, 151936]"
};

// A parsed, validated GGUF. Every accessor that can fail throws xtile::Error naming the key
// or tensor and what was expected.
class File {
 public:
  // mmap + parse + validate. Errors name the file and the problem.
  static File open(const std::string& path);
  // Parse + validate a buffer (the fuzzer's entry point). The buffer must outlive the File.
  static File parse(const uint8_t* data, size_t size, const std::string& label = "<buffer>");

  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }  // start of the data section in the file
  const std::string& path() const { return label_; }
  size_t file_size() const { return size_; }
  MappedFile* mapping() { return mapping_.get(); }  // null when parsed from a buffer
  const MappedFile* mapping() const { return mapping_.get(); }

  // Metadata, in file order.
  const std::vector<std::pair<std::string, Value>>& metadata() const { return kv_; }
  const Value* find(std::string_view key) const;
  bool has(std::string_view key) const { return find(key) != nullptr; }
  // Typed lookups: "missing key 'x'" or "key 'x' has type f32, expected an integer".
  uint64_t get_uint(std::string_view key) const;  // any integer type holding a value >= 0
  int64_t get_int(std::string_view key) const;    // any integer type that fits int64
  double get_float(std::string_view key) const;   // f32 or f64 (or integers)
  bool get_bool(std::string_view key) const;
  const std::string& get_string(std::string_view key) const;
  const Array& get_array(std::string_view key) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_f32_array(std::string_view key) const;    // f32/f64 elements
  std::vector<int32_t> get_i32_array(std::string_view key) const;  // integer elements in range
  uint64_t get_uint_or(std::string_view key, uint64_t fallback) const;
  double get_float_or(std::string_view key, double fallback) const;
  std::string get_string_or(std::string_view key, const std::string& fallback) const;

  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const TensorInfo* find_tensor(std::string_view name) const;
  const TensorInfo& tensor(std::string_view name) const;  // throws "missing tensor 'x'"

 private:
  File() = default;
  const Value& require(std::string_view key) const;  // throws "missing key 'x'"
  std::unique_ptr<MappedFile> mapping_;
  std::string label_;
  size_t size_ = 0;
  uint32_t version_ = 0;
  uint64_t alignment_ = kDefaultAlignment;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  friend class Parser;
};

// Writes GGUF v3. Tensor data is produced at write time by a fill callback, so a 17 GB model
// is written one tensor at a time without holding it in memory.
class Writer {
 public:
  using Fill = std::function<void(std::span<uint8_t> dst)>;

  void set(const std::string& key, Value value);  // replaces an existing key, keeps its position
  void set_alignment(uint32_t alignment);         // also writes general.alignment
  // dims as ggml ne (ne[0] innermost). ne[0] must be a multiple of the type's block size.
  void add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne, Fill fill);
  void add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne,
                  const void* data);  // copies bytes from `data` at write time (must outlive write)
  // Writes the file (to a temporary name, then renamed: a failed write leaves no partial file).
  void write(const std::string& path) const;
  // Same layout into memory (tests, fuzz seeds).
  std::vector<uint8_t> to_bytes() const;

  uint32_t alignment() const { return alignment_; }
  size_t tensor_count() const { return tensors_.size(); }

 private:
  struct PendingTensor {
    std::string name;
    GgmlType type;
    std::vector<uint64_t> ne;
    uint64_t bytes;
    Fill fill;
  };
  // Header, metadata and tensor directory (unpadded); fills `offsets` with each tensor's
  // offset relative to the data section and `data_bytes` with the padded data section size.
  std::vector<uint8_t> header_bytes(std::vector<uint64_t>* offsets, uint64_t* data_bytes) const;

  std::vector<std::pair<std::string, Value>> kv_;
  std::map<std::string, size_t, std::less<>> kv_index_;
  std::vector<PendingTensor> tensors_;
  std::map<std::string, size_t, std::less<>> tensor_index_;
  uint32_t alignment_ = kDefaultAlignment;
};

}  // namespace xtile::gguf
