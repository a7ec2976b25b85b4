// GGUF reader/writer: round trips of every value type and several tensor types, typed lookups,
// malformed files (each built here, each must give an xtile::Error naming the problem, never a
// crash: the suite also runs under ASan+UBSan) and the real fixture files.
#include "gguf/gguf.h"

#include <gtest/gtest.h>

#include <bit>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "base/error.h"
#include "test_util.h"

namespace xtile::gguf {
namespace {
namespace gguf_test {  // unity batches: CMakeLists.txt

// ---- helpers --------------------------------------------------------------------------------

// Builds raw GGUF bytes field by field (little-endian), for files the writer refuses to make.
class Raw {
 public:
  Raw& bytes(std::string_view s) {
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  Raw& u8(uint8_t v) { return put(v); }
  Raw& u32(uint32_t v) { return put(v); }
  Raw& u64(uint64_t v) { return put(v); }
  Raw& str(std::string_view s) { return u64(s.size()).bytes(s); }
  Raw& header(uint64_t n_tensors, uint64_t n_kv, uint32_t version = 3) {
    return bytes("GGUF").u32(version).u64(n_tensors).u64(n_kv);
  }
  Raw& kv_u32(std::string_view key, uint32_t v) { return str(key).u32(4).u32(v); }
  Raw& kv_string(std::string_view key, std::string_view v) { return str(key).u32(8).str(v); }
  Raw& tensor(std::string_view name, std::vector<uint64_t> ne, uint32_t type, uint64_t offset) {
    str(name).u32(static_cast<uint32_t>(ne.size()));
    for (uint64_t d : ne) u64(d);
    return u32(type).u64(offset);
  }
  Raw& pad(size_t alignment) { return zeros((alignment - b.size() % alignment) % alignment); }
  Raw& zeros(size_t n) {
    b.resize(b.size() + n, 0);
    return *this;
  }
  std::vector<uint8_t> b;

 private:
  template <typename T>
  Raw& put(T v) {
    uint8_t tmp[sizeof(T)];
    std::memcpy(tmp, &v, sizeof(T));
    b.insert(b.end(), tmp, tmp + sizeof(T));
    return *this;
  }
};

constexpr uint32_t kF32 = 0, kQ8_0 = 8;

File parse(const std::vector<uint8_t>& b, const std::string& label = "test.gguf") {
  return File::parse(b.data(), b.size(), label);
}

// Parsing must throw xtile::Error whose message starts with the label and contains `expected`.
void expect_rejected(const std::vector<uint8_t>& b, const std::string& expected) {
  try {
    parse(b, "bad.gguf");
    ADD_FAILURE() << "parsed without error; expected an error containing \"" << expected << "\"";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.rfind("bad.gguf: ", 0), 0u) << msg;
    EXPECT_NE(msg.find(expected), std::string::npos)
        << "message: " << msg << "\nexpected to contain: " << expected;
  }
}

// Calls `f`, expects an xtile::Error containing `expected`.
template <typename F>
void expect_error(F&& f, const std::string& expected) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing \"" << expected << "\"";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(expected), std::string::npos)
        << "message: " << e.what() << "\nexpected to contain: " << expected;
  }
}

// One f32 tensor `w` of `n` elements at offset 0, data present.
std::vector<uint8_t> one_tensor_file(std::vector<uint64_t> ne, uint32_t type, uint64_t offset,
                                     size_t data_bytes) {
  return Raw().header(1, 0).tensor("w", std::move(ne), type, offset).pad(32).zeros(data_bytes).b;
}

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 131 + (i >> 8));
  return v;
}

// A Writer holding a parsed file's metadata and tensors (tensor bytes read from the file).
Writer writer_from(const File& f) {
  Writer w;
  for (const auto& [k, v] : f.metadata()) w.set(k, v);
  for (const TensorInfo& t : f.tensors())
    w.add_tensor(t.name, t.type, std::vector<uint64_t>(t.ne, t.ne + t.n_dims), t.data);
  return w;
}

Value nested(int levels) {  // `levels` arrays around one u8
  Value v = Value::u8(7);
  for (int i = 0; i < levels; ++i) {
    const ValueType et = v.type;
    v = Value::array(et, {v});
  }
  return v;
}

struct TensorSpec {
  std::string name;
  GgmlType type;
  std::vector<uint64_t> ne;
  std::vector<uint8_t> data;
};

std::vector<TensorSpec> tensor_specs() {
  std::vector<TensorSpec> specs = {
      {"tok.f32", GgmlType::F32, {3, 2}, {}},       {"vec.f16", GgmlType::F16, {8}, {}},
      {"w.q8_0", GgmlType::Q8_0, {64, 2}, {}},      {"w.q4_0", GgmlType::Q4_0, {32, 1, 2}, {}},
      {"x.bf16", GgmlType::BF16, {4, 1, 1, 2}, {}}, {"ids.i32", GgmlType::I32, {5}, {}},
      {"k.q4_K", GgmlType::Q4_K, {256, 3}, {}},
  };
  uint8_t seed = 1;
  for (TensorSpec& s : specs) {
    uint64_t bytes = ggml_row_bytes(s.type, s.ne[0]);
    for (size_t d = 1; d < s.ne.size(); ++d) bytes *= s.ne[d];
    s.data = pattern(bytes, seed++);
  }
  return specs;
}

