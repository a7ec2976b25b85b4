// Synthetic models (src/model/synth.h): the files carry exactly the names, shapes, types and keys
// llama.cpp's converter writes, values are sane, output depends only on the seed, and the
// acceptance case (qwen3-0.6b Q4_0 with the real Qwen2 vocabulary) round-trips byte for byte.
#include "model/synth.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "base/error.h"
#include "base/fp16.h"
#include "cpu/thread_pool.h"
#include "gguf/gguf.h"
#include "model/ftype.h"
#include "quant/quant.h"
#include "quant/weight_terms.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace synth_test {  // unity batches: CMakeLists.txt

struct Expected {
  GgmlType type;
  std::vector<uint64_t> ne;
};

// The tensors convert_hf_to_gguf.py writes, spelled out here independently of synth.cpp.
std::map<std::string, Expected> expected_tensors(const synth::Preset& p, GgmlType w) {
  std::map<std::string, Expected> t;
  const uint64_t h = p.hidden, q = uint64_t{p.n_head} * p.head_dim,
                 kv = uint64_t{p.n_head_kv} * p.head_dim;
  const GgmlType f32 = GgmlType::F32;
  t["token_embd.weight"] = {w, {h, p.vocab}};
  t["output_norm.weight"] = {f32, {h}};
  if (!p.tied) t["output.weight"] = {w, {h, p.vocab}};
  for (uint32_t l = 0; l < p.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    t[b + "attn_norm.weight"] = {f32, {h}};
    t[b + "attn_q.weight"] = {w, {h, q}};
    t[b + "attn_k.weight"] = {w, {h, kv}};
    t[b + "attn_v.weight"] = {w, {h, kv}};
    t[b + "attn_output.weight"] = {w, {q, h}};
    t[b + "ffn_norm.weight"] = {f32, {h}};
    if (p.arch == "qwen2") {
      t[b + "attn_q.bias"] = {f32, {q}};
      t[b + "attn_k.bias"] = {f32, {kv}};
      t[b + "attn_v.bias"] = {f32, {kv}};
    }
    if (p.arch == "qwen3" || p.arch == "qwen3moe") {
      t[b + "attn_q_norm.weight"] = {f32, {p.head_dim}};
      t[b + "attn_k_norm.weight"] = {f32, {p.head_dim}};
    }
    if (p.arch == "qwen3moe") {
      t[b + "ffn_gate_inp.weight"] = {f32, {h, p.n_expert}};
      t[b + "ffn_gate_exps.weight"] = {w, {h, p.expert_ffn, p.n_expert}};
      t[b + "ffn_up_exps.weight"] = {w, {h, p.expert_ffn, p.n_expert}};
      t[b + "ffn_down_exps.weight"] = {w, {p.expert_ffn, h, p.n_expert}};
    } else {
      t[b + "ffn_gate.weight"] = {w, {h, p.ffn}};
      t[b + "ffn_up.weight"] = {w, {h, p.ffn}};
      t[b + "ffn_down.weight"] = {w, {p.ffn, h}};
    }
  }
  return t;
}

void expect_tensors(const gguf::File& f, const synth::Preset& p, GgmlType w) {
  const auto want = expected_tensors(p, w);
  ASSERT_EQ(f.tensors().size(), want.size()) << p.name;
  for (const gguf::TensorInfo& t : f.tensors()) {
    auto it = want.find(t.name);
    ASSERT_NE(it, want.end()) << "unexpected tensor " << t.name;
    EXPECT_EQ(t.type, it->second.type) << t.name;
    ASSERT_EQ(t.n_dims, it->second.ne.size()) << t.name;
    for (uint32_t d = 0; d < t.n_dims; ++d) EXPECT_EQ(t.ne[d], it->second.ne[d]) << t.name;
  }
}

std::vector<float> to_floats(const gguf::TensorInfo& t) {
  const int64_t n = static_cast<int64_t>(t.elements());
  std::vector<float> out(static_cast<size_t>(n));
  switch (t.type) {
    case GgmlType::F32:
      std::memcpy(out.data(), t.data, out.size() * 4);
      break;
    case GgmlType::F16:
      convert_row_f16_to_f32(reinterpret_cast<const uint16_t*>(t.data), out.data(), n);
      break;
    case GgmlType::BF16:
      convert_row_bf16_to_f32(reinterpret_cast<const uint16_t*>(t.data), out.data(), n);
      break;
    case GgmlType::Q8_0:
      dequantize_row_q8_0(reinterpret_cast<const BlockQ8_0*>(t.data), out.data(), n);
      break;
    case GgmlType::Q4_0:
      dequantize_row_q4_0(reinterpret_cast<const BlockQ4_0*>(t.data), out.data(), n);
      break;
    default:
      if (!is_quantized_weight(t.type)) ADD_FAILURE() << "unexpected type for " << t.name;
      dequantize_row(t.type, t.data, n, out.data());
  }
  return out;
}

