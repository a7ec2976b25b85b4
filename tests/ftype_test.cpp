// llama-quantize's per-tensor type rules (src/model/ftype.h) on real models' tensor lists, checked
// against what llama-quantize's files and its own snapshot test show (../shared/quant-types.md §1).
#include "model/ftype.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "base/error.h"

namespace xtile {
namespace {
namespace ftype_test {  // unity batches: CMakeLists.txt

struct Model {
  ModelShape shape;
  std::vector<TensorDesc> tensors;
};

// The tensors of a dense llama/qwen2/qwen3 model as convert_hf_to_gguf.py writes them (F16
// matrices, F32 norms and biases).
Model dense(const std::string& arch, uint32_t layers, uint64_t hidden, uint64_t ffn, uint32_t heads,
            uint32_t kv_heads, uint64_t head_dim, bool tied) {
  Model m;
  m.shape = {arch, layers, heads, kv_heads, 0};
  const uint64_t q = heads * head_dim, kv = kv_heads * head_dim;
  auto add = [&m](std::string name, uint32_t dims, uint64_t ne0, GgmlType t) {
    m.tensors.push_back({std::move(name), dims, ne0, t});
  };
  const GgmlType f16 = GgmlType::F16, f32 = GgmlType::F32;
  add("token_embd.weight", 2, hidden, f16);
  for (uint32_t l = 0; l < layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", 1, hidden, f32);
    add(b + "attn_q.weight", 2, hidden, f16);
    add(b + "attn_k.weight", 2, hidden, f16);
    add(b + "attn_v.weight", 2, hidden, f16);
    if (arch == "qwen2") {
      add(b + "attn_q.bias", 1, q, f32);
      add(b + "attn_k.bias", 1, kv, f32);
      add(b + "attn_v.bias", 1, kv, f32);
    }
    if (arch == "qwen3") {
      add(b + "attn_q_norm.weight", 1, head_dim, f32);
      add(b + "attn_k_norm.weight", 1, head_dim, f32);
    }
    add(b + "attn_output.weight", 2, q, f16);
    add(b + "ffn_norm.weight", 1, hidden, f32);
    add(b + "ffn_gate.weight", 2, hidden, f16);
    add(b + "ffn_up.weight", 2, hidden, f16);
    add(b + "ffn_down.weight", 2, ffn, f16);
  }
  add("output_norm.weight", 1, hidden, f32);
  if (!tied) add("output.weight", 2, hidden, f16);
  return m;
}

std::map<std::string, GgmlType> types_of(const Model& m, std::string_view ftype,
                                         bool pure = false) {
  TypeRuleOptions o;
  o.pure = pure;
  const std::vector<GgmlType> t = choose_types(ftype_by_name(ftype), m.shape, m.tensors, o);
  std::map<std::string, GgmlType> out;
  for (size_t i = 0; i < t.size(); ++i) out[m.tensors[i].name] = t[i];
  return out;
}

std::map<GgmlType, int> census(const std::map<std::string, GgmlType>& types) {
  std::map<GgmlType, int> c;
  for (const auto& [name, t] : types) ++c[t];
  return c;
}

// The layers whose attn_v and ffn_down are Q6_K in llama's snapshot of Qwen3-0.6B Q4_K_M
// (tests/snapshots/qwen3-0.6b.schema): 0-2, then every third from 5, then 24-27.
const std::set<int> kMoreBits28 = {0, 1, 2, 5, 8, 11, 14, 17, 20, 23, 24, 25, 26, 27};

TEST(Ftype, Qwen3_0_6B_Q4_K_M) {
  const Model m = dense("qwen3", 28, 1024, 3072, 16, 8, 128, /*tied=*/false);
  const auto t = types_of(m, "q4_k_m");
  for (int l = 0; l < 28; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    const GgmlType bumped = kMoreBits28.count(l) ? GgmlType::Q6_K : GgmlType::Q4_K;
    EXPECT_EQ(t.at(b + "attn_v.weight"), bumped) << l;
    EXPECT_EQ(t.at(b + "ffn_down.weight"), bumped) << l;
    EXPECT_EQ(t.at(b + "attn_q.weight"), GgmlType::Q4_K) << l;
    EXPECT_EQ(t.at(b + "attn_q_norm.weight"), GgmlType::F32) << l;
  }
  EXPECT_EQ(t.at("output.weight"), GgmlType::Q6_K);
  EXPECT_EQ(t.at("token_embd.weight"), GgmlType::Q4_K);  // untied: the base type
  // The public census of a Qwen3-0.6B Q4_K_M with output.weight: f32 113, q4_K 169, q6_K 29.
  const auto c = census(t);
  EXPECT_EQ(c.at(GgmlType::F32), 113);
  EXPECT_EQ(c.at(GgmlType::Q4_K), 169);
  EXPECT_EQ(c.at(GgmlType::Q6_K), 29);
}

TEST(Ftype, TiedEmbeddingsTakeTheOutputRule) {
  // unsloth Qwen3-1.7B Q4_K_M (tied): f32 113, q4_K 168, q6_K 29 -- token_embd is Q6_K.
  const Model m = dense("qwen3", 28, 2048, 6144, 16, 8, 128, /*tied=*/true);
  const auto t = types_of(m, "q4_k_m");
  EXPECT_EQ(t.at("token_embd.weight"), GgmlType::Q6_K);
  const auto c = census(t);
  EXPECT_EQ(c.at(GgmlType::Q4_K), 168);
  EXPECT_EQ(c.at(GgmlType::Q6_K), 29);
  // Q4_0 files: a Q6_K output (here the tied token_embd) and nothing else changed; Q8_0 files
  // stay pure.
  EXPECT_EQ(
      census(types_of(m, "q4_0")),
      (std::map<GgmlType, int>{{GgmlType::F32, 113}, {GgmlType::Q4_0, 196}, {GgmlType::Q6_K, 1}}));
  EXPECT_EQ(census(types_of(m, "q8_0")),
            (std::map<GgmlType, int>{{GgmlType::F32, 113}, {GgmlType::Q8_0, 197}}));
}

TEST(Ftype, Iq4XsBumpsTheFirstEighthOfFfnDownAndAttnVOnlyWithGqa4) {
  const Model m = dense("qwen3", 28, 1024, 3072, 16, 8, 128, false);  // n_gqa = 2
  const auto t = types_of(m, "iq4_xs");
  for (int l = 0; l < 28; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    EXPECT_EQ(t.at(b + "ffn_down.weight"), l < 3 ? GgmlType::Q5_K : GgmlType::IQ4_XS) << l;
    EXPECT_EQ(t.at(b + "attn_v.weight"), GgmlType::IQ4_XS) << l;
  }
  EXPECT_EQ(t.at("output.weight"), GgmlType::Q6_K);
  const Model gqa4 = dense("llama", 16, 2048, 8192, 32, 8, 64, true);  // Llama-3.2-1B: n_gqa 4
  const auto u = types_of(gqa4, "iq4_xs");
  EXPECT_EQ(u.at("blk.7.attn_v.weight"), GgmlType::Q5_K);
  EXPECT_EQ(u.at("blk.7.attn_k.weight"), GgmlType::IQ4_XS);
  EXPECT_EQ(u.at("blk.1.ffn_down.weight"), GgmlType::Q5_K);  // 16 / 8 = 2 layers
  EXPECT_EQ(u.at("blk.2.ffn_down.weight"), GgmlType::IQ4_XS);
}

TEST(Ftype, Q4_K_SBumpsTheFirstFourAttnVAndTheFirstEighthOfFfnDown) {
  const Model m = dense("llama", 16, 2048, 8192, 32, 8, 64, true);
  const auto t = types_of(m, "q4_k_s");
  for (int l = 0; l < 16; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    EXPECT_EQ(t.at(b + "attn_v.weight"), l < 4 ? GgmlType::Q5_K : GgmlType::Q4_K) << l;
    EXPECT_EQ(t.at(b + "ffn_down.weight"), l < 2 ? GgmlType::Q5_K : GgmlType::Q4_K) << l;
  }
  // Q5_K_S has no bumps: everything Q5_K but the output matrix.
  const auto c = census(types_of(m, "q5_k_s"));
  EXPECT_EQ(c.at(GgmlType::Q5_K), 16 * 7);
  EXPECT_EQ(c.at(GgmlType::Q6_K), 1);
}

TEST(Ftype, RowsTheBlockDoesNotDivideFallBack) {
  // The public census of a 24-layer qwen2 Q4_K_M (Qwen2.5-0.5B, hidden 896, output.weight
  // present): f32 121, q5_0 133, q8_0 13, q4_K 12, q6_K 12.
  const Model m = dense("qwen2", 24, 896, 4864, 14, 2, 64, false);
  const auto c = census(types_of(m, "q4_k_m"));
  EXPECT_EQ(c, (std::map<GgmlType, int>{{GgmlType::F32, 121},
                                        {GgmlType::Q5_0, 133},
                                        {GgmlType::Q4_K, 12},
                                        {GgmlType::Q6_K, 12},
                                        {GgmlType::Q8_0, 13}}));
  // Q5_K falls back to Q5_1, IQ4_XS to IQ4_NL, Q6_K to Q8_0.
  const auto q5 = types_of(m, "q5_k_m");
  EXPECT_EQ(q5.at("blk.3.attn_q.weight"), GgmlType::Q5_1);
  EXPECT_EQ(q5.at("blk.0.attn_v.weight"), GgmlType::Q8_0);
  EXPECT_EQ(types_of(m, "iq4_xs").at("blk.3.attn_q.weight"), GgmlType::IQ4_NL);
  // A row that no 32-block divides: F16 after a K fallback; for a 32-element base type llama
  // gives up, xtile keeps the source type.
  Model odd = dense("llama", 4, 64, 172, 8, 4, 8, false);
  EXPECT_EQ(types_of(odd, "q4_k_m").at("blk.0.ffn_down.weight"), GgmlType::F16);
  EXPECT_EQ(types_of(odd, "q4_0").at("blk.0.ffn_down.weight"), GgmlType::F16);  // the source
  EXPECT_EQ(types_of(odd, "q4_0").at("output.weight"), GgmlType::Q8_0);         // 64 % 256 != 0
}

TEST(Ftype, EightExpertMoeRules) {
  // Mixtral-style rules fire for exactly 8 experts: attn_k/attn_v Q8_0, attn_output Q5_K in
  // K_S/K_M/IQ4 files; ffn_down_exps reads its layer from the name.
  Model m;
  m.shape = {"qwen3moe", 8, 4, 2, 8};
  for (uint32_t l = 0; l < 8; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    for (const char* n : {"attn_q", "attn_k", "attn_v", "attn_output"})
      m.tensors.push_back({b + n + ".weight", 2, 256, GgmlType::F16});
    m.tensors.push_back({b + "ffn_gate_inp.weight", 2, 256, GgmlType::F32});
    for (const char* n : {"ffn_gate_exps", "ffn_up_exps", "ffn_down_exps"})
      m.tensors.push_back({b + n + ".weight", 3, 256, GgmlType::F16});
  }
  m.tensors.push_back({"output.weight", 2, 256, GgmlType::F16});
  const auto t = types_of(m, "q4_k_m");
  EXPECT_EQ(t.at("blk.0.attn_k.weight"), GgmlType::Q8_0);
  EXPECT_EQ(t.at("blk.0.attn_v.weight"), GgmlType::Q8_0);
  EXPECT_EQ(t.at("blk.0.attn_output.weight"), GgmlType::Q5_K);
  EXPECT_EQ(t.at("blk.0.ffn_gate_inp.weight"), GgmlType::F32);
  for (int l = 0; l < 8; ++l)  // use_more_bits(l, 8): 0, 3, 6, 7
    EXPECT_EQ(t.at("blk." + std::to_string(l) + ".ffn_down_exps.weight"),
              (l == 0 || l == 3 || l == 6 || l == 7) ? GgmlType::Q6_K : GgmlType::Q4_K)
        << l;
  EXPECT_EQ(types_of(m, "q5_k_m").at("blk.0.attn_output.weight"), GgmlType::Q5_K);
  EXPECT_EQ(types_of(m, "q4_0").at("blk.0.attn_output.weight"), GgmlType::Q4_0);
  EXPECT_EQ(types_of(m, "q4_0").at("blk.0.attn_v.weight"), GgmlType::Q8_0);
  // 128 experts (Qwen3-30B-A3B): none of this, but IQ4_XS attn_v is Q5_K for n_gqa 8.
  m.shape = {"qwen3moe", 8, 32, 4, 128};
  const auto u = types_of(m, "iq4_xs");
  EXPECT_EQ(u.at("blk.0.attn_k.weight"), GgmlType::IQ4_XS);
  EXPECT_EQ(u.at("blk.0.attn_v.weight"), GgmlType::Q5_K);
  EXPECT_EQ(u.at("blk.0.attn_output.weight"), GgmlType::IQ4_XS);
  EXPECT_EQ(u.at("blk.0.ffn_down_exps.weight"), GgmlType::Q5_K);  // first eighth, no imatrix
  EXPECT_EQ(u.at("blk.1.ffn_down_exps.weight"), GgmlType::IQ4_XS);
  // A MoE tensor without a layer in its name is an error naming it.
  m.tensors.push_back({"ffn_down_exps.weight", 3, 256, GgmlType::F16});
  EXPECT_THROW(types_of(m, "iq4_xs"), Error);
}

TEST(Ftype, SeventyBLlamaAttnVIsQ5_K) {
  const Model m = dense("llama", 80, 8192, 28672, 64, 8, 128, false);
  const auto t = types_of(m, "q4_k_m");
  EXPECT_EQ(t.at("blk.13.attn_v.weight"), GgmlType::Q5_K);  // Q4_K bumped
  EXPECT_EQ(t.at("blk.12.attn_v.weight"), GgmlType::Q6_K);  // use_more_bits(12, 80) wins
  EXPECT_EQ(t.at("blk.13.ffn_down.weight"), GgmlType::Q4_K);
  EXPECT_EQ(types_of(m, "q4_k_s").at("blk.13.attn_v.weight"), GgmlType::Q5_K);
  // Not for 80 layers without GQA (LLaMA-65B) nor for qwen3.
  EXPECT_EQ(types_of(dense("llama", 80, 8192, 22016, 64, 64, 128, false), "q4_k_m")
                .at("blk.13.attn_v.weight"),
            GgmlType::Q4_K);
  EXPECT_EQ(types_of(dense("qwen3", 80, 1024, 3072, 16, 8, 128, false), "q4_k_m")
                .at("blk.13.attn_v.weight"),
            GgmlType::Q4_K);
}

TEST(Ftype, AttnVCounterFollowsLlamasOrderNotTheFiles) {
  // The same model listed in reverse gets the same types.
  Model m = dense("qwen3", 28, 1024, 3072, 16, 8, 128, false);
  const auto forward = types_of(m, "q4_k_m");
  std::reverse(m.tensors.begin(), m.tensors.end());
  EXPECT_EQ(types_of(m, "q4_k_m"), forward);
}

TEST(Ftype, PureGivesEveryWeightTheBaseType) {
  const Model m = dense("qwen3", 28, 1024, 3072, 16, 8, 128, true);
  const auto c = census(types_of(m, "q4_k_m", /*pure=*/true));
  EXPECT_EQ(c, (std::map<GgmlType, int>{{GgmlType::F32, 113}, {GgmlType::Q4_K, 197}}));
}

TEST(Ftype, NamesAndErrors) {
  EXPECT_EQ(ftype_by_name("Q4_K_M").file_type, 15u);
  EXPECT_EQ(ftype_by_name("iq4_xs").base, GgmlType::IQ4_XS);
  EXPECT_EQ(ftype_for_type(GgmlType::Q4_0)->name, "q4_0");
  EXPECT_EQ(ftype_for_type(GgmlType::Q2_K), nullptr);
  try {
    ftype_by_name("q4_k");
    FAIL() << "q4_k is a tensor type, not a file type";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'q4_k'"), std::string::npos) << msg;
    for (const Ftype& f : ftypes()) EXPECT_NE(msg.find(f.name), std::string::npos) << msg;
  }
}

}  // namespace ftype_test
}  // namespace
}  // namespace xtile
