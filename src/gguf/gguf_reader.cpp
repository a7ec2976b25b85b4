// GGUF reader: parses and validates a whole file before anything else may look at it.
//
// Rules, in the order they are checked (each failure is an xtile::Error "<label>: <problem>"):
// magic, version 2 or 3, counts that the remaining bytes could possibly hold, then per key:
// non-empty unique key, known value type, every length/count inside the file (checked against
// the bytes left *before* allocating), arrays nested at most kMaxArrayDepth deep, bools 0 or 1,
// the parsed metadata within kMaxMetadataMemory bytes of memory (checked before each array is
// allocated); `general.alignment` a u32 power of two and a multiple of 8; per tensor: non-empty
// unique name, 1..4 dims, each > 0, a known type, ne[0] a multiple of the block size, element count
// and byte size without overflow, offset aligned, data inside the file; finally no two tensors
// overlap.
#include <algorithm>
#include <bit>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "gguf/gguf.h"

static_assert(std::endian::native == std::endian::little,
              "the GGUF reader copies little-endian fields straight into native integers");

namespace xtile::gguf {

namespace {

// Smallest possible encodings, used to reject impossible counts before allocating anything.
// A key-value pair: key length (8) + at least one key byte + value type (4) + smallest value (1).
constexpr uint64_t kMinKvBytes = 8 + 1 + 4 + 1;
// A tensor: name length (8) + one name byte + n_dims (4) + one dim (8) + type (4) + offset (8).
constexpr uint64_t kMinTensorBytes = 8 + 1 + 4 + 8 + 4 + 8;
// Arrays, metadata and the tensor list reserve at most this many items up front; longer ones
// grow as items are actually read, so memory stays proportional to the bytes really present
// (a count is only bounded by the file size, and one item in memory is larger than on disk).
constexpr uint64_t kMaxReserve = 1 << 16;

bool known_value_type(uint32_t t) {
  return t <= static_cast<uint32_t>(ValueType::F64);
}

uint64_t min_encoded_bytes(ValueType t) {
  switch (t) {
    case ValueType::U8:
    case ValueType::I8:
    case ValueType::BOOL:
      return 1;
    case ValueType::U16:
    case ValueType::I16:
      return 2;
    case ValueType::U32:
    case ValueType::I32:
    case ValueType::F32:
      return 4;
    case ValueType::U64:
    case ValueType::I64:
    case ValueType::F64:
      return 8;
    case ValueType::STRING:
      return 8;  // the length; the bytes may be empty
    case ValueType::ARRAY:
      return 12;  // element type + count
  }
  return 1;
}

}  // namespace

class Parser {
 public:
  Parser(const uint8_t* data, size_t size, const std::string& label, File& out)
      : data_(data), size_(size), label_(label), f_(out) {}

  void run() {
    read_header();
    for (uint64_t i = 0; i < kv_count_; ++i) read_kv(i);
    ctx_.clear();
    apply_alignment();
    // The metadata is known now: bound the tensor count again with the bytes really left.
    if (tensor_count_ > left() / kMinTensorBytes)
      error("tensor count ", tensor_count_, " is impossible: only ", left(),
            " bytes follow the metadata and each tensor needs at least ", kMinTensorBytes);
    f_.tensors_.reserve(static_cast<size_t>(std::min(tensor_count_, kMaxReserve)));
    for (uint64_t i = 0; i < tensor_count_; ++i) read_tensor_info(i);
    ctx_.clear();
    place_tensors();
  }

 private:
  template <typename... Parts>
  [[noreturn]] void error(Parts&&... parts) const {
    fail(label_, ": ", ctx_, std::forward<Parts>(parts)...);
  }

  uint64_t left() const { return size_ - pos_; }

  void need(uint64_t n, const char* what) const {
    if (n > left())
      error("unexpected end of file at offset ", pos_, " reading ", what, " (", n,
            " bytes needed, ", left(), " left; file size ", size_, ")");
  }