// Mean and standard deviation in double.
std::pair<double, double> moments(const std::vector<float>& v) {
  double s = 0, s2 = 0;
  for (float x : v) {
    s += x;
    s2 += double{x} * x;
  }
  const double mean = s / static_cast<double>(v.size());
  return {mean, std::sqrt(s2 / static_cast<double>(v.size()) - mean * mean)};
}

const GgmlType kTypes[] = {GgmlType::F32, GgmlType::F16, GgmlType::BF16, GgmlType::Q8_0,
                           GgmlType::Q4_0};
const char* kTinyPresets[] = {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3moe"};

TEST(Synth, TinyPresetsEveryTypeReadBack) {
  for (const char* name : kTinyPresets) {
    for (GgmlType type : kTypes) {
      SCOPED_TRACE(std::string(name) + " " + std::string(ggml_type_name(type)));
      synth::Options o;
      o.preset = name;
      o.type = type;
      o.threads = 2;
      const std::string path = test::temp_path(std::string(name) + ".gguf").string();
      synth::write_model(o, path);
      const gguf::File f = gguf::File::open(path);
      const synth::Preset& p = synth::find_preset(name);
      expect_tensors(f, p, type);

      const std::string a = p.arch + ".";
      EXPECT_EQ(f.get_string("general.architecture"), p.arch);
      EXPECT_NE(f.get_string("general.description").find("RANDOM"), std::string::npos);
      EXPECT_EQ(f.get_uint("general.file_type"), synth::file_type_for(type));
      const bool quantized = type == GgmlType::Q8_0 || type == GgmlType::Q4_0;
      EXPECT_EQ(f.has("general.quantization_version"), quantized);
      EXPECT_FALSE(f.has("general.alignment"));
      EXPECT_EQ(f.get_uint(a + "context_length"), p.context);
      EXPECT_EQ(f.get_uint(a + "embedding_length"), p.hidden);
      EXPECT_EQ(f.get_uint(a + "block_count"), p.layers);
      EXPECT_EQ(f.get_uint(a + "feed_forward_length"), p.ffn);
      EXPECT_EQ(f.get_uint(a + "attention.head_count"), p.n_head);
      EXPECT_EQ(f.get_uint(a + "attention.head_count_kv"), p.n_head_kv);
      EXPECT_EQ(f.get_uint(a + "attention.key_length"), p.head_dim);
      EXPECT_EQ(f.get_uint(a + "attention.value_length"), p.head_dim);
      EXPECT_EQ(f.find(a + "attention.layer_norm_rms_epsilon")->type, gguf::ValueType::F32);
      EXPECT_EQ(f.get_float(a + "attention.layer_norm_rms_epsilon"), double{p.rms_eps});
      EXPECT_EQ(f.find(a + "rope.freq_base")->type, gguf::ValueType::F32);
      EXPECT_EQ(f.get_float(a + "rope.freq_base"), double{p.rope_base});
      EXPECT_EQ(f.get_uint(a + "vocab_size"), p.vocab);
      EXPECT_EQ(f.has(a + "rope.dimension_count"), p.arch == "llama");
      EXPECT_EQ(f.has(a + "expert_count"), p.arch == "qwen3moe");
      if (p.arch == "qwen3moe") {
        EXPECT_EQ(f.get_uint(a + "expert_count"), p.n_expert);
        EXPECT_EQ(f.get_uint(a + "expert_used_count"), p.n_expert_used);
        EXPECT_EQ(f.get_uint(a + "expert_feed_forward_length"), p.expert_ffn);
      }
      EXPECT_EQ(f.get_string("tokenizer.ggml.model"), "gpt2");
      EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), p.vocab);
      EXPECT_EQ(f.get_i32_array("tokenizer.ggml.token_type").size(), p.vocab);

      // Sane values: weights centred with std ~0.02, norms ~1, everything finite.
      for (const gguf::TensorInfo& t : f.tensors()) {
        const std::vector<float> v = to_floats(t);
        for (float x : v) ASSERT_TRUE(std::isfinite(x)) << t.name;
        const auto [mean, sd] = moments(v);
        if (t.name.find("norm") != std::string::npos) {
          EXPECT_NEAR(mean, 1.0, 0.01) << t.name;
        } else if (t.elements() >= 4096) {
          EXPECT_NEAR(mean, 0.0, 0.002) << t.name;
          EXPECT_GT(sd, 0.015) << t.name;
          EXPECT_LT(sd, 0.025) << t.name;
        }
      }
    }
  }
}

