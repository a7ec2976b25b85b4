// Writes small valid GGUF files into a directory: the fuzzer's seed corpus (fuzz/run.sh adds
// the fixture files, cut to their first 64 KiB). Usage: xtile_gguf_seeds <dir>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"

using xtile::GgmlType;
using xtile::gguf::Value;
using xtile::gguf::ValueType;
using xtile::gguf::Writer;

namespace {

void save(const std::string& dir, const std::string& name, const Writer& w, int version = 3) {
  std::vector<uint8_t> b = w.to_bytes();
  b[4] = static_cast<uint8_t>(version);
  std::ofstream out(dir + "/" + name + ".gguf", std::ios::binary);
  out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!out) xtile::fail("cannot write seed '", dir, "/", name, ".gguf'");
}

std::vector<uint8_t> bytes_of(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(seed + i * 37);
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s <seed-dir>\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    save(dir, "empty", Writer());

    Writer scalars;
    scalars.set("general.architecture", Value::string("llama"));
    scalars.set("u8", Value::u8(1));
    scalars.set("i8", Value::i8(-1));
    scalars.set("u16", Value::u16(2));
    scalars.set("i16", Value::i16(-2));
    scalars.set("u32", Value::u32(3));
    scalars.set("i32", Value::i32(-3));
    scalars.set("u64", Value::u64(4));
    scalars.set("i64", Value::i64(-4));
    scalars.set("f32", Value::f32(0.5f));
    scalars.set("f64", Value::f64(0.25));
    scalars.set("bool", Value::boolean(true));
    scalars.set("str", Value::string("s\xc3\xa9"));
    save(dir, "scalars", scalars);
    save(dir, "scalars-v2", scalars, 2);

    Writer arrays;
    arrays.set("tokens", Value::string_array({"<unk>", "<s>", "</s>", "a", ""}));
    arrays.set("scores", Value::f32_array({0, -1, -2, -3.5f}));
    arrays.set("types", Value::i32_array({2, 3, 3, 1}));
    arrays.set("empty", Value::array(ValueType::U8, {}));
    arrays.set("nested",
               Value::array(ValueType::ARRAY, {Value::i32_array({1}), Value::string_array({"x"})}));
    save(dir, "arrays", arrays);

    const std::vector<uint8_t> d = bytes_of(1024, 3);
    Writer tensors;
    tensors.set("general.architecture", Value::string("llama"));
    tensors.add_tensor("token_embd.weight", GgmlType::F32, {4, 3}, d.data());
    tensors.add_tensor("blk.0.attn_q.weight", GgmlType::Q8_0, {32, 2}, d.data());
    tensors.add_tensor("blk.0.ffn_up.weight", GgmlType::Q4_0, {64, 1, 2}, d.data());
    tensors.add_tensor("output_norm.weight", GgmlType::F16, {4}, d.data());
    tensors.add_tensor("x.bf16", GgmlType::BF16, {2, 1, 1, 2}, d.data());
    save(dir, "tensors", tensors);

    Writer aligned;
    aligned.set_alignment(64);
    aligned.add_tensor("a", GgmlType::F32, {3}, d.data());
    aligned.add_tensor("b", GgmlType::Q4_K, {256}, d.data());
    save(dir, "aligned64", aligned);
  } catch (const xtile::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 1;
  }
  return 0;
}
