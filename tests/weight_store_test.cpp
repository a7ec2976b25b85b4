// The weight store: config from GGUF metadata, repacking with layout tags, fusion, the float
// path, released pages, embedding rows, and the load errors a user can cause.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <deque>
#include <fstream>
#include <functional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fp16.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "gguf/gguf.h"
#include "kernels/pack/pack.h"
#include "kernels/registry.h"
#include "model/embedding.h"
#include "model/generate.h"
#include "model/session.h"
#include "model/synth.h"
#include "model/weights.h"
#include "quant/quant.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace weight_store_test {  // unity batches: CMakeLists.txt

// A tensor of a model being rewritten: its name, type, dims and bytes, all editable.
struct EditTensor {
  std::string name;
  GgmlType type;
  std::vector<uint64_t> ne;
  std::vector<uint8_t> data;
  bool keep = true;
};

// Copies `src` to a new GGUF, letting `edit_kv` and `edit` change metadata and tensors.
std::string rewrite_model(const std::string& src, const std::string& out_name,
                          const std::function<void(std::string& key, gguf::Value& v)>& edit_kv,
                          const std::function<void(EditTensor&)>& edit) {
  const gguf::File in = gguf::File::open(src);
  gguf::Writer w;
  for (const auto& [key, value] : in.metadata()) {
    std::string k = key;
    gguf::Value v = value;
    if (edit_kv) edit_kv(k, v);
    if (!k.empty()) w.set(k, v);
  }
  static std::deque<EditTensor> keep_alive;  // the writer reads the bytes at write time
  for (const gguf::TensorInfo& t : in.tensors()) {
    EditTensor e{t.name, t.type, {}, std::vector<uint8_t>(t.data, t.data + t.bytes)};
    for (uint32_t d = 0; d < t.n_dims; ++d) e.ne.push_back(t.ne[d]);
    if (edit) edit(e);
    if (!e.keep) continue;
    keep_alive.push_back(std::move(e));
    const EditTensor& k = keep_alive.back();
    w.add_tensor(k.name, k.type, k.ne, k.data.data());
  }
  const std::string path = test::temp_path(out_name).string();
  w.write(path);
  return path;
}

std::vector<float> as_floats(const EditTensor& e) {
  std::vector<float> f(e.data.size() / 4);
  std::memcpy(f.data(), e.data.data(), e.data.size());
  return f;
}

// F32 → Q8_0/Q4_0/F16 by the reference rules (quant.h).
void convert_tensor(EditTensor& e, GgmlType to) {
  const std::vector<float> f = as_floats(e);
  const int64_t k = static_cast<int64_t>(e.ne[0]);
  const int64_t rows = static_cast<int64_t>(f.size()) / k;
  std::vector<uint8_t> out(ggml_row_bytes(to, static_cast<uint64_t>(k)) *
                           static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* dst =
        out.data() + static_cast<size_t>(r) * ggml_row_bytes(to, static_cast<uint64_t>(k));
    const float* x = f.data() + r * k;
    if (to == GgmlType::Q8_0)
      quantize_row_q8_0(x, reinterpret_cast<BlockQ8_0*>(dst), k);
    else if (to == GgmlType::Q4_0)
      quantize_row_q4_0(x, reinterpret_cast<BlockQ4_0*>(dst), k);
    else
      convert_row_f32_to_f16(x, reinterpret_cast<uint16_t*>(dst), k);
  }
  e.type = to;
  e.data = std::move(out);
}