TEST(Synth, GeneratedVocabularyIsGpt2ByteLevel) {
  synth::Options o;
  o.preset = "tiny-llama";
  const synth::Plan plan = synth::make_plan(o);
  std::map<std::string, const gguf::Value*> kv;
  for (const auto& [k, v] : plan.metadata) kv[k] = &v;
  ASSERT_TRUE(kv.count("tokenizer.ggml.tokens"));
  const auto& tokens = std::get<gguf::Array>(kv["tokenizer.ggml.tokens"]->data).items;
  ASSERT_EQ(tokens.size(), 512u);
  auto tok = [&](size_t i) { return std::get<std::string>(tokens[i].data); };
  // GPT-2 vocab.json: "!" is 0, byte 0x00 (U+0100 "Ā") is 188, the space "Ġ" is 220.
  EXPECT_EQ(tok(0), "!");
  EXPECT_EQ(tok(188), "\xc4\x80");
  EXPECT_EQ(tok(220), "\xc4\xa0");
  EXPECT_EQ(tok(256), "<|endoftext|>");
  EXPECT_EQ(tok(511), "[PAD511]");
  EXPECT_EQ(kv["tokenizer.ggml.eos_token_id"]->data, (gguf::Value::u32(256).data));
  EXPECT_EQ(kv["tokenizer.ggml.add_bos_token"]->data, (gguf::Value::boolean(true).data));
  EXPECT_TRUE(std::get<gguf::Array>(kv["tokenizer.ggml.merges"]->data).items.empty());
  // Every token is distinct (a tokenizer would reject duplicates).
  std::map<std::string, int> seen;
  for (size_t i = 0; i < tokens.size(); ++i) EXPECT_EQ(seen[tok(i)]++, 0) << tok(i);

  // The same 256 byte tokens, in the same order, as the real Qwen2 vocabulary.
  const std::string qwen = test::fixture_path("tokenizers/vocab-qwen2.gguf");
  if (qwen.empty()) return;
  const std::vector<std::string> real =
      gguf::File::open(qwen).get_string_array("tokenizer.ggml.tokens");
  for (size_t i = 0; i < 256; ++i) EXPECT_EQ(tok(i), real[i]) << i;
}

std::vector<uint8_t> synth_bytes(const synth::Options& o, int threads) {
  ThreadPool pool(threads);
  return synth::make_writer(synth::make_plan(o), &pool).to_bytes();
}

TEST(Synth, DeterministicForASeedWhateverTheThreads) {
  for (GgmlType type : kTypes) {
    SCOPED_TRACE(std::string(ggml_type_name(type)));
    synth::Options o;
    o.preset = "tiny-qwen3moe";
    o.type = type;
    const std::vector<uint8_t> a = synth_bytes(o, 1);
    EXPECT_EQ(a, synth_bytes(o, 2));
    EXPECT_EQ(a, synth_bytes(o, 3));
    o.seed = 43;
    const std::vector<uint8_t> b = synth_bytes(o, 2);
    ASSERT_EQ(a.size(), b.size());
    EXPECT_NE(a, b);
  }
}

// Large tensors are cut into chunks generated in parallel; the bytes must not depend on how
// chunks are spread over threads, and chunks must not repeat each other.
TEST(Synth, ChunkedFillIndependentOfThreads) {
  synth::TensorSpec spec{"big", GgmlType::Q4_0, {4096, 1024}, synth::Init::kWeight};
  std::vector<uint8_t> one(spec.bytes()), many(spec.bytes());
  uint64_t reported = 0;
  synth::fill_tensor(spec, 7, one, nullptr, [&](uint64_t n) { reported += n; });
  EXPECT_EQ(reported, spec.bytes());
  ThreadPool pool(4);
  reported = 0;
  synth::fill_tensor(spec, 7, many, &pool, [&](uint64_t n) { reported += n; });
  EXPECT_EQ(reported, spec.bytes());
  EXPECT_EQ(one, many);
  const size_t half = one.size() / 2;
  EXPECT_NE(0, std::memcmp(one.data(), one.data() + half, half));
}