// Every value type, UTF-8 and embedded NULs, empty string/array, arrays of each, nesting.
std::vector<std::pair<std::string, Value>> all_values() {
  using V = Value;
  std::vector<std::pair<std::string, Value>> kv = {
      {"general.architecture", V::string("llama")},
      {"v.u8", V::u8(200)},
      {"v.i8", V::i8(-100)},
      {"v.u16", V::u16(60000)},
      {"v.i16", V::i16(-30000)},
      {"v.u32", V::u32(4000000000u)},
      {"v.i32", V::i32(-2000000000)},
      {"v.u64", V::u64(std::numeric_limits<uint64_t>::max())},
      {"v.i64", V::i64(std::numeric_limits<int64_t>::min())},
      {"v.f32", V::f32(3.14159274f)},
      {"v.f64", V::f64(-2.718281828459045)},
      {"v.true", V::boolean(true)},
      {"v.false", V::boolean(false)},
      {"v.utf8", V::string("h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 \xf0\x9f\x98\x80")},
      {"v.nul", V::string(std::string("a\0b\0", 4))},
      {"v.empty", V::string("")},
      {"a.u8", V::array(ValueType::U8, {V::u8(0), V::u8(255)})},
      {"a.i8", V::array(ValueType::I8, {V::i8(-128), V::i8(127)})},
      {"a.u16", V::array(ValueType::U16, {V::u16(1), V::u16(65535)})},
      {"a.i16", V::array(ValueType::I16, {V::i16(-32768), V::i16(5)})},
      {"a.u32", V::array(ValueType::U32, {V::u32(0), V::u32(0xffffffffu)})},
      {"a.i32", V::i32_array({-1, 0, 1, 2147483647})},
      {"a.u64", V::array(ValueType::U64, {V::u64(1ull << 63)})},
      {"a.i64", V::array(ValueType::I64, {V::i64(-1), V::i64(1ll << 40)})},
      {"a.f32", V::f32_array({0.5f, -0.0f, 1e-30f, 3.4e38f})},
      {"a.f64", V::array(ValueType::F64, {V::f64(1e300), V::f64(-5e-324)})},
      {"a.bool", V::array(ValueType::BOOL, {V::boolean(true), V::boolean(false)})},
      {"a.str", V::string_array({"a", "", std::string("\xc3\xbc\0x", 4), "<0x0A>"})},
      {"a.nested",
       V::array(ValueType::ARRAY, {V::i32_array({1, 2}), V::i32_array({3}), V::i32_array({}),
                                   V::string_array({"mixed", "inner types"})})},
      {"a.deep", nested(kMaxArrayDepth)},
      {"a.empty", V::array(ValueType::U32, {})},
  };
  return kv;
}

Writer rich_writer(const std::vector<TensorSpec>& specs, uint32_t alignment = 0) {
  Writer w;
  for (auto& [k, v] : all_values()) w.set(k, v);
  if (alignment) w.set_alignment(alignment);
  for (const TensorSpec& s : specs) w.add_tensor(s.name, s.type, s.ne, s.data.data());
  return w;
}

// ---- round trips ----------------------------------------------------------------------------

void check_round_trip(uint32_t alignment) {
  const std::vector<TensorSpec> specs = tensor_specs();
  const Writer w = rich_writer(specs, alignment);
  const std::vector<uint8_t> bytes = w.to_bytes();
  const File f = parse(bytes);
  const uint64_t align = alignment ? alignment : kDefaultAlignment;

  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.alignment(), align);
  EXPECT_EQ(f.data_offset() % align, 0u);
  EXPECT_EQ(bytes.size() % align, 0u) << "the file ends padded to the alignment";

  auto expected = all_values();
  if (alignment) expected.emplace_back("general.alignment", Value::u32(alignment));
  ASSERT_EQ(f.metadata().size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(f.metadata()[i].first, expected[i].first) << "keys keep insertion order";
    EXPECT_TRUE(f.metadata()[i].second == expected[i].second) << expected[i].first;
    ASSERT_NE(f.find(expected[i].first), nullptr);
  }
  EXPECT_EQ(f.get_string("v.nul"), std::string("a\0b\0", 4));
  EXPECT_EQ(f.get_string("v.empty"), "");
  EXPECT_EQ(f.get_array("a.empty").items.size(), 0u);
  EXPECT_EQ(f.get_array("a.empty").elem_type, ValueType::U32);

  ASSERT_EQ(f.tensors().size(), specs.size());
  uint64_t offset = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    const TensorSpec& s = specs[i];
    EXPECT_EQ(t.name, s.name);
    EXPECT_EQ(t.type, s.type) << s.name;
    ASSERT_EQ(t.n_dims, s.ne.size()) << s.name;
    for (uint32_t d = 0; d < 4; ++d) EXPECT_EQ(t.ne[d], d < t.n_dims ? s.ne[d] : 1u) << s.name;
    EXPECT_EQ(t.offset, offset) << s.name;
    EXPECT_EQ(t.offset % align, 0u);
    ASSERT_EQ(t.bytes, s.data.size()) << s.name;
    EXPECT_EQ(t.data, bytes.data() + f.data_offset() + t.offset);
    EXPECT_EQ(std::memcmp(t.data, s.data.data(), s.data.size()), 0) << s.name;
    EXPECT_EQ(f.find_tensor(s.name), &t);
    offset = (offset + t.bytes + align - 1) / align * align;
  }
  EXPECT_EQ(f.data_offset() + offset, bytes.size());
  // Padding between tensors is zeros.
  for (size_t i = 0; i + 1 < f.tensors().size(); ++i) {
    const TensorInfo& t = f.tensors()[i];
    for (uint64_t p = t.offset + t.bytes; p < f.tensors()[i + 1].offset; ++p)
      ASSERT_EQ(bytes[f.data_offset() + p], 0) << "padding after " << t.name;
  }

  // Writing the parsed content again gives the same bytes.
  EXPECT_EQ(writer_from(f).to_bytes(), bytes);
}