std::string load_error(const std::string& path) {
  ThreadPool pool(1);
  try {
    WeightStore::load(path, pool, LoadOptions{});
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(WeightStoreTest, ReadsTheConfigOfEachArchitecture) {
  XTILE_REQUIRE_FIXTURE(llama, "models/micro-llama.gguf");
  XTILE_REQUIRE_FIXTURE(qwen2, "models/micro-qwen2.gguf");
  XTILE_REQUIRE_FIXTURE(qwen3, "models/micro-qwen3.gguf");
  XTILE_REQUIRE_FIXTURE(stories, "models/stories260K.gguf");
  ThreadPool pool(1);
  const ModelConfig l = WeightStore::load(llama, pool, LoadOptions{})->config();
  EXPECT_EQ(l.arch, Arch::llama);
  EXPECT_EQ(l.n_embd, 64);
  EXPECT_EQ(l.n_layer, 2);
  EXPECT_EQ(l.n_head, 4);
  EXPECT_EQ(l.n_head_kv, 2);
  EXPECT_EQ(l.head_dim, 16);
  EXPECT_EQ(l.n_ff, 160);
  EXPECT_EQ(l.n_vocab, 512);
  EXPECT_EQ(l.n_ctx_train, 512);
  EXPECT_FLOAT_EQ(l.rms_eps, 1e-6f);
  EXPECT_DOUBLE_EQ(l.rope_base, 1e4);
  EXPECT_EQ(l.rope_mode, ops::RopeMode::norm);
  EXPECT_FALSE(l.tied_output);
  EXPECT_FALSE(l.qkv_bias);
  EXPECT_FALSE(l.qk_norm);
  const ModelConfig q2 = WeightStore::load(qwen2, pool, LoadOptions{})->config();
  EXPECT_EQ(q2.arch, Arch::qwen2);
  EXPECT_EQ(q2.rope_mode, ops::RopeMode::neox);
  EXPECT_DOUBLE_EQ(q2.rope_base, 1e6);
  EXPECT_TRUE(q2.qkv_bias);
  const ModelConfig q3 = WeightStore::load(qwen3, pool, LoadOptions{})->config();
  EXPECT_EQ(q3.arch, Arch::qwen3);
  EXPECT_TRUE(q3.qk_norm);
  EXPECT_FALSE(q3.qkv_bias);
  // No key_length, no rope base: head size = 64 / 8, base 10000.
  const ModelConfig s = WeightStore::load(stories, pool, LoadOptions{})->config();
  EXPECT_EQ(s.head_dim, 8);
  EXPECT_EQ(s.n_rot, 8);
  EXPECT_DOUBLE_EQ(s.rope_base, 10000.0);
  EXPECT_EQ(s.n_ff, 172);
  EXPECT_EQ(s.n_ctx_train, 2048);
}

std::string synth_path(const std::string& preset, GgmlType type, uint32_t vocab = 0) {
  const std::string path = test::temp_path(preset + "-" + std::string(ggml_type_name(type)) + "-v" +
                                           std::to_string(vocab) + ".gguf")
                               .string();
  if (!std::ifstream(path).good()) {
    synth::Options o;
    o.preset = preset;
    o.type = type;
    o.vocab_size = vocab;
    synth::write_model(o, path);
  }
  return path;
}

TEST(WeightStoreTest, FusesQkvAndGateUpAndTagsEveryPackedMatrix) {
  const std::string path = synth_path("tiny-llama", GgmlType::Q4_0);
  for (Tier tier : {Tier::ref, Tier::avx2, Tier::avx512, Tier::amx, Tier::amx_emu}) {
    KernelSet ks;
    try {
      if (!cpu_caps().tier_available(tier)) continue;
      ks = select_kernels(tier, GgmlType::Q4_0);
    } catch (const Error&) {
      continue;  // tier without q4_0 kernels yet
    }
    ThreadPool pool(2);
    LoadOptions lo;
    lo.tier = tier;
    auto w = WeightStore::load(path, pool, lo);
    const ModelConfig& c = w->config();
    const LayerWeights& l = w->layer(1);
    ASSERT_EQ(l.qkv.parts.size(), 1u) << tier_name(tier);
    const Matrix& qkv = l.qkv.parts[0];
    EXPECT_EQ(qkv.name, "blk.1.attn_q.weight+blk.1.attn_k.weight+blk.1.attn_v.weight");
    EXPECT_TRUE(qkv.packed);
    EXPECT_EQ(qkv.pm.n, c.q_dim() + 2 * c.kv_dim());
    EXPECT_EQ(qkv.pm.k, c.n_embd);
    EXPECT_EQ(qkv.pm.layout, ks.layout) << tier_name(tier);
    EXPECT_EQ(qkv.pm.bytes, packed_bytes(ks.layout, qkv.pm.n, qkv.pm.k));
    ASSERT_EQ(l.gate_up.parts.size(), 1u);
    EXPECT_EQ(l.gate_up.parts[0].pm.n, 2 * c.n_ff);
    EXPECT_EQ(l.gate_up.parts[0].pm.layout, ks.layout);
    EXPECT_EQ(l.down.parts[0].pm.layout, ks.layout);
    EXPECT_EQ(w->output().parts[0].pm.layout, ks.layout);
    EXPECT_EQ(w->stats().fused_matrices, 2 * 2);
    EXPECT_EQ(w->stats().repacks, 2u * 7u + 1u);

    lo.fuse = false;
    auto separate = WeightStore::load(path, pool, lo);
    EXPECT_EQ(separate->layer(0).qkv.parts.size(), 3u);
    EXPECT_EQ(separate->layer(0).gate_up.parts.size(), 2u);
    EXPECT_EQ(separate->stats().fused_matrices, 0);
  }
}

TEST(WeightStoreTest, MixedTypesFuseOnlyWhatSharesAType) {
  XTILE_REQUIRE_FIXTURE(src, "models/micro-llama.gguf");
  // q, k: Q8_0 (fused), v: Q4_0, gate: F32 (float path), up, down: Q8_0.
  const std::string path = rewrite_model(src, "mixed.gguf", nullptr, [](EditTensor& e) {
    if (e.name.find("attn_q.") != std::string::npos ||
        e.name.find("attn_k.") != std::string::npos || e.name.find("ffn_up") != std::string::npos ||
        e.name.find("ffn_down") != std::string::npos)
      convert_tensor(e, GgmlType::Q8_0);
    if (e.name.find("attn_v.") != std::string::npos) convert_tensor(e, GgmlType::Q4_0);
  });
  ThreadPool pool(2);
  LoadOptions lo;
  lo.tier = Tier::ref;
  auto w = WeightStore::load(path, pool, lo);
  const LayerWeights& l = w->layer(0);
  ASSERT_EQ(l.qkv.parts.size(), 2u);
  EXPECT_EQ(l.qkv.parts[0].source_type, GgmlType::Q8_0);
  EXPECT_EQ(l.qkv.parts[0].n, 64 + 32);
  EXPECT_EQ(l.qkv.parts[1].source_type, GgmlType::Q4_0);
  ASSERT_EQ(l.gate_up.parts.size(), 2u);
  EXPECT_FALSE(l.gate_up.parts[0].packed);
  EXPECT_TRUE(l.gate_up.parts[1].packed);
  EXPECT_EQ(l.qkv.n, 128);
  // The mixed model still runs, and stays close to the F32 model's greedy choice at position 0.
  Session s(*w, pool, SessionOptions{});
  std::vector<float> logits;
  s.eval(std::vector<int32_t>{1, 403, 407}, false, &logits);
  for (float x : logits) ASSERT_TRUE(std::isfinite(x));
}

// Resident bytes of this process's mappings of `path` (/proc/self/smaps "Rss:" lines).
size_t mapped_rss(const std::string& path) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool in_file = false;
  size_t kib = 0;
  while (std::getline(smaps, line)) {
    if (!line.empty() && std::isxdigit(static_cast<unsigned char>(line[0])) &&
        line.find('-') != std::string::npos && line.find(':') > line.find(' ')) {
      in_file = line.size() >= path.size() &&
                line.compare(line.size() - path.size(), path.size(), path) == 0;
    } else if (in_file && line.rfind("Rss:", 0) == 0) {
      kib += std::stoul(line.substr(4));
    }
  }
  return kib * 1024;
}

TEST(WeightStoreTest, RepackedTensorsReleaseTheirMappedPages) {
  // Tied output: token_embd (8192 × 128 q8_0, 1.1 MB) is repacked, then its pages are released.
  const std::string path = synth_path("tiny-qwen3", GgmlType::Q8_0, 8192);
  if (!std::ifstream("/proc/self/smaps").good()) GTEST_SKIP() << "no /proc/self/smaps";
  ThreadPool pool(1);
  auto w = WeightStore::load(path, pool, LoadOptions{});
  const size_t file = w->file().file_size();
  const size_t rss = mapped_rss(path);
  // What may stay: the header and the f32 norms (read in place), and partial pages at tensor
  // boundaries (two per tensor at most).
  EXPECT_LT(rss, file / 4) << "file " << file << " bytes, mapping resident " << rss;
  uint64_t packed = 0;
  for (const auto& p : w->stats().packed) packed += p.bytes;
  EXPECT_GT(packed, file * 3 / 4);
}

TEST(WeightStoreTest, EmbeddingRowsFromX16EqualTheGgufRows) {
  std::mt19937 rng(5);
  const int64_t n = 37, k = 96;  // n not a multiple of 16: the last group is padded
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    std::vector<float> f(static_cast<size_t>(n * k));
    std::normal_distribution<float> dist(0.0f, 1.0f);
    for (float& x : f) x = dist(rng);
    const size_t row_bytes = ggml_row_bytes(type, k);
    std::vector<uint8_t> rows(row_bytes * n);
    for (int64_t r = 0; r < n; ++r) {
      if (type == GgmlType::Q8_0)
        quantize_row_q8_0(f.data() + r * k,
                          reinterpret_cast<BlockQ8_0*>(rows.data() + r * row_bytes), k);
      else
        quantize_row_q4_0(f.data() + r * k,
                          reinterpret_cast<BlockQ4_0*>(rows.data() + r * row_bytes), k);
    }
    for (Layout l : {layout_for(type, Tier::ref), layout_for(type, Tier::avx2)}) {
      std::vector<uint8_t> packed(packed_bytes(l, n, k));
      pack_matrix(l, rows.data(), n, k, packed.data());
      const PackedMatrix pm{type, l, n, k, packed.data(), packed.size()};
      for (int64_t r = 0; r < n; ++r) {
        std::vector<float> a(k), b(k);
        dequantize_packed_row(pm, r, a.data());
        dequantize_gguf_row(type, rows.data(), k, r, b.data());
        ASSERT_EQ(std::memcmp(a.data(), b.data(), k * 4), 0) << layout_name(l) << " row " << r;
      }
    }
  }
}