TEST(Synth, LayersCutKeepsTheSameTensors) {
  synth::Options o;
  o.preset = "tiny-llama";
  o.type = GgmlType::Q8_0;
  const std::string full_path = test::temp_path("full.gguf").string();
  const std::string cut_path = test::temp_path("cut.gguf").string();
  synth::write_model(o, full_path);
  o.layers = 1;
  synth::write_model(o, cut_path);
  const gguf::File full = gguf::File::open(full_path);
  const gguf::File cut = gguf::File::open(cut_path);
  EXPECT_EQ(cut.get_uint("llama.block_count"), 1u);
  EXPECT_EQ(cut.find_tensor("blk.1.attn_q.weight"), nullptr);
  for (const gguf::TensorInfo& t : cut.tensors()) {
    const gguf::TensorInfo& u = full.tensor(t.name);
    ASSERT_EQ(t.bytes, u.bytes);
    EXPECT_EQ(0, std::memcmp(t.data, u.data, t.bytes)) << t.name;
  }
}

TEST(Synth, AlignmentKeyOnlyWhenNotDefault) {
  synth::Options o;
  o.preset = "tiny-qwen2";
  o.alignment = 64;
  const std::string path = test::temp_path("align64.gguf").string();
  synth::write_model(o, path);
  const gguf::File f = gguf::File::open(path);
  EXPECT_EQ(f.get_uint("general.alignment"), 64u);
  EXPECT_EQ(f.alignment(), 64u);
  for (const gguf::TensorInfo& t : f.tensors()) EXPECT_EQ(t.offset % 64, 0u) << t.name;
}

TEST(Synth, FileVocabularyCopiedAndPadded) {
  XTILE_REQUIRE_FIXTURE(spm, "tokenizers/vocab-llama-spm.gguf");
  synth::Options o;
  o.preset = "tiny-llama";
  o.vocab_path = spm;
  // 32000 tokens do not fit the preset's 512: a clear error naming both sizes.
  try {
    synth::make_plan(o);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("32000"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("512"), std::string::npos) << e.what();
  }
  o.vocab_size = 32064;
  o.type = GgmlType::Q4_0;
  const std::string path = test::temp_path("spm.gguf").string();
  synth::write_model(o, path);
  const gguf::File f = gguf::File::open(path);
  const gguf::File v = gguf::File::open(spm);
  EXPECT_EQ(f.tensor("token_embd.weight").ne[1], 32064u);
  EXPECT_EQ(f.get_uint("llama.vocab_size"), 32064u);
  const auto tokens = f.get_string_array("tokenizer.ggml.tokens");
  const auto types = f.get_i32_array("tokenizer.ggml.token_type");
  const auto scores = f.get_f32_array("tokenizer.ggml.scores");
  const auto src_tokens = v.get_string_array("tokenizer.ggml.tokens");
  const auto src_scores = v.get_f32_array("tokenizer.ggml.scores");
  ASSERT_EQ(tokens.size(), 32064u);
  ASSERT_EQ(types.size(), 32064u);
  ASSERT_EQ(scores.size(), 32064u);
  for (size_t i = 0; i < src_tokens.size(); ++i) {
    ASSERT_EQ(tokens[i], src_tokens[i]) << i;
    ASSERT_EQ(scores[i], src_scores[i]) << i;
  }
  EXPECT_EQ(tokens[32000], "[PAD32000]");
  EXPECT_EQ(tokens[32063], "[PAD32063]");
  EXPECT_EQ(types[32063], 5);  // llama.cpp's UNUSED
  EXPECT_EQ(scores[32063], 0.0f);
  // Every other tokenizer key is copied as is.
  for (const auto& [key, value] : v.metadata()) {
    if (!key.starts_with("tokenizer.") || key == "tokenizer.ggml.tokens" ||
        key == "tokenizer.ggml.token_type" || key == "tokenizer.ggml.scores")
      continue;
    ASSERT_TRUE(f.has(key)) << key;
    EXPECT_EQ(*f.find(key), value) << key;
  }
  EXPECT_EQ(f.get_string("general.architecture"), "llama");  // not the vocabulary file's
}