TEST(GgufRoundTrip, EveryValueTypeAndTensorTypes) {
  check_round_trip(0);
}

TEST(GgufRoundTrip, CustomAlignment) {
  check_round_trip(64);
  check_round_trip(8);
  check_round_trip(4096);
}

TEST(GgufRoundTrip, WriteToDiskMatchesToBytesAndOpens) {
  const std::vector<TensorSpec> specs = tensor_specs();
  const Writer w = rich_writer(specs);
  const std::string path = test::temp_path("round_trip.gguf").string();
  w.write(path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  const std::vector<uint8_t> bytes = w.to_bytes();
  ASSERT_EQ(std::filesystem::file_size(path), bytes.size());
  File f = File::open(path);
  EXPECT_EQ(f.path(), path);
  ASSERT_NE(f.mapping(), nullptr);
  EXPECT_EQ(std::memcmp(f.mapping()->data(), bytes.data(), bytes.size()), 0);
  EXPECT_EQ(f.tensor("w.q8_0").bytes, 2u * 34u * 2u);
  EXPECT_EQ(std::memcmp(f.tensor("k.q4_K").data, specs[6].data.data(), specs[6].data.size()), 0);
  // A moved File keeps valid tensor pointers (the mapping is owned through a pointer).
  const uint8_t* before = f.tensors()[0].data;
  File moved = std::move(f);
  EXPECT_EQ(moved.tensors()[0].data, before);
  EXPECT_EQ(std::memcmp(moved.tensors()[0].data, specs[0].data.data(), specs[0].data.size()), 0);
  std::filesystem::remove(path);
}

TEST(GgufRoundTrip, EmptyFileAndVersion2) {
  Writer w;
  const std::vector<uint8_t> b = w.to_bytes();
  ASSERT_EQ(b.size(), 32u);  // 24-byte header padded to 32
  const File f = parse(b);
  EXPECT_TRUE(f.metadata().empty());
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.data_offset(), 32u);

  // Version 2 has the same layout as version 3.
  std::vector<uint8_t> v2 = rich_writer(tensor_specs()).to_bytes();
  v2[4] = 2;
  EXPECT_EQ(parse(v2).version(), 2u);
}

TEST(GgufRoundTrip, FileMayEndBeforeTheDataSectionWhenThereAreNoTensors) {
  // The header + directory alone, ending anywhere in (or before) the alignment padding.
  const std::vector<uint8_t> b = Raw().header(0, 1).kv_string("general.name", "x").b;
  ASSERT_NE(b.size() % 32, 0u);
  for (size_t extra = 0; extra < 32 - b.size() % 32; ++extra) {
    std::vector<uint8_t> c = b;
    c.resize(b.size() + extra, 0);
    const File f = parse(c);
    EXPECT_EQ(f.get_string("general.name"), "x");
    EXPECT_EQ(f.data_offset(), (b.size() + 31) / 32 * 32);
  }
}

TEST(GgufWriter, FillIsCalledOncePerTensorWithItsExactSize) {
  Writer w;
  std::vector<size_t> calls;
  w.add_tensor("a", GgmlType::Q8_0, {64, 3}, [&](std::span<uint8_t> dst) {
    calls.push_back(dst.size());
    std::fill(dst.begin(), dst.end(), 0xab);
  });
  w.add_tensor("b", GgmlType::F16, {7}, [&](std::span<uint8_t> dst) {
    calls.push_back(dst.size());
    std::fill(dst.begin(), dst.end(), 0xcd);
  });
  const std::string path = test::temp_path("fill.gguf").string();
  w.write(path);
  EXPECT_EQ(calls, (std::vector<size_t>{2 * 34 * 3, 14}));
  const File f = File::open(path);
  EXPECT_EQ(f.tensor("a").data[0], 0xab);
  EXPECT_EQ(f.tensor("a").data[2 * 34 * 3 - 1], 0xab);
  EXPECT_EQ(f.tensor("b").offset, 224u);  // 204 rounded up to 32
  EXPECT_EQ(f.tensor("b").data[13], 0xcd);
  EXPECT_EQ(f.tensor("b").shape_string(), "[7]");
  EXPECT_EQ(f.tensor("a").shape_string(), "[64, 3]");
  std::filesystem::remove(path);
}

TEST(GgufWriter, FailedWriteLeavesNoFile) {
  Writer w;
  w.set("general.name", Value::string("x"));
  w.add_tensor("a", GgmlType::F32, {4}, [](std::span<uint8_t>) { fail("fill failed: no data"); });
  const std::string path = test::temp_path("failed.gguf").string();
  expect_error([&] { w.write(path); }, "fill failed: no data");
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  Writer ok;
  expect_error([&] { ok.write("/nonexistent-xtile-dir/m.gguf"); },
               "cannot create '/nonexistent-xtile-dir/m.gguf.tmp'");
#ifdef __linux__
  if (std::filesystem::exists("/dev/full")) {
    // A write error (disk full) is reported by name; the device is not renamed over.
    Writer big;
    std::vector<uint8_t> data(1 << 20, 1);
    big.add_tensor("a", GgmlType::I8, {data.size()}, data.data());
    const std::string link = test::temp_path("full.gguf").string();
    std::filesystem::remove(link + ".tmp");
    std::filesystem::create_symlink("/dev/full", link + ".tmp");
    expect_error([&] { big.write(link); }, "No space left on device");
    EXPECT_FALSE(std::filesystem::exists(link));
    std::filesystem::remove(link + ".tmp");
  }
#endif
}