TEST(WeightStoreTest, F16WeightsAreConvertedOnceExactly) {
  XTILE_REQUIRE_FIXTURE(src, "models/micro-qwen3.gguf");
  // The same values as F16, and as F32 after rounding through F16: identical logits.
  auto is_matrix = [](const EditTensor& e) { return e.ne.size() == 2; };
  const std::string f16 = rewrite_model(src, "f16.gguf", nullptr, [&](EditTensor& e) {
    if (is_matrix(e)) convert_tensor(e, GgmlType::F16);
  });
  const std::string f32 = rewrite_model(src, "f16-as-f32.gguf", nullptr, [&](EditTensor& e) {
    if (!is_matrix(e)) return;
    std::vector<float> f = as_floats(e);
    for (float& x : f) x = fp16_to_fp32(fp32_to_fp16(x));
    std::memcpy(e.data.data(), f.data(), e.data.size());
  });
  ThreadPool pool(2);
  auto a = WeightStore::load(f16, pool, LoadOptions{});
  auto b = WeightStore::load(f32, pool, LoadOptions{});
  EXPECT_EQ(a->stats().converted_tensors, 2 * 7 + 1);  // token_embd is looked up, not converted
  EXPECT_EQ(b->stats().converted_tensors, 0);
  std::vector<float> la, lb;
  Session sa(*a, pool, SessionOptions{});
  Session sb(*b, pool, SessionOptions{});
  const std::vector<int32_t> prompt = {1, 403, 407, 261, 378};
  sa.eval(prompt, true, &la);
  sb.eval(prompt, true, &lb);
  ASSERT_EQ(la.size(), lb.size());
  EXPECT_EQ(std::memcmp(la.data(), lb.data(), la.size() * 4), 0);
}