TEST(Synth, UserErrorsAreClear) {
  auto message = [](synth::Options o) -> std::string {
    try {
      synth::make_plan(o);
    } catch (const Error& e) {
      return e.what();
    }
    return "(no error)";
  };
  synth::Options o;
  o.preset = "nope";
  const std::string unknown = message(o);
  EXPECT_NE(unknown.find("'nope'"), std::string::npos) << unknown;
  for (const synth::Preset& p : synth::presets())
    EXPECT_NE(unknown.find(p.name), std::string::npos) << unknown;
  o.preset = "tiny-llama";
  o.layers = 3;
  EXPECT_NE(message(o).find("--layers 3"), std::string::npos) << message(o);
  o.layers = 0;
  o.type = GgmlType::Q2_K;
  EXPECT_NE(message(o).find("q2_K"), std::string::npos) << message(o);
  o.type = GgmlType::F32;
  o.ftype = "q4_k";  // a tensor type, not a file type: the message lists the file types
  EXPECT_NE(message(o).find("q4_k_m"), std::string::npos) << message(o);
  o.ftype = "q4_0";
  o.preset = "tiny-qwen3";  // hidden 128: every row a multiple of 32
  EXPECT_EQ(message(o), "(no error)");
  o.ftype = "q4_k_m";
  o.pure = true;  // a pure Q4_K file needs rows of 256
  EXPECT_NE(message(o).find("not a multiple of the 256 of q4_K"), std::string::npos) << message(o);
  o.ftype.clear();
  o.pure = false;
  o.preset = "tiny-llama";
  o.alignment = 48;
  EXPECT_NE(message(o).find("alignment 48"), std::string::npos) << message(o);
  o.alignment = 32;
  o.vocab_size = 100;  // smaller than the generated byte-level vocabulary
  EXPECT_NE(message(o).find("too small"), std::string::npos) << message(o);
}

// Each quantized type's random blocks dequantize to sane weights: centred, std ~0.02, every
// quant level in use.
TEST(Synth, RandomBlocksOfEveryTypeAreSane) {
  for (GgmlType type :
       {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1, GgmlType::Q5_0, GgmlType::Q5_1,
        GgmlType::IQ4_NL, GgmlType::Q4_K, GgmlType::Q5_K, GgmlType::Q6_K, GgmlType::IQ4_XS}) {
    SCOPED_TRACE(std::string(ggml_type_name(type)));
    ASSERT_TRUE(synth::supported_type(type));
    const synth::TensorSpec spec{"w", type, {4096, 64}, synth::Init::kWeight};
    std::vector<uint8_t> data(spec.bytes());
    synth::fill_tensor(spec, 3, data, nullptr);
    std::vector<float> v(4096 * 64);
    dequantize_row(type, data.data(), static_cast<int64_t>(v.size()), v.data());
    for (float x : v) ASSERT_TRUE(std::isfinite(x));
    const auto [mean, sd] = moments(v);
    EXPECT_NEAR(mean, 0.0, 0.001);
    EXPECT_GT(sd, 0.017);
    EXPECT_LT(sd, 0.023);
    // The integer values of the first blocks span the type's whole range.
    const WeightFormat* f = weight_format(type);
    int lo = 1000, hi = -1000;
    for (int64_t b = 0; b < 64; ++b) {
      BlockTerms t;
      f->terms(data.data(), b, &t);
      for (int8_t q : t.q) {
        lo = std::min<int>(lo, q);
        hi = std::max<int>(hi, q);
      }
    }
    EXPECT_LE(lo, f->q_min + 1);
    EXPECT_EQ(hi, f->q_max);
  }
}