TEST(GgufWriter, RejectsWhatTheReaderWouldReject) {
  Writer w;
  const std::vector<uint8_t> d(4096);
  expect_error([&] { w.add_tensor("q", GgmlType::Q8_0, {33}, d.data()); },
               "ne[0] = 33 is not a multiple of the block size 32 of q8_0");
  expect_error([&] { w.add_tensor("", GgmlType::F32, {1}, d.data()); }, "empty tensor name");
  expect_error([&] { w.add_tensor("z", GgmlType::F32, {}, d.data()); }, "0 dims");
  expect_error([&] { w.add_tensor("z", GgmlType::F32, {1, 1, 1, 1, 1}, d.data()); }, "5 dims");
  expect_error([&] { w.add_tensor("z", GgmlType::F32, {4, 0}, d.data()); }, "ne[1] is 0");
  expect_error([&] { w.add_tensor("z", GgmlType::F32, {1ull << 62}, d.data()); },
               "byte size over 2^64");
  expect_error(
      [&] {
        w.add_tensor("z", GgmlType::F32, {1ull << 32, 1ull << 32}, d.data());
      },
      "more than 2^63-1 elements");
  w.add_tensor("t", GgmlType::F32, {4}, d.data());
  expect_error([&] { w.add_tensor("t", GgmlType::F32, {4}, d.data()); },
               "duplicate tensor name 't'");
  expect_error([&] { w.set_alignment(48); }, "general.alignment 48 is not a power of two");
  expect_error([&] { w.set_alignment(0); }, "general.alignment 0 is not a power of two");
  expect_error([&] { w.set("general.alignment", Value::u64(64)); },
               "general.alignment has type u64, expected u32");
  expect_error([&] { w.set("", Value::u8(1)); }, "empty key");
  expect_error(
      [&] {
        w.set("k", Value{ValueType::U8, std::string("x")});
      },
      "key 'k': value of type u8 does not hold an unsigned integer");
  expect_error(
      [&] {
        w.set("k", Value{ValueType::U8, uint64_t{300}});
      },
      "key 'k': value of type u8 is out of range");
  expect_error([&] { w.set("k", Value::array(ValueType::U32, {Value::u8(1)})); },
               "item 0 of an array of u32 has type u8");
  expect_error([&] { w.set("k", nested(kMaxArrayDepth + 1)); }, "arrays nested deeper than 8");
}

TEST(GgufWriter, SetReplacesInPlace) {
  Writer w;
  w.set("a", Value::u32(1));
  w.set("b", Value::u32(2));
  w.set("a", Value::string("now a string"));
  const std::vector<uint8_t> b = w.to_bytes();
  const File f = parse(b);
  ASSERT_EQ(f.metadata().size(), 2u);
  EXPECT_EQ(f.metadata()[0].first, "a");
  EXPECT_EQ(f.get_string("a"), "now a string");
  EXPECT_EQ(f.get_uint("b"), 2u);
}

// ---- typed lookups --------------------------------------------------------------------------