TEST(WeightStoreTest, LoadsTheF16TinyLlama) {
  XTILE_REQUIRE_FIXTURE(path, "models/llama-2-tiny-random.gguf");
  ThreadPool pool(1);
  auto w = WeightStore::load(path, pool, LoadOptions{});
  EXPECT_EQ(w->config().n_vocab, 32000);
  Session s(*w, pool, SessionOptions{.n_ctx = 32});
  std::vector<float> logits;
  s.eval(std::vector<int32_t>{1, 100, 200}, false, &logits);
  ASSERT_EQ(logits.size(), 32000u);
  for (float x : logits) ASSERT_TRUE(std::isfinite(x));
}

// ---- Errors name the problem ----

TEST(WeightStoreTest, UnknownArchitectureIsNamed) {
  XTILE_REQUIRE_FIXTURE(src, "models/micro-llama.gguf");
  const std::string path = rewrite_model(
      src, "gpt9.gguf",
      [](std::string& k, gguf::Value& v) {
        if (k == "general.architecture") v = gguf::Value::string("gpt9");
      },
      nullptr);
  const std::string e = load_error(path);
  EXPECT_NE(e.find("unsupported architecture 'gpt9'"), std::string::npos) << e;
}

TEST(WeightStoreTest, MissingTensorIsNamed) {
  XTILE_REQUIRE_FIXTURE(src, "models/micro-llama.gguf");
  const std::string path = rewrite_model(src, "missing.gguf", nullptr, [](EditTensor& e) {
    if (e.name == "blk.1.ffn_up.weight") e.keep = false;
  });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("missing tensor 'blk.1.ffn_up.weight'"), std::string::npos) << e;
}