// --type takes llama-quantize's file types and gives their per-tensor types at real shapes.
TEST(Synth, FileTypesGiveLlamaQuantizesTensorTypes) {
  auto plan_types = [](const char* preset, const char* ftype, bool pure = false) {
    synth::Options o;
    o.preset = preset;
    o.ftype = ftype;
    o.pure = pure;
    const synth::Plan plan = synth::make_plan(o);
    std::map<std::string, GgmlType> t;
    for (const synth::TensorSpec& s : plan.tensors) t[s.name] = s.type;
    uint64_t file_type = 0;
    for (const auto& [k, v] : plan.metadata)
      if (k == "general.file_type") file_type = std::get<uint64_t>(v.data);
    EXPECT_EQ(file_type, ftype_by_name(ftype).file_type);
    return t;
  };
  // Qwen3-0.6B (tied): token_embd Q6_K; attn_v and ffn_down Q6_K in the use_more_bits layers.
  const auto q4km = plan_types("qwen3-0.6b", "q4_k_m");
  EXPECT_EQ(q4km.at("token_embd.weight"), GgmlType::Q6_K);
  for (int l = 0; l < 28; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const bool more = l < 3 || l >= 24 || (l - 3) % 3 == 2;
    EXPECT_EQ(q4km.at(b + "attn_v.weight"), more ? GgmlType::Q6_K : GgmlType::Q4_K) << l;
    EXPECT_EQ(q4km.at(b + "ffn_down.weight"), more ? GgmlType::Q6_K : GgmlType::Q4_K) << l;
    EXPECT_EQ(q4km.at(b + "ffn_up.weight"), GgmlType::Q4_K) << l;
    EXPECT_EQ(q4km.at(b + "attn_norm.weight"), GgmlType::F32) << l;
  }
  // Q4_0: only the output matrix (the tied token_embd) is Q6_K; --pure: none.
  const auto q40 = plan_types("qwen3-0.6b", "q4_0");
  EXPECT_EQ(q40.at("token_embd.weight"), GgmlType::Q6_K);
  EXPECT_EQ(q40.at("blk.0.attn_v.weight"), GgmlType::Q4_0);
  EXPECT_EQ(plan_types("qwen3-0.6b", "q4_0", true).at("token_embd.weight"), GgmlType::Q4_0);
  // Qwen3-30B-A3B IQ4_XS: attn_v Q5_K (n_gqa 8), ffn_down_exps Q5_K in layers 0..5, router F32.
  const auto iq4 = plan_types("qwen3-30b-a3b", "iq4_xs");
  EXPECT_EQ(iq4.at("output.weight"), GgmlType::Q6_K);
  EXPECT_EQ(iq4.at("token_embd.weight"), GgmlType::IQ4_XS);
  EXPECT_EQ(iq4.at("blk.9.attn_v.weight"), GgmlType::Q5_K);
  EXPECT_EQ(iq4.at("blk.5.ffn_down_exps.weight"), GgmlType::Q5_K);
  EXPECT_EQ(iq4.at("blk.6.ffn_down_exps.weight"), GgmlType::IQ4_XS);
  EXPECT_EQ(iq4.at("blk.6.ffn_gate_inp.weight"), GgmlType::F32);
  // The public census of unsloth's Qwen3-30B-A3B Q4_K_M: f32 241, q4_K 289, q6_K 49.
  std::map<GgmlType, int> census;
  for (const auto& [name, type] : plan_types("qwen3-30b-a3b", "q4_k_m")) ++census[type];
  EXPECT_EQ(census, (std::map<GgmlType, int>{
                        {GgmlType::F32, 241}, {GgmlType::Q4_K, 289}, {GgmlType::Q6_K, 49}}));
}