TEST(GgufLookup, TypedGettersConvertAndNameKeyAndTypes) {
  Writer w;
  w.set("neg", Value::i32(-5));
  w.set("pos", Value::i16(7));
  w.set("big", Value::u64(std::numeric_limits<uint64_t>::max()));
  w.set("u", Value::u32(40));
  w.set("f", Value::f32(0.25f));
  w.set("b", Value::boolean(true));
  w.set("s", Value::string("text"));
  w.set("ints", Value::i32_array({1, -2}));
  w.set("u32s", Value::array(ValueType::U32, {Value::u32(1), Value::u32(3000000000u)}));
  w.set("u8s", Value::array(ValueType::U8, {Value::u8(9)}));
  w.set("f64s", Value::array(ValueType::F64, {Value::f64(0.5)}));
  w.set("strs", Value::string_array({"x", "y"}));
  const std::vector<uint8_t> bytes = w.to_bytes();
  const File f = parse(bytes, "m.gguf");

  EXPECT_EQ(f.get_int("neg"), -5);
  EXPECT_EQ(f.get_uint("pos"), 7u);
  EXPECT_EQ(f.get_uint("u"), 40u);
  EXPECT_EQ(f.get_int("u"), 40);
  EXPECT_EQ(f.get_float("f"), 0.25);
  EXPECT_EQ(f.get_float("u"), 40.0);
  EXPECT_TRUE(f.get_bool("b"));
  EXPECT_EQ(f.get_string("s"), "text");
  EXPECT_EQ(f.get_i32_array("ints"), (std::vector<int32_t>{1, -2}));
  EXPECT_EQ(f.get_i32_array("u8s"), (std::vector<int32_t>{9}));
  EXPECT_EQ(f.get_f32_array("f64s"), (std::vector<float>{0.5f}));
  EXPECT_EQ(f.get_string_array("strs"), (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(f.get_uint_or("missing", 11), 11u);
  EXPECT_EQ(f.get_uint_or("u", 11), 40u);
  EXPECT_EQ(f.get_float_or("missing", 1e4), 1e4);
  EXPECT_EQ(f.get_string_or("missing", "fb"), "fb");
  EXPECT_EQ(f.get_string_or("s", "fb"), "text");
  EXPECT_FALSE(f.has("missing"));
  EXPECT_EQ(f.find("missing"), nullptr);

  expect_error([&] { f.get_uint("nope"); }, "m.gguf: missing key 'nope'");
  expect_error([&] { f.get_string("nope"); }, "m.gguf: missing key 'nope'");
  expect_error([&] { f.get_uint("neg"); }, "key 'neg' has value -5, expected a non-negative");
  expect_error([&] { f.get_uint("f"); }, "key 'f' has type f32, expected an integer");
  expect_error([&] { f.get_int("s"); }, "key 's' has type string, expected an integer");
  expect_error([&] { f.get_int("big"); }, "key 'big' has value 18446744073709551615");
  expect_error([&] { f.get_float("s"); }, "key 's' has type string, expected a number");
  expect_error([&] { f.get_bool("u"); }, "key 'u' has type u32, expected bool");
  expect_error([&] { f.get_string("u"); }, "key 'u' has type u32, expected string");
  expect_error([&] { f.get_array("s"); }, "key 's' has type string, expected array");
  expect_error([&] { f.get_string_array("ints"); },
               "key 'ints' is an array of i32, expected an array of string");
  expect_error([&] { f.get_f32_array("strs"); },
               "key 'strs' is an array of string, expected an array of f32");
  expect_error([&] { f.get_i32_array("strs"); },
               "key 'strs' is an array of string, expected an array of integers");
  expect_error([&] { f.get_i32_array("u32s"); },
               "key 'u32s': element 1 = 3000000000 does not fit in i32");
  // A present key of the wrong type is an error even with a fallback.
  expect_error([&] { f.get_uint_or("s", 1); }, "key 's' has type string, expected an integer");
  expect_error([&] { f.get_string_or("u", "x"); }, "key 'u' has type u32, expected string");
  expect_error([&] { f.tensor("blk.0.attn_q.weight"); },
               "m.gguf: missing tensor 'blk.0.attn_q.weight'");
  EXPECT_EQ(f.find_tensor("blk.0.attn_q.weight"), nullptr);
}

TEST(GgufLookup, FormatValue) {
  EXPECT_EQ(format_value(Value::u32(7)), "7");
  EXPECT_EQ(format_value(Value::f32(0.1f)), "0.100000001");
  EXPECT_EQ(format_value(Value::string("a\nb")), "'a\\x0ab'");
  EXPECT_EQ(format_value(Value::i32_array({1, 2, 3}), 2), "[1, 2, ... (3 items)]");
  EXPECT_EQ(format_value(Value::boolean(false)), "false");
}

// ---- malformed files ------------------------------------------------------------------------

TEST(GgufMalformed, BadMagic) {
  expect_rejected(Raw().bytes("GGML").u32(3).u64(0).u64(0).b, "bad magic 'GGML'");
}
TEST(GgufMalformed, TooSmallOrEmpty) {
  expect_rejected(Raw().bytes("GG").b, "file is 2 bytes, too small to be a GGUF file");
  expect_error([] { File::parse(nullptr, 0, "empty.gguf"); }, "empty.gguf: file is 0 bytes");
}
TEST(GgufMalformed, Version1) {
  expect_rejected(Raw().header(0, 0, 1).b, "GGUF version 1 is not supported");
}
TEST(GgufMalformed, Version99) {
  expect_rejected(Raw().header(0, 0, 99).b, "GGUF version 99 is not supported");
}
TEST(GgufMalformed, BigEndian) {
  expect_rejected(Raw().header(0, 0, 0x03000000u).b, "big-endian");
  expect_rejected(Raw().header(0, 0, 0).b, "GGUF version 0 is not supported (only versions 2");
}
TEST(GgufMalformed, TruncatedInHeader) {
  std::vector<uint8_t> b = Raw().header(0, 0).b;
  b.resize(10);
  expect_rejected(b, "unexpected end of file at offset 8 reading the tensor count");
}
TEST(GgufMalformed, TruncatedInKey) {
  // The second key is cut inside its length field.
  std::vector<uint8_t> b = Raw()
                               .header(0, 2)
                               .kv_string("general.name", "a name of twenty byte")
                               .u32(9)  // half of the next key's u64 length
                               .b;
  expect_rejected(b, "key-value pair 1: unexpected end of file at offset 77 reading the key");
}
TEST(GgufMalformed, KeyLengthPastEof) {
  expect_rejected(Raw().header(0, 1).u64(100).bytes("general.name").b,
                  "key-value pair 0: the key length 100 at offset 24 runs past the end");
}
TEST(GgufMalformed, StringLengthPastEof) {
  expect_rejected(Raw().header(0, 1).str("general.name").u32(8).u64(100).bytes("short").b,
                  "key 'general.name': the string length 100 at offset 48 runs past the end");
}
TEST(GgufMalformed, HugeStringLength) {
  expect_rejected(Raw().header(0, 1).str("k").u32(8).u64(1ull << 63).bytes("abc").b,
                  "key 'k': the string length 9223372036854775808 at offset 37");
}
TEST(GgufMalformed, KvCountHuge) {
  expect_rejected(Raw().header(0, 1ull << 62).kv_u32("k", 1).b,
                  "key-value count 4611686018427387904 is impossible");
  expect_rejected(Raw().header(0, ~0ull).b, "key-value count 18446744073709551615 is impossible");
}
TEST(GgufMalformed, TensorCountHuge) {
  expect_rejected(Raw().header(1ull << 40, 0).zeros(64).b,
                  "tensor count 1099511627776 is impossible");
  // Possible for the header, impossible once the metadata is read.
  expect_rejected(Raw().header(2, 1).kv_string("k", std::string(60, 'x')).zeros(40).b,
                  "tensor count 2 is impossible: only 40 bytes follow the metadata");
}
TEST(GgufMalformed, UnknownValueType) {
  expect_rejected(Raw().header(0, 1).str("k").u32(13).u64(0).b,
                  "key 'k': unknown value type 13 at offset 33");
}
TEST(GgufMalformed, UnknownArrayElementType) {
  expect_rejected(Raw().header(0, 1).str("k").u32(9).u32(99).u64(0).b,
                  "key 'k': unknown array element type 99");
}
TEST(GgufMalformed, ArrayCountPastEof) {
  expect_rejected(Raw().header(0, 1).str("k").u32(9).u32(4).u64(1000).zeros(8).b,
                  "key 'k': array of 1000 u32 at offset 37 runs past the end of the file");
  expect_rejected(Raw().header(0, 1).str("k").u32(9).u32(9).u64(1ull << 62).zeros(64).b,
                  "array of 4611686018427387904 array");
}
TEST(GgufMalformed, NestedArraysTooDeep) {
  // kMaxArrayDepth levels load; one more is rejected.
  Writer w;
  w.set("k", nested(kMaxArrayDepth));
  EXPECT_NO_THROW(parse(w.to_bytes()));
  Raw r;
  r.header(0, 1).str("k").u32(9);
  for (int i = 0; i < kMaxArrayDepth; ++i) r.u32(9).u64(1);
  r.u32(0).u64(1).u8(7);
  expect_rejected(r.b, "key 'k': arrays nested deeper than 8 levels");
  // A hostile file nesting far deeper must fail the same way (no stack exhaustion).
  Raw deep;
  deep.header(0, 1).str("k").u32(9);
  for (int i = 0; i < 100000; ++i) deep.u32(9).u64(1);
  expect_rejected(deep.b, "arrays nested deeper than 8 levels");
}
TEST(GgufMalformed, BoolNotZeroOrOne) {
  expect_rejected(Raw().header(0, 1).str("k").u32(7).u8(2).b,
                  "key 'k': bool value 2 at offset 37 is neither 0 nor 1");
}
TEST(GgufMalformed, DuplicateKey) {
  expect_rejected(Raw().header(0, 2).kv_u32("general.name", 1).kv_u32("general.name", 2).b,
                  "duplicate key 'general.name' (pairs 0 and 1)");
}
TEST(GgufMalformed, EmptyKey) {
  expect_rejected(Raw().header(0, 1).kv_u32("", 1).zeros(4).b,
                  "key-value pair 0: empty key at offset 24");
}
TEST(GgufMalformed, DuplicateTensorName) {
  expect_rejected(
      Raw().header(2, 0).tensor("w", {8}, kF32, 0).tensor("w", {8}, kF32, 32).pad(32).zeros(64).b,
      "duplicate tensor name 'w' (tensors 0 and 1)");
}
TEST(GgufMalformed, EmptyTensorName) {
  expect_rejected(Raw().header(1, 0).tensor("", {8}, kF32, 0).pad(32).zeros(32).b,
                  "tensor 0: empty tensor name at offset 24");
}
TEST(GgufMalformed, NDims0) {
  expect_rejected(one_tensor_file({}, kF32, 0, 64), "tensor 'w': n_dims 0 is out of range 1..4");
}
TEST(GgufMalformed, NDims5) {
  expect_rejected(one_tensor_file({1, 1, 1, 1, 1}, kF32, 0, 64),
                  "tensor 'w': n_dims 5 is out of range 1..4");
}
TEST(GgufMalformed, DimZero) {
  expect_rejected(one_tensor_file({4, 0}, kF32, 0, 64), "tensor 'w': ne[1] is 0");
}
TEST(GgufMalformed, DimsProductOverflows) {
  expect_rejected(one_tensor_file({1ull << 32, 1ull << 32}, kF32, 0, 64),
                  "tensor 'w': shape [4294967296, 4294967296] has more than 2^63-1 elements");
  expect_rejected(one_tensor_file({2, 2, 1ull << 61, 3}, kF32, 0, 64),
                  "has more than 2^63-1 elements");
  // Fits in int64 as elements, not as bytes.
  expect_rejected(one_tensor_file({1ull << 62}, kF32, 0, 64),
                  "tensor 'w': shape [4611686018427387904] of f32 has a byte size over 2^64");
}
TEST(GgufMalformed, UnknownTensorType) {
  expect_rejected(one_tensor_file({32}, 4, 0, 64), "tensor 'w': unknown tensor type 4");
  expect_rejected(one_tensor_file({32}, 1000, 0, 64), "tensor 'w': unknown tensor type 1000");
}
TEST(GgufMalformed, NotAMultipleOfTheBlockSize) {
  expect_rejected(one_tensor_file({33}, kQ8_0, 0, 64),
                  "tensor 'w': ne[0] = 33 is not a multiple of the block size 32 of q8_0");
}
TEST(GgufMalformed, MisalignedOffset) {
  expect_rejected(one_tensor_file({8}, kF32, 12, 64),
                  "tensor 'w': offset 12 is not a multiple of the alignment 32");
  expect_rejected(Raw()
                      .header(1, 1)
                      .kv_u32("general.alignment", 64)
                      .tensor("w", {8}, kF32, 32)
                      .pad(64)
                      .zeros(128)
                      .b,
                  "tensor 'w': offset 32 is not a multiple of the alignment 64");
}
TEST(GgufMalformed, TensorDataPastEof) {
  // 16 f32 = 64 bytes, but only 32 follow the directory.
  const std::vector<uint8_t> b = one_tensor_file({16}, kF32, 0, 32);
  expect_rejected(b,
                  "tensor 'w': data at offset 0 (64 bytes from file offset 64) ends at 128, "
                  "past the end of the file (size 96)");
  // The header alone, no data at all.
  expect_rejected(Raw().header(1, 0).tensor("w", {16}, kF32, 0).b, "past the end of the file");
}
TEST(GgufMalformed, OffsetNear2To64) {
  expect_rejected(one_tensor_file({16}, kF32, ~0ull - 31, 64),
                  "tensor 'w': offset 18446744073709551584 + 64 bytes overflows 64 bits");
}
TEST(GgufMalformed, OverlappingTensors) {
  expect_rejected(Raw()
                      .header(2, 0)
                      .tensor("a", {16}, kF32, 32)
                      .tensor("b", {16}, kF32, 0)
                      .pad(32)
                      .zeros(128)
                      .b,
                  "tensors 'b' (data [0, 64)) and 'a' (data [32, 96)) overlap");
}
TEST(GgufMalformed, AlignmentNotAPowerOfTwo) {
  expect_rejected(Raw().header(0, 1).kv_u32("general.alignment", 48).b,
                  "general.alignment 48 is not a power of two");
  expect_rejected(Raw().header(0, 1).kv_u32("general.alignment", 0).b,
                  "general.alignment 0 is not a power of two");
}
// GGUF requires a multiple of 8: F32 (and 8-byte) tensor data is read in place, and 1, 2 or 4
// would leave it misaligned.
TEST(GgufMalformed, AlignmentNotAMultipleOf8) {
  for (uint32_t a : {1u, 2u, 4u})
    expect_rejected(Raw().header(0, 1).kv_u32("general.alignment", a).b,
                    "general.alignment " + std::to_string(a) + " is not a multiple of 8");
  // A tensor at offset 4 with alignment 4: the F32 data would start 4 bytes off 8.
  expect_rejected(Raw()
                      .header(1, 1)
                      .kv_u32("general.alignment", 4)
                      .tensor("w", {4}, kF32, 4)
                      .pad(32)
                      .zeros(32)
                      .b,
                  "general.alignment 4 is not a multiple of 8");
  Writer w;
  expect_error([&] { w.set_alignment(4); }, "general.alignment 4 is not a multiple of 8");
  expect_error([&] { w.set_alignment(1); }, "general.alignment 1 is not a multiple of 8");
  EXPECT_NO_THROW(parse(Raw().header(0, 1).kv_u32("general.alignment", 8).b));
}

// Arrays of 1-byte values: each item becomes a sizeof(Value) Value in memory (~48 bytes), so
// the file size does not bound the memory; the reader caps the parsed metadata instead, before
// allocating, and names the array.
TEST(GgufMalformed, MetadataOverTheMemoryLimitIsRejectedBeforeAllocating) {
  for (uint32_t type : {0u /* u8 */, 1u /* i8 */, 7u /* bool */}) {
    const uint64_t count = kMaxMetadataMemory / sizeof(Value) + 1;
    Raw r;
    r.header(0, 1).str("big").u32(9).u32(type).u64(count).zeros(count);
    expect_rejected(r.b, "key 'big': the array at offset");
    expect_rejected(r.b, "over the limit of " + std::to_string(kMaxMetadataMemory) + " bytes");
  }
  // Strings count their characters.
  const uint64_t len = kMaxMetadataMemory + 1;
  Raw s;
  s.header(0, 1).str("text").u32(8).u64(len).zeros(len);
  expect_rejected(s.b, "key 'text': the string at offset");
}

TEST(GgufMalformed, MetadataUnderTheMemoryLimitParses) {
  const uint64_t count = kMaxMetadataMemory / sizeof(Value) / 8;
  Raw r;
  r.header(0, 1).str("big").u32(9).u32(0).u64(count).zeros(count);
  const File f = parse(r.b);
  EXPECT_EQ(f.get_array("big").items.size(), count);
}

TEST(GgufMalformed, AlignmentOfWrongType) {
  expect_rejected(Raw().header(0, 1).str("general.alignment").u32(10).u64(32).b,
                  "general.alignment has type u64, expected u32");
  expect_rejected(Raw().header(0, 1).kv_string("general.alignment", "32").b,
                  "general.alignment has type string, expected u32");
}
TEST(GgufMalformed, MissingFile) {
  expect_error([] { File::open("/nonexistent-xtile-dir/model.gguf"); },
               "cannot open '/nonexistent-xtile-dir/model.gguf'");
}
TEST(GgufMalformed, HostileNamesAreEscapedInMessages) {
  expect_rejected(Raw().header(0, 2).kv_u32("a\nb\x1b[2J", 1).kv_u32("a\nb\x1b[2J", 1).b,
                  "duplicate key 'a\\x0ab\\x1b[2J'");
}

// Every prefix of a valid file fails cleanly until all tensor data is present.
TEST(GgufMalformed, EveryTruncationFailsCleanly) {
  const std::vector<uint8_t> bytes = rich_writer(tensor_specs()).to_bytes();
  const File full = parse(bytes);
  const TensorInfo& last = full.tensors().back();
  const size_t needed = full.data_offset() + last.offset + last.bytes;
  for (size_t n = 0; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    if (n < needed) {
      EXPECT_THROW(parse(cut), Error) << "prefix of " << n << " bytes";
    } else {
      EXPECT_NO_THROW(parse(cut)) << "prefix of " << n << " bytes";
    }
  }
}

// Any single corrupted byte of the header and directory is either harmless or a clean Error.
TEST(GgufMalformed, EveryByteCorruptionIsValidOrAnError) {
  const std::vector<uint8_t> bytes = rich_writer(tensor_specs()).to_bytes();
  const size_t meta_end = parse(bytes).data_offset();
  size_t rejected = 0;
  for (size_t i = 0; i < meta_end; ++i) {
    for (uint8_t x : {uint8_t{0x00}, uint8_t{0xff}, uint8_t{0x80}, uint8_t{0x01}, uint8_t{0x7f},
                      static_cast<uint8_t>(bytes[i] + 1)}) {
      if (x == bytes[i]) continue;
      std::vector<uint8_t> c = bytes;
      c[i] = x;
      try {
        parse(c);
      } catch (const Error& e) {
        ++rejected;
        EXPECT_EQ(std::string(e.what()).rfind("test.gguf: ", 0), 0u) << e.what();
      }
    }
  }
  EXPECT_GT(rejected, meta_end) << "most corruptions of the directory must be caught";
}

// ---- real files -----------------------------------------------------------------------------

std::vector<std::string> fixture_ggufs() {
  std::vector<std::string> out;
  for (const char* dir : {"models", "tokenizers"}) {
    const std::string d = test::fixture_path(dir);
    if (d.empty()) continue;
    for (const auto& e : std::filesystem::directory_iterator(d))
      if (e.path().extension() == ".gguf") out.push_back(e.path().string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

TEST(GgufFixtures, EveryFixtureOpensAndRewritesLosslessly) {
  XTILE_REQUIRE_FIXTURE(models, "models");
  const std::vector<std::string> files = fixture_ggufs();
  ASSERT_GE(files.size(), 9u);
  for (const std::string& path : files) {
    SCOPED_TRACE(path);
    const File f = File::open(path);
    EXPECT_GE(f.version(), 2u);
    EXPECT_FALSE(f.metadata().empty());
    EXPECT_TRUE(f.has("general.architecture"));
    for (const TensorInfo& t : f.tensors()) {
      EXPECT_GE(t.data, f.mapping()->data() + f.data_offset());
      EXPECT_LE(t.data + t.bytes, f.mapping()->data() + f.file_size());
    }
    // Re-writing keeps every key, value, tensor and byte.
    const std::vector<uint8_t> again = writer_from(f).to_bytes();
    const File g = parse(again, "rewritten");
    EXPECT_TRUE(g.metadata() == f.metadata());
    ASSERT_EQ(g.tensors().size(), f.tensors().size());
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const TensorInfo& a = f.tensors()[i];
      const TensorInfo& b = g.tensors()[i];
      EXPECT_EQ(a.name, b.name);
      EXPECT_EQ(a.type, b.type);
      EXPECT_EQ(a.shape_string(), b.shape_string());
      ASSERT_EQ(a.bytes, b.bytes);
      EXPECT_EQ(std::memcmp(a.data, b.data, a.bytes), 0) << a.name;
    }
  }
}

TEST(GgufFixtures, Stories260K) {
  XTILE_REQUIRE_FIXTURE(path, "models/stories260K.gguf");
  const File f = File::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_FALSE(f.has("general.alignment"));
  EXPECT_EQ(f.alignment(), 32u);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 512u);
  EXPECT_EQ(f.get_uint("llama.embedding_length"), 64u);
  EXPECT_EQ(f.get_uint("llama.block_count"), 5u);
  EXPECT_EQ(f.get_uint("llama.feed_forward_length"), 172u);
  EXPECT_EQ(f.get_uint("llama.attention.head_count"), 8u);
  EXPECT_EQ(f.get_uint("llama.attention.head_count_kv"), 4u);
  const TensorInfo& emb = f.tensor("token_embd.weight");
  EXPECT_EQ(emb.type, GgmlType::F32);
  EXPECT_EQ(emb.n_dims, 2u);
  EXPECT_EQ(emb.ne[0], 64u);
  EXPECT_EQ(emb.ne[1], 512u);
  EXPECT_EQ(emb.bytes, 64u * 512u * 4u);
  EXPECT_EQ(emb.shape_string(), "[64, 512]");
  EXPECT_NE(f.find_tensor("output.weight"), nullptr);
  EXPECT_EQ(f.tensor("blk.0.ffn_down.weight").ne[0], 172u);
  for (const TensorInfo& t : f.tensors()) EXPECT_EQ(t.type, GgmlType::F32) << t.name;
}

TEST(GgufFixtures, VocabLlamaSpmEndsBeforeItsDataSection) {
  XTILE_REQUIRE_FIXTURE(path, "tokenizers/vocab-llama-spm.gguf");
  const File f = File::open(path);
  EXPECT_TRUE(f.tensors().empty());
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 32000u);
  EXPECT_EQ(f.get_f32_array("tokenizer.ggml.scores").size(), 32000u);
  EXPECT_EQ(f.get_i32_array("tokenizer.ggml.token_type").size(), 32000u);
  EXPECT_GT(f.data_offset(), f.file_size()) << "the fixture ends inside the alignment padding";
}

TEST(GgufFixtures, LlamaTinyRandomHasF16) {
  XTILE_REQUIRE_FIXTURE(path, "models/llama-2-tiny-random.gguf");
  const File f = File::open(path);
  bool f16 = false;
  for (const TensorInfo& t : f.tensors()) f16 = f16 || t.type == GgmlType::F16;
  EXPECT_TRUE(f16);
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 32000u);
}

}  // namespace gguf_test
}  // namespace
}  // namespace xtile::gguf
