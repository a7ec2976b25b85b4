// GGUF v3 writer. Layout (as llama.cpp writes it): header, metadata in insertion order, tensor
// directory, zero padding to the alignment, then each tensor in insertion order at the next
// aligned offset, each followed by zero padding to the alignment. The writer accepts only what
// the reader accepts (same value, shape and nesting rules), so everything it writes loads.
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "gguf/gguf.h"

namespace xtile::gguf {

namespace {

constexpr uint32_t kVersion = 3;

// Checks that a Value is well-formed: its variant alternative matches its type, integers are in
// the range of their on-disk type, arrays hold only their element type and nest at most
// kMaxArrayDepth deep.
void check_value(const std::string& key, const Value& v, int depth) {
  auto bad = [&](const char* what) {
    fail("gguf writer: key ", detail::quoted(key), ": value of type ", value_type_name(v.type), " ",
         what);
  };
  auto check_u = [&](uint64_t max) {
    const auto* u = std::get_if<uint64_t>(&v.data);
    if (!u) bad("does not hold an unsigned integer");
    if (*u > max) bad("is out of range");
  };
  auto check_i = [&](int64_t min, int64_t max) {
    const auto* i = std::get_if<int64_t>(&v.data);
    if (!i) bad("does not hold a signed integer");
    if (*i < min || *i > max) bad("is out of range");
  };
  switch (v.type) {
    case ValueType::U8:
      return check_u(UINT8_MAX);
    case ValueType::U16:
      return check_u(UINT16_MAX);
    case ValueType::U32:
      return check_u(UINT32_MAX);
    case ValueType::U64:
      return check_u(UINT64_MAX);
    case ValueType::I8:
      return check_i(INT8_MIN, INT8_MAX);
    case ValueType::I16:
      return check_i(INT16_MIN, INT16_MAX);
    case ValueType::I32:
      return check_i(INT32_MIN, INT32_MAX);
    case ValueType::I64:
      return check_i(INT64_MIN, INT64_MAX);
    case ValueType::F32:
    case ValueType::F64:
      if (!std::holds_alternative<double>(v.data)) bad("does not hold a double");
      return;
    case ValueType::BOOL:
      if (!std::holds_alternative<bool>(v.data)) bad("does not hold a bool");
      return;
    case ValueType::STRING:
      if (!std::holds_alternative<std::string>(v.data)) bad("does not hold a string");
      return;
    case ValueType::ARRAY: {
      const auto* a = std::get_if<Array>(&v.data);
      if (!a) bad("does not hold an Array");
      if (depth >= kMaxArrayDepth)
        fail("gguf writer: key ", detail::quoted(key), ": arrays nested deeper than ",
             kMaxArrayDepth, " levels");
      if (static_cast<uint32_t>(a->elem_type) > static_cast<uint32_t>(ValueType::F64))
        fail("gguf writer: key ", detail::quoted(key), ": unknown array element type ",
             static_cast<uint32_t>(a->elem_type));
      for (size_t i = 0; i < a->items.size(); ++i) {
        if (a->items[i].type != a->elem_type)
          fail("gguf writer: key ", detail::quoted(key), ": item ", i, " of an array of ",
               value_type_name(a->elem_type), " has type ", value_type_name(a->items[i].type));
        check_value(key, a->items[i], depth + 1);
      }
      return;
    }
  }
  fail("gguf writer: key ", detail::quoted(key), ": unknown value type ",
       static_cast<uint32_t>(v.type));
}

class ByteSink {
 public:
  explicit ByteSink(std::vector<uint8_t>& out) : out_(out) {}
  template <typename T>
  void put(T v) {
    const size_t n = out_.size();
    out_.resize(n + sizeof(T));
    std::memcpy(out_.data() + n, &v, sizeof(T));
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }
  // Values were checked by check_value() in set(), so the variant accesses cannot throw.
  void put_value(const Value& v) {
    switch (v.type) {
      case ValueType::U8:
        return put(static_cast<uint8_t>(std::get<uint64_t>(v.data)));
      case ValueType::U16:
        return put(static_cast<uint16_t>(std::get<uint64_t>(v.data)));
      case ValueType::U32:
        return put(static_cast<uint32_t>(std::get<uint64_t>(v.data)));
      case ValueType::U64:
        return put(std::get<uint64_t>(v.data));
      case ValueType::I8:
        return put(static_cast<int8_t>(std::get<int64_t>(v.data)));
      case ValueType::I16:
        return put(static_cast<int16_t>(std::get<int64_t>(v.data)));
      case ValueType::I32:
        return put(static_cast<int32_t>(std::get<int64_t>(v.data)));
      case ValueType::I64:
        return put(std::get<int64_t>(v.data));
      case ValueType::F32:
        return put(static_cast<float>(std::get<double>(v.data)));
      case ValueType::F64:
        return put(std::get<double>(v.data));
      case ValueType::BOOL:
        return put(static_cast<uint8_t>(std::get<bool>(v.data) ? 1 : 0));
      case ValueType::STRING:
        return put_string(std::get<std::string>(v.data));
      case ValueType::ARRAY: {
        const Array& a = std::get<Array>(v.data);
        put(static_cast<uint32_t>(a.elem_type));
        put<uint64_t>(a.items.size());
        for (const Value& item : a.items) put_value(item);
        return;
      }
    }
  }