TEST(WeightStoreTest, WrongShapeNamesTensorExpectedAndFound) {
  XTILE_REQUIRE_FIXTURE(src, "models/micro-llama.gguf");
  const std::string path = rewrite_model(src, "shape.gguf", nullptr, [](EditTensor& e) {
    if (e.name == "blk.0.attn_k.weight") {
      e.ne = {64, 16};
      e.data.resize(64 * 16 * 4);
    }
  });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("tensor 'blk.0.attn_k.weight' has shape [64, 16], expected [64, 32]"),
            std::string::npos)
      << e;
}

TEST(WeightStoreTest, UnsupportedTensorTypeIsNamed) {
  XTILE_REQUIRE_FIXTURE(src, "models/micro-llama.gguf");
  // Q8_1 is a GGML type (the activation format of Q4_1 dot products), never a weight xtile runs.
  const std::string path = rewrite_model(src, "q8_1.gguf", nullptr, [](EditTensor& e) {
    if (e.name == "blk.0.ffn_down.weight") {
      e.type = GgmlType::Q8_1;
      e.data.assign(ggml_row_bytes(GgmlType::Q8_1, e.ne[0]) * e.ne[1], 0);
    }
  });
  const std::string e = load_error(path);
  EXPECT_NE(e.find("tensor 'blk.0.ffn_down.weight' has type q8_1"), std::string::npos) << e;
}

TEST(WeightStoreTest, MissingMetadataIsNamed) {
  XTILE_REQUIRE_FIXTURE(src, "models/micro-qwen2.gguf");
  const std::string path = rewrite_model(
      src, "nokey.gguf",
      [](std::string& k, gguf::Value&) {
        if (k == "qwen2.block_count") k.clear();
      },
      nullptr);
  const std::string e = load_error(path);
  EXPECT_NE(e.find("qwen2.block_count"), std::string::npos) << e;
}

// A hostile block_count (a fuzzer found 100663297) must be refused before anything is sized by
// it: the per-layer tables alone would take gigabytes.
TEST(WeightStoreTest, BlockCountBeyondTheTensorsIsNamed) {
  XTILE_REQUIRE_FIXTURE(src, "models/micro-qwen2.gguf");
  const std::string path = rewrite_model(
      src, "layers.gguf",
      [](std::string& k, gguf::Value& v) {
        if (k == "qwen2.block_count") v = gguf::Value::u32(100663297);
      },
      nullptr);
  const std::string e = load_error(path);
  EXPECT_NE(e.find("block_count is 100663297 but the file has no tensor "
                   "'blk.100663296.attn_norm.weight'"),
            std::string::npos)
      << e;
}

}  // namespace weight_store_test
}  // namespace
}  // namespace xtile