  template <typename T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(const char* what) {
    const size_t at = pos_;
    const uint64_t len = read<uint64_t>(what);
    if (len > left())
      error(what, " length ", len, " at offset ", at, " runs past the end of the file (", left(),
            " bytes left)");
    charge(len, at, what);  // the characters (short ones stay inside the std::string)
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

  void read_header() {
    if (size_ < 4) error("file is ", size_, " bytes, too small to be a GGUF file");
    if (std::memcmp(data_, "GGUF", 4) != 0) {
      error("bad magic ", detail::quoted(std::string_view(reinterpret_cast<const char*>(data_), 4)),
            " (expected 'GGUF'): not a GGUF file");
    }
    pos_ = 4;
    const uint32_t version = read<uint32_t>("the version");
    if (version != 2 && version != 3) {
      // A big-endian GGUF stores version 3 as 0x03000000.
      if (version != 0 && (version & 0xffffu) == 0 && __builtin_bswap32(version) <= 3)
        error("GGUF version ", version, " is not supported: this is a big-endian file (version ",
              __builtin_bswap32(version), "), only little-endian files are read");
      error("GGUF version ", version, " is not supported (only versions 2 and 3 are)");
    }
    f_.version_ = version;
    tensor_count_ = read<uint64_t>("the tensor count");
    kv_count_ = read<uint64_t>("the key-value count");
    if (kv_count_ > left() / kMinKvBytes)
      error("key-value count ", kv_count_, " is impossible: only ", left(),
            " bytes follow the header and each pair needs at least ", kMinKvBytes);
    if (tensor_count_ > left() / kMinTensorBytes)
      error("tensor count ", tensor_count_, " is impossible: only ", left(),
            " bytes follow the header and each tensor needs at least ", kMinTensorBytes);
    f_.kv_.reserve(static_cast<size_t>(std::min(kv_count_, kMaxReserve)));
  }

  // Counts `bytes` of parsed metadata against kMaxMetadataMemory before they are allocated. A
  // value in memory is sizeof(Value) whatever its type, so an array of u8, i8 or bool takes
  // ~48 times its size in the file: the file size alone does not bound the memory.
  void charge(uint64_t bytes, uint64_t at, const char* what) {
    if (bytes > kMaxMetadataMemory - metadata_memory_)
      error(what, " at offset ", at, " would need ", bytes, " bytes in memory, with ",
            metadata_memory_, " already taken by the metadata before it: over the limit of ",
            kMaxMetadataMemory, " bytes (", kMaxMetadataMemory >> 20,
            " MiB) for parsed metadata; no model needs this much");
    metadata_memory_ += bytes;
  }

  void read_kv(uint64_t index) {
    ctx_ = "key-value pair " + std::to_string(index) + ": ";
    const size_t at = pos_;
    charge(sizeof(std::pair<std::string, Value>), at, "the key-value pair");
    std::string key = read_string("the key");
    if (key.empty()) error("empty key at offset ", at);
    if (auto it = f_.kv_index_.find(key); it != f_.kv_index_.end()) {
      ctx_.clear();
      error("duplicate key ", detail::quoted(key), " (pairs ", it->second, " and ", index, ")");
    }
    ctx_ = "key " + detail::quoted(key) + ": ";
    const size_t type_at = pos_;
    const uint32_t type = read<uint32_t>("the value type");
    if (!known_value_type(type)) error("unknown value type ", type, " at offset ", type_at);
    Value v = read_value(static_cast<ValueType>(type), 0);
    f_.kv_index_.emplace(key, f_.kv_.size());
    f_.kv_.emplace_back(std::move(key), std::move(v));
  }

  // `depth` is the number of arrays enclosing this value.
  Value read_value(ValueType type, int depth) {
    switch (type) {
      case ValueType::U8:
        return Value::u8(read<uint8_t>("a u8 value"));
      case ValueType::I8:
        return Value::i8(read<int8_t>("an i8 value"));
      case ValueType::U16:
        return Value::u16(read<uint16_t>("a u16 value"));
      case ValueType::I16:
        return Value::i16(read<int16_t>("an i16 value"));
      case ValueType::U32:
        return Value::u32(read<uint32_t>("a u32 value"));
      case ValueType::I32:
        return Value::i32(read<int32_t>("an i32 value"));
      case ValueType::U64:
        return Value::u64(read<uint64_t>("a u64 value"));
      case ValueType::I64:
        return Value::i64(read<int64_t>("an i64 value"));
      case ValueType::F32:
        return Value::f32(read<float>("an f32 value"));
      case ValueType::F64:
        return Value::f64(read<double>("an f64 value"));
      case ValueType::BOOL: {
        const size_t at = pos_;
        const uint8_t b = read<uint8_t>("a bool value");
        if (b > 1) error("bool value ", int{b}, " at offset ", at, " is neither 0 nor 1");
        return Value::boolean(b != 0);
      }
      case ValueType::STRING:
        return Value::string(read_string("the string"));
      case ValueType::ARRAY:
        return read_array(depth);
    }
    error("unknown value type ", static_cast<uint32_t>(type));
  }

  Value read_array(int depth) {
    const size_t at = pos_;
    if (depth >= kMaxArrayDepth)
      error("arrays nested deeper than ", kMaxArrayDepth, " levels at offset ", at);
    const uint32_t elem = read<uint32_t>("an array element type");
    if (!known_value_type(elem)) error("unknown array element type ", elem, " at offset ", at);
    const ValueType et = static_cast<ValueType>(elem);
    const uint64_t count = read<uint64_t>("an array length");
    if (count > left() / min_encoded_bytes(et))
      error("array of ", count, " ", value_type_name(et), " at offset ", at,
            " runs past the end of the file (", left(), " bytes left)");
    // count <= the file size here, so the product cannot overflow.
    charge(count * sizeof(Value), at, "the array");
    Array a;
    a.elem_type = et;
    a.items.reserve(static_cast<size_t>(count));  // charged above: exactly, no regrowth
    for (uint64_t i = 0; i < count; ++i) a.items.push_back(read_value(et, depth + 1));
    return Value{ValueType::ARRAY, std::move(a)};
  }

  void apply_alignment() {
    const Value* v = f_.find("general.alignment");
    if (!v) return;
    if (v->type != ValueType::U32)
      error("general.alignment has type ", value_type_name(v->type), ", expected u32");
    const uint64_t a = std::get<uint64_t>(v->data);
    if (!std::has_single_bit(a)) error("general.alignment ", a, " is not a power of two");
    // GGUF requires a multiple of 8: F32/F64/I64 tensor data is read in place through typed
    // pointers, which a smaller alignment would leave misaligned.
    if (a % 8 != 0) error("general.alignment ", a, " is not a multiple of 8");
    f_.alignment_ = a;
  }

  void read_tensor_info(uint64_t index) {
    ctx_ = "tensor " + std::to_string(index) + ": ";
    const size_t at = pos_;
    TensorInfo t;
    t.name = read_string("the tensor name");
    if (t.name.empty()) error("empty tensor name at offset ", at);
    if (auto it = f_.tensor_index_.find(t.name); it != f_.tensor_index_.end()) {
      ctx_.clear();
      error("duplicate tensor name ", detail::quoted(t.name), " (tensors ", it->second, " and ",
            index, ")");
    }
    ctx_ = "tensor " + detail::quoted(t.name) + ": ";
    t.n_dims = read<uint32_t>("n_dims");
    if (t.n_dims < 1 || t.n_dims > kMaxDims)
      error("n_dims ", t.n_dims, " is out of range 1..", kMaxDims);
    for (uint32_t d = 0; d < t.n_dims; ++d) {
      t.ne[d] = read<uint64_t>("a dimension");
      if (t.ne[d] == 0) error("ne[", d, "] is 0");
    }
    const uint32_t type_id = read<uint32_t>("the tensor type");
    const std::optional<GgmlTypeTraits> traits = ggml_type_traits(type_id);
    if (!traits) error("unknown tensor type ", type_id);
    t.type = traits->type;
    t.offset = read<uint64_t>("the tensor offset");

    // ggml keeps shapes as int64: the element count must fit.
    uint64_t elements = 1;
    for (uint32_t d = 0; d < t.n_dims; ++d)
      if (__builtin_mul_overflow(elements, t.ne[d], &elements) ||
          elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        error("shape ", t.shape_string(), " has more than 2^63-1 elements");
    if (t.ne[0] % traits->block_size != 0)
      error("ne[0] = ", t.ne[0], " is not a multiple of the block size ", traits->block_size,
            " of ", traits->name);
    uint64_t bytes = t.ne[0] / traits->block_size;
    bool overflow = __builtin_mul_overflow(bytes, uint64_t{traits->type_size}, &bytes);
    for (uint32_t d = 1; d < t.n_dims; ++d)
      overflow = overflow || __builtin_mul_overflow(bytes, t.ne[d], &bytes);
    if (overflow)
      error("shape ", t.shape_string(), " of ", traits->name, " has a byte size over 2^64");
    t.bytes = bytes;
    if (t.offset % f_.alignment_ != 0)
      error("offset ", t.offset, " is not a multiple of the alignment ", f_.alignment_);
    f_.tensor_index_.emplace(t.name, f_.tensors_.size());
    f_.tensors_.push_back(std::move(t));
  }

  void place_tensors() {
    // The data section starts at the next multiple of the alignment. The file may end before
    // it (even inside the padding) when there is no tensor data: every tensor is checked below.
    uint64_t data_offset;
    if (__builtin_add_overflow(uint64_t{pos_}, f_.alignment_ - 1, &data_offset))
      error("data section offset overflows");
    data_offset -= data_offset % f_.alignment_;
    f_.data_offset_ = data_offset;

    for (TensorInfo& t : f_.tensors_) {
      uint64_t start, end;
      if (__builtin_add_overflow(data_offset, t.offset, &start) ||
          __builtin_add_overflow(start, t.bytes, &end))
        error("tensor ", detail::quoted(t.name), ": offset ", t.offset, " + ", t.bytes,
              " bytes overflows 64 bits");
      if (end > size_)
        error("tensor ", detail::quoted(t.name), ": data at offset ", t.offset, " (", t.bytes,
              " bytes from file offset ", start, ") ends at ", end,
              ", past the end of the file (size ", size_, ")");
      t.data = data_ + start;
    }

    std::vector<const TensorInfo*> by_offset;
    by_offset.reserve(f_.tensors_.size());
    for (const TensorInfo& t : f_.tensors_) by_offset.push_back(&t);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
    for (size_t i = 1; i < by_offset.size(); ++i) {
      const TensorInfo& a = *by_offset[i - 1];
      const TensorInfo& b = *by_offset[i];
      // Both ends are inside the file (checked above), so these sums cannot overflow.
      if (a.offset + a.bytes > b.offset)
        error("tensors ", detail::quoted(a.name), " (data [", a.offset, ", ", a.offset + a.bytes,
              ")) and ", detail::quoted(b.name), " (data [", b.offset, ", ", b.offset + b.bytes,
              ")) overlap");
    }
  }

  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  const std::string& label_;
  File& f_;
  std::string ctx_;  // "key 'x': " / "tensor 'y': ": what is being read, for error messages
  uint64_t tensor_count_ = 0;
  uint64_t kv_count_ = 0;
  uint64_t metadata_memory_ = 0;  // bytes charged (charge())
};

File File::parse(const uint8_t* data, size_t size, const std::string& label) {
  File f;
  f.label_ = label;
  f.size_ = size;
  Parser(data, size, f.label_, f).run();
  return f;
}

File File::open(const std::string& path) {
  auto mapping = std::make_unique<MappedFile>(path);
  // The File keeps the mapping alive; tensor pointers stay valid as the unique_ptr moves.
  File f = parse(mapping->data(), mapping->size(), path);
  f.mapping_ = std::move(mapping);
  return f;
}

// ---- lookups ----------------------------------------------------------------------------

const Value* File::find(std::string_view key) const {
  auto it = kv_index_.find(key);
  return it == kv_index_.end() ? nullptr : &kv_[it->second].second;
}

namespace {

bool is_unsigned(ValueType t) {
  return t == ValueType::U8 || t == ValueType::U16 || t == ValueType::U32 || t == ValueType::U64;
}
bool is_signed(ValueType t) {
  return t == ValueType::I8 || t == ValueType::I16 || t == ValueType::I32 || t == ValueType::I64;
}
bool is_float(ValueType t) {
  return t == ValueType::F32 || t == ValueType::F64;
}

std::string array_desc(const Array& a) {
  return "an array of " + std::string(value_type_name(a.elem_type));
}

}  // namespace

const Value& File::require(std::string_view key) const {
  const Value* v = find(key);
  if (!v) fail(label_, ": missing key ", detail::quoted(key));
  return *v;
}

uint64_t File::get_uint(std::string_view key) const {
  const Value* v = &require(key);
  if (is_unsigned(v->type)) return std::get<uint64_t>(v->data);
  if (is_signed(v->type)) {
    const int64_t x = std::get<int64_t>(v->data);
    if (x < 0)
      fail(label_, ": key ", detail::quoted(key), " has value ", x,
           ", expected a non-negative integer");
    return static_cast<uint64_t>(x);
  }
  fail(label_, ": key ", detail::quoted(key), " has type ", value_type_name(v->type),
       ", expected an integer");
}

int64_t File::get_int(std::string_view key) const {
  const Value* v = &require(key);
  if (is_signed(v->type)) return std::get<int64_t>(v->data);
  if (is_unsigned(v->type)) {
    const uint64_t x = std::get<uint64_t>(v->data);
    if (x > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail(label_, ": key ", detail::quoted(key), " has value ", x, ", which does not fit in i64");
    return static_cast<int64_t>(x);
  }
  fail(label_, ": key ", detail::quoted(key), " has type ", value_type_name(v->type),
       ", expected an integer");
}

double File::get_float(std::string_view key) const {
  const Value* v = &require(key);
  if (is_float(v->type)) return std::get<double>(v->data);
  if (is_unsigned(v->type)) return static_cast<double>(std::get<uint64_t>(v->data));
  if (is_signed(v->type)) return static_cast<double>(std::get<int64_t>(v->data));
  fail(label_, ": key ", detail::quoted(key), " has type ", value_type_name(v->type),
       ", expected a number (f32 or f64)");
}

bool File::get_bool(std::string_view key) const {
  const Value* v = &require(key);
  if (v->type != ValueType::BOOL)
    fail(label_, ": key ", detail::quoted(key), " has type ", value_type_name(v->type),
         ", expected bool");
  return std::get<bool>(v->data);
}

const std::string& File::get_string(std::string_view key) const {
  const Value* v = &require(key);
  if (v->type != ValueType::STRING)
    fail(label_, ": key ", detail::quoted(key), " has type ", value_type_name(v->type),
         ", expected string");
  return std::get<std::string>(v->data);
}

const Array& File::get_array(std::string_view key) const {
  const Value* v = &require(key);
  if (v->type != ValueType::ARRAY)
    fail(label_, ": key ", detail::quoted(key), " has type ", value_type_name(v->type),
         ", expected array");
  return std::get<Array>(v->data);
}

std::vector<std::string> File::get_string_array(std::string_view key) const {
  const Array& a = get_array(key);
  if (a.elem_type != ValueType::STRING)
    fail(label_, ": key ", detail::quoted(key), " is ", array_desc(a),
         ", expected an array of string");
  std::vector<std::string> out;
  out.reserve(a.items.size());
  for (const Value& v : a.items) out.push_back(std::get<std::string>(v.data));
  return out;
}

std::vector<float> File::get_f32_array(std::string_view key) const {
  const Array& a = get_array(key);
  if (!is_float(a.elem_type))
    fail(label_, ": key ", detail::quoted(key), " is ", array_desc(a),
         ", expected an array of f32 or f64");
  std::vector<float> out;
  out.reserve(a.items.size());
  for (const Value& v : a.items) out.push_back(static_cast<float>(std::get<double>(v.data)));
  return out;
}

std::vector<int32_t> File::get_i32_array(std::string_view key) const {
  const Array& a = get_array(key);
  if (!is_signed(a.elem_type) && !is_unsigned(a.elem_type))
    fail(label_, ": key ", detail::quoted(key), " is ", array_desc(a),
         ", expected an array of integers");
  std::vector<int32_t> out;
  out.reserve(a.items.size());
  for (size_t i = 0; i < a.items.size(); ++i) {
    const Value& v = a.items[i];
    const auto* u = std::get_if<uint64_t>(&v.data);
    const auto* s = std::get_if<int64_t>(&v.data);
    constexpr int64_t kMin = std::numeric_limits<int32_t>::min();
    constexpr int64_t kMax = std::numeric_limits<int32_t>::max();
    if (u ? *u > static_cast<uint64_t>(kMax) : (*s < kMin || *s > kMax)) {
      if (u)
        fail(label_, ": key ", detail::quoted(key), ": element ", i, " = ", *u,
             " does not fit in i32");
      fail(label_, ": key ", detail::quoted(key), ": element ", i, " = ", *s,
           " does not fit in i32");
    }
    out.push_back(static_cast<int32_t>(u ? static_cast<int64_t>(*u) : *s));
  }
  return out;
}

uint64_t File::get_uint_or(std::string_view key, uint64_t fallback) const {
  return has(key) ? get_uint(key) : fallback;
}

double File::get_float_or(std::string_view key, double fallback) const {
  return has(key) ? get_float(key) : fallback;
}

std::string File::get_string_or(std::string_view key, const std::string& fallback) const {
  return has(key) ? get_string(key) : fallback;
}

const TensorInfo* File::find_tensor(std::string_view name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

const TensorInfo& File::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (!t) fail(label_, ": missing tensor ", detail::quoted(name));
  return *t;
}

}  // namespace xtile::gguf