 private:
  std::vector<uint8_t>& out_;
};

uint64_t align_up(uint64_t x, uint64_t a) {
  return (x + a - 1) / a * a;
}

// An open FILE* for "<path>.tmp" that is closed and removed unless commit() renamed it.
class TempFile {
 public:
  explicit TempFile(const std::string& path) : path_(path), tmp_(path + ".tmp") {
    f_ = std::fopen(tmp_.c_str(), "wb");
    if (!f_) fail("cannot create '", tmp_, "': ", std::strerror(errno));
  }
  ~TempFile() {
    if (f_) std::fclose(f_);
    if (!committed_) std::remove(tmp_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* p, size_t n) {
    if (n && std::fwrite(p, 1, n, f_) != n)
      fail("cannot write '", tmp_, "': ", std::strerror(errno));
  }
  void zeros(uint64_t n) {
    static const uint8_t kZeros[4096] = {};
    while (n) {
      const size_t k = n < sizeof kZeros ? static_cast<size_t>(n) : sizeof kZeros;
      write(kZeros, k);
      n -= k;
    }
  }
  void commit() {
    FILE* f = f_;
    f_ = nullptr;
    if (std::fclose(f) != 0) fail("cannot write '", tmp_, "': ", std::strerror(errno));
    if (std::rename(tmp_.c_str(), path_.c_str()) != 0)
      fail("cannot rename '", tmp_, "' to '", path_, "': ", std::strerror(errno));
    committed_ = true;
  }

 private:
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  bool committed_ = false;
};

}  // namespace

void Writer::set(const std::string& key, Value value) {
  if (key.empty()) fail("gguf writer: empty key");
  check_value(key, value, 0);
  if (key == "general.alignment") {
    if (value.type != ValueType::U32)
      fail("gguf writer: general.alignment has type ", value_type_name(value.type),
           ", expected u32");
    const uint64_t a = std::get<uint64_t>(value.data);
    if (!std::has_single_bit(a))
      fail("gguf writer: general.alignment ", a, " is not a power of two");
    if (a % 8 != 0) fail("gguf writer: general.alignment ", a, " is not a multiple of 8");
    alignment_ = static_cast<uint32_t>(a);
  }
  if (auto it = kv_index_.find(key); it != kv_index_.end()) {
    kv_[it->second].second = std::move(value);
    return;
  }
  kv_index_.emplace(key, kv_.size());
  kv_.emplace_back(key, std::move(value));
}

void Writer::set_alignment(uint32_t alignment) {
  set("general.alignment", Value::u32(alignment));
}

void Writer::add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne,
                        Fill fill) {
  const std::string q = detail::quoted(name);
  if (name.empty()) fail("gguf writer: empty tensor name");
  if (tensor_index_.count(name)) fail("gguf writer: duplicate tensor name ", q);
  if (ne.empty() || ne.size() > static_cast<size_t>(kMaxDims))
    fail("gguf writer: tensor ", q, ": ", ne.size(), " dims, expected 1..", kMaxDims);
  if (!fill) fail("gguf writer: tensor ", q, ": no fill callback");
  const GgmlTypeTraits& tr = ggml_traits(type);
  uint64_t elements = 1;
  for (size_t d = 0; d < ne.size(); ++d) {
    if (ne[d] == 0) fail("gguf writer: tensor ", q, ": ne[", d, "] is 0");
    if (__builtin_mul_overflow(elements, ne[d], &elements) ||
        elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("gguf writer: tensor ", q, ": more than 2^63-1 elements");
  }
  if (ne[0] % tr.block_size != 0)
    fail("gguf writer: tensor ", q, ": ne[0] = ", ne[0], " is not a multiple of the block size ",
         tr.block_size, " of ", tr.name);
  uint64_t bytes = ne[0] / tr.block_size;
  bool overflow = __builtin_mul_overflow(bytes, uint64_t{tr.type_size}, &bytes);
  for (size_t d = 1; d < ne.size(); ++d)
    overflow = overflow || __builtin_mul_overflow(bytes, ne[d], &bytes);
  if (overflow) fail("gguf writer: tensor ", q, ": byte size over 2^64");
  tensor_index_.emplace(name, tensors_.size());
  tensors_.push_back(PendingTensor{name, type, std::move(ne), bytes, std::move(fill)});
}

void Writer::add_tensor(const std::string& name, GgmlType type, std::vector<uint64_t> ne,
                        const void* data) {
  if (!data) fail("gguf writer: tensor ", detail::quoted(name), ": null data");
  add_tensor(name, type, std::move(ne),
             [data](std::span<uint8_t> dst) { std::memcpy(dst.data(), data, dst.size()); });
}

std::vector<uint8_t> Writer::header_bytes(std::vector<uint64_t>* offsets,
                                          uint64_t* data_bytes) const {
  offsets->clear();
  uint64_t pos = 0;
  for (const PendingTensor& t : tensors_) {
    offsets->push_back(pos);
    if (__builtin_add_overflow(pos, t.bytes, &pos) || pos > UINT64_MAX - alignment_)
      fail("gguf writer: data section over 2^64 bytes");
    pos = align_up(pos, alignment_);
  }
  *data_bytes = pos;

  std::vector<uint8_t> out{'G', 'G', 'U', 'F'};
  ByteSink s(out);
  s.put<uint32_t>(kVersion);
  s.put<uint64_t>(tensors_.size());
  s.put<uint64_t>(kv_.size());
  for (const auto& [key, value] : kv_) {
    s.put_string(key);
    s.put(static_cast<uint32_t>(value.type));
    s.put_value(value);
  }
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const PendingTensor& t = tensors_[i];
    s.put_string(t.name);
    s.put<uint32_t>(static_cast<uint32_t>(t.ne.size()));
    for (uint64_t d : t.ne) s.put(d);
    s.put(static_cast<uint32_t>(t.type));
    s.put((*offsets)[i]);
  }
  return out;
}

std::vector<uint8_t> Writer::to_bytes() const {
  std::vector<uint64_t> offsets;
  uint64_t data_bytes;
  std::vector<uint8_t> out = header_bytes(&offsets, &data_bytes);
  const uint64_t data_offset = align_up(out.size(), alignment_);
  out.resize(data_offset + data_bytes);  // zero padding everywhere the tensors do not write
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const PendingTensor& t = tensors_[i];
    t.fill(std::span<uint8_t>(out.data() + data_offset + offsets[i], t.bytes));
  }
  return out;
}

void Writer::write(const std::string& path) const {
  std::vector<uint64_t> offsets;
  uint64_t data_bytes;
  const std::vector<uint8_t> header = header_bytes(&offsets, &data_bytes);
  TempFile out(path);
  out.write(header.data(), header.size());
  uint64_t pos = header.size();
  const uint64_t data_offset = align_up(pos, alignment_);
  out.zeros(data_offset - pos);
  pos = data_offset;
  std::vector<uint8_t> buf;
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const PendingTensor& t = tensors_[i];
    out.zeros(data_offset + offsets[i] - pos);
    // A fresh zeroed buffer of exactly the tensor's bytes: one tensor in memory at a time.
    buf.assign(t.bytes, 0);
    t.fill(std::span<uint8_t>(buf.data(), buf.size()));
    out.write(buf.data(), buf.size());
    pos = data_offset + offsets[i] + t.bytes;
  }
  out.zeros(data_offset + data_bytes - pos);
  out.commit();
}

}  // namespace xtile::gguf