// A tiny preset in a K-quant file type: hidden 128 is not a multiple of 256, so llama's
// fallbacks apply (Q4_K -> Q5_0, Q5_K -> Q5_1, Q6_K -> Q8_0); tiny-qwen3moe has 8 experts.
TEST(Synth, TinyPresetInAKQuantFileTypeReadsBack) {
  synth::Options o;
  o.preset = "tiny-qwen3moe";
  o.ftype = "q4_k_m";
  o.threads = 2;
  const std::string path = test::temp_path("tiny-qwen3moe-q4_k_m.gguf").string();
  synth::write_model(o, path);
  const gguf::File f = gguf::File::open(path);
  EXPECT_EQ(f.get_uint("general.file_type"), 15u);
  EXPECT_EQ(f.tensor("token_embd.weight").type, GgmlType::Q5_0);
  EXPECT_EQ(f.tensor("output.weight").type, GgmlType::Q8_0);
  EXPECT_EQ(f.tensor("blk.0.attn_k.weight").type, GgmlType::Q8_0);       // 8 experts
  EXPECT_EQ(f.tensor("blk.0.attn_output.weight").type, GgmlType::Q5_1);  // Q5_K, fallback
  // ffn_down_exps: use_more_bits(l, 2) holds for layer 1 only: Q6_K -> Q8_0, else Q4_K -> Q5_0.
  EXPECT_EQ(f.tensor("blk.0.ffn_down_exps.weight").type, GgmlType::Q5_0);
  EXPECT_EQ(f.tensor("blk.1.ffn_down_exps.weight").type, GgmlType::Q8_0);
  EXPECT_EQ(f.tensor("blk.0.ffn_gate_exps.weight").type, GgmlType::Q5_0);
  EXPECT_EQ(f.tensor("blk.0.ffn_gate_inp.weight").type, GgmlType::F32);
  for (const gguf::TensorInfo& t : f.tensors()) {
    const std::vector<float> v = to_floats(t);
    for (float x : v) ASSERT_TRUE(std::isfinite(x)) << t.name;
    if (t.name.find("norm") != std::string::npos || t.elements() < 4096) continue;
    const auto [mean, sd] = moments(v);
    EXPECT_NEAR(mean, 0.0, 0.002) << t.name;
    EXPECT_GT(sd, 0.015) << t.name;
    EXPECT_LT(sd, 0.025) << t.name;
  }
  // The same bytes whatever the thread count.
  EXPECT_EQ(synth_bytes(o, 1), synth_bytes(o, 3));
}

// The acceptance case: qwen3-0.6b in Q4_0 with the real Qwen2 vocabulary has the real shapes,
// and parsing it then writing its metadata and tensors back through gguf::Writer gives the same
// bytes (so synth writes nothing the reader does not see, and the layout is canonical).
TEST(Synth, Qwen3_0_6B_Q4_0_WithQwen2VocabRoundTripsByteExact) {
  XTILE_REQUIRE_FIXTURE(vocab, "tokenizers/vocab-qwen2.gguf");
  synth::Options o;
  o.preset = "qwen3-0.6b";
  o.type = GgmlType::Q4_0;
  o.vocab_path = vocab;
  o.threads = 2;
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() /
      ("xtile-synth-qwen3-0.6b-" +
       std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + ".gguf");
  struct Remove {
    std::filesystem::path p;
    ~Remove() { std::filesystem::remove(p); }
  } remove{path};
  synth::write_model(o, path.string());

  gguf::File f = gguf::File::open(path.string());
  const synth::Preset& p = synth::find_preset("qwen3-0.6b");
  ASSERT_EQ(p.hidden, 1024u);
  ASSERT_EQ(p.layers, 28u);
  expect_tensors(f, p, GgmlType::Q4_0);
  EXPECT_EQ(f.tensor("token_embd.weight").shape_string(), "[1024, 151936]");
  EXPECT_EQ(f.tensor("blk.27.attn_q.weight").shape_string(), "[1024, 2048]");
  EXPECT_EQ(f.tensor("blk.27.attn_k.weight").shape_string(), "[1024, 1024]");
  EXPECT_EQ(f.tensor("blk.27.attn_output.weight").shape_string(), "[2048, 1024]");
  EXPECT_EQ(f.tensor("blk.27.ffn_down.weight").shape_string(), "[3072, 1024]");
  EXPECT_EQ(f.tensor("blk.0.attn_q_norm.weight").shape_string(), "[128]");
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);  // tied
  EXPECT_EQ(f.get_string("tokenizer.ggml.pre"), "qwen2");
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 151936u);
  EXPECT_TRUE(f.has("tokenizer.ggml.merges"));
  EXPECT_TRUE(f.has("tokenizer.chat_template"));

  gguf::Writer w;
  for (const auto& [key, value] : f.metadata()) {
    if (key == "general.alignment") {
      w.set_alignment(static_cast<uint32_t>(f.get_uint(key)));
    } else {
      w.set(key, value);
    }
  }
  for (const gguf::TensorInfo& t : f.tensors())
    w.add_tensor(t.name, t.type, std::vector<uint64_t>(t.ne, t.ne + t.n_dims), t.data);
  const std::vector<uint8_t> again = w.to_bytes();
  ASSERT_NE(f.mapping(), nullptr);
  ASSERT_EQ(again.size(), f.mapping()->size());
  EXPECT_EQ(0, std::memcmp(again.data(), f.mapping()->data(), again.size()));
}

}  // namespace synth_test
}  // namespace
}  // namespace xtile
