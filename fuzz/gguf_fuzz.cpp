// libFuzzer target for the GGUF reader (build and run: fuzz/run.sh).
//
// Any input must either parse or throw xtile::Error. Anything else is a finding: a crash, a
// sanitizer report, another exception type, a huge allocation (libFuzzer's -rss_limit_mb), or a
// broken invariant checked below. A file that parses is then read completely (every value and
// every tensor byte, so ASan sees any pointer outside the input), queried through every typed
// getter, and written back with the Writer: the writer must accept it, the result must parse to
// the same content, and writing that again must give the same bytes.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"

namespace {

using xtile::gguf::Array;
using xtile::gguf::File;
using xtile::gguf::TensorInfo;
using xtile::gguf::Value;
using xtile::gguf::ValueType;
using xtile::gguf::Writer;

[[noreturn]] void finding(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "gguf fuzz finding: %s %s\n", what, detail.c_str());
  std::abort();
}

volatile uint64_t g_sink;

uint64_t touch(const Value& v, int depth) {
  if (depth > xtile::gguf::kMaxArrayDepth) finding("value nested deeper than the limit");
  uint64_t h = static_cast<uint64_t>(v.type);
  if (const auto* s = std::get_if<std::string>(&v.data)) {
    for (char c : *s) h = h * 31 + static_cast<uint8_t>(c);
  } else if (const auto* a = std::get_if<Array>(&v.data)) {
    for (const Value& item : a->items) {
      if (item.type != a->elem_type) finding("array item of the wrong type");
      h += touch(item, depth + 1);
    }
  } else if (const auto* u = std::get_if<uint64_t>(&v.data)) {
    h += *u;
  }
  return h;
}

// Every typed getter on every key: each either returns or throws xtile::Error.
void query(const File& f, const std::string& key) {
  auto attempt = [](auto&& get) {
    try {
      get();
    } catch (const xtile::Error&) {
    }
  };
  attempt([&] { g_sink = g_sink + f.get_uint(key); });
  attempt([&] { g_sink = g_sink + static_cast<uint64_t>(f.get_int(key)); });
  attempt([&] { g_sink = g_sink + static_cast<uint64_t>(f.get_float(key) != 0); });
  attempt([&] { g_sink = g_sink + f.get_bool(key); });
  attempt([&] { g_sink = g_sink + f.get_string(key).size(); });
  attempt([&] { g_sink = g_sink + f.get_string_array(key).size(); });
  attempt([&] { g_sink = g_sink + f.get_f32_array(key).size(); });
  attempt([&] { g_sink = g_sink + f.get_i32_array(key).size(); });
  g_sink = g_sink + xtile::gguf::format_value(*f.find(key), 4).size();
}

Writer rewrite(const File& f) {
  Writer w;
  for (const auto& [k, v] : f.metadata()) w.set(k, v);
  for (const TensorInfo& t : f.tensors())
    w.add_tensor(t.name, t.type, std::vector<uint64_t>(t.ne, t.ne + t.n_dims), t.data);
  return w;
}

void check(const File& f, const uint8_t* data, size_t size) {
  uint64_t h = 0;
  for (const auto& [k, v] : f.metadata()) {
    if (k.empty() || f.find(k) != &v) finding("key index broken for", k);
    h += touch(v, 0);
    query(f, k);
  }
  if (f.alignment() == 0 || (f.alignment() & (f.alignment() - 1)) != 0)
    finding("alignment not a power of two");
  if (f.alignment() % 8 != 0) finding("alignment not a multiple of 8");
  for (const TensorInfo& t : f.tensors()) {
    if (t.data < data + f.data_offset() || t.bytes > size || t.data + t.bytes > data + size)
      finding("tensor outside the input:", t.name);
    if (t.offset % f.alignment() != 0) finding("misaligned tensor", t.name);
    if (f.find_tensor(t.name) != &t) finding("tensor index broken for", t.name);
    for (uint64_t i = 0; i < t.bytes; ++i) h += t.data[i];
    g_sink = g_sink + t.shape_string().size();
  }
  g_sink = g_sink + h;

  // The writer pads every tensor to the alignment: skip rewrites that would be huge.
  if (static_cast<unsigned __int128>(f.alignment()) * (f.tensors().size() + 1) > (1u << 22)) return;
  std::vector<uint8_t> once, twice;
  try {
    once = rewrite(f).to_bytes();
  } catch (const xtile::Error& e) {
    finding("the writer rejects a file the reader accepts:", e.what());
  }
  try {
    const File g = File::parse(once.data(), once.size(), "rewritten");
    if (g.metadata().size() != f.metadata().size() || g.tensors().size() != f.tensors().size())
      finding("rewrite changed the number of keys or tensors");
    for (size_t i = 0; i < f.tensors().size(); ++i) {
      const TensorInfo& a = f.tensors()[i];
      const TensorInfo& b = g.tensors()[i];
      if (a.name != b.name || a.type != b.type || a.bytes != b.bytes ||
          std::memcmp(a.ne, b.ne, sizeof a.ne) != 0 || std::memcmp(a.data, b.data, a.bytes) != 0)
        finding("rewrite changed tensor", a.name);
    }
    twice = rewrite(g).to_bytes();
  } catch (const xtile::Error& e) {
    finding("the reader rejects what the writer wrote:", e.what());
  }
  // f32 NaNs may be quieted by the first f32->double->f32 trip; after that bytes are stable.
  if (once != twice) finding("writing a rewritten file again changed its bytes");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const File f = File::parse(data, size, "fuzz.gguf");
    check(f, data, size);
  } catch (const xtile::Error& e) {
    if (std::strncmp(e.what(), "fuzz.gguf: ", 11) != 0)
      finding("error message without the file label:", e.what());
  }
  return 0;
}
