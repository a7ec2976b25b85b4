// `xtile quantize`: which tensors are quantized to which type, GGML's rules for their bytes, clear
// errors. (The per-type quantizers and llama-quantize's own files: quantize_types_test.cpp.)
#include "model/quantize_model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/ftype.h"
#include "quant/quant.h"
#include "quant/quantize_types.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace quantize_model_test {  // unity batches: CMakeLists.txt

TEST(QuantizeModel, RulesForWhichTensorsAreQuantized) {
  EXPECT_TRUE(allows_quantization("blk.0.attn_q.weight", 2));
  EXPECT_TRUE(allows_quantization("blk.0.ffn_up_exps.weight", 3));
  EXPECT_TRUE(allows_quantization("blk.0.ffn_down.weight", 2));       // any row length
  EXPECT_FALSE(allows_quantization("blk.0.attn_norm.weight", 1));     // 1-D
  EXPECT_FALSE(allows_quantization("blk.0.attn_q_norm.weight", 2));   // a norm, even 2-D
  EXPECT_FALSE(allows_quantization("blk.0.attn_q.bias", 2));          // not a weight
  EXPECT_FALSE(allows_quantization("blk.0.ffn_gate_inp.weight", 2));  // MoE router
  EXPECT_FALSE(allows_quantization("position_embd.weight", 2));
}

struct StoriesCase {
  const char* ftype;
  bool pure;  // through quantize_model(..., GgmlType, ...), which writes a pure file
};

// The type each stories260K tensor (hidden 64, FFN 172, 5 layers, output.weight present) must
// get, worked out from llama-quantize's rules by hand.
GgmlType stories_type(const StoriesCase& c, const gguf::TensorInfo& s) {
  const std::string f = c.ftype;
  if (!allows_quantization(s.name, s.n_dims)) return s.type;  // norms
  if (s.name.find("ffn_down") != std::string::npos) {
    // K = 172: no 32-element block fits. q4_k_m falls back Q4_K/Q6_K -> Q5_0/Q8_0 -> F16;
    // llama-quantize gives up on a 32-element base type, xtile keeps the source (F32).
    return f == "q4_k_m" && !c.pure ? GgmlType::F16 : s.type;
  }
  const GgmlType base = ftype_by_name(f).base;
  if (c.pure) return base;
  if (f == "q8_0") return GgmlType::Q8_0;
  // The output matrix would be Q6_K, but 64 % 256 != 0 makes it Q8_0.
  if (s.name == "output.weight") return GgmlType::Q8_0;
  if (f == "q4_0") return GgmlType::Q4_0;
  // q4_k_m: Q4_K does not fit 64 either -> Q5_0; attn_v in use_more_bits(i, 5) layers (2 and 4)
  // is Q6_K -> Q8_0.
  if (s.name == "blk.2.attn_v.weight" || s.name == "blk.4.attn_v.weight") return GgmlType::Q8_0;
  return GgmlType::Q5_0;
}

class QuantizeStories : public ::testing::TestWithParam<StoriesCase> {};

TEST_P(QuantizeStories, QuantizesByGgmlRulesAndKeepsTheRest) {
  XTILE_REQUIRE_FIXTURE(in, "models/stories260K.gguf");
  const StoriesCase c = GetParam();
  const Ftype& ftype = ftype_by_name(c.ftype);
  const std::string out =
      test::temp_path(std::string("stories-") + c.ftype + (c.pure ? "-pure" : "") + ".gguf");
  ThreadPool pool(2);
  const QuantizeReport report =
      c.pure ? quantize_model(in, out, ftype.base, pool) : quantize_model(in, out, ftype, pool);
  EXPECT_GT(report.quantized, 0);
  EXPECT_GT(report.kept, 0);
  const gguf::File src = gguf::File::open(in);
  const gguf::File dst = gguf::File::open(out);
  EXPECT_EQ(dst.get_uint("general.file_type"), ftype.file_type);
  EXPECT_EQ(dst.get_uint("general.quantization_version"), 2u);
  EXPECT_EQ(dst.get_string_array("tokenizer.ggml.tokens"),
            src.get_string_array("tokenizer.ggml.tokens"));
  ASSERT_EQ(src.tensors().size(), dst.tensors().size());
  std::map<GgmlType, int> census;
  for (const gguf::TensorInfo& s : src.tensors()) {
    const gguf::TensorInfo& d = dst.tensor(s.name);
    ASSERT_EQ(s.n_dims, d.n_dims) << s.name;
    for (uint32_t i = 0; i < s.n_dims; ++i) EXPECT_EQ(s.ne[i], d.ne[i]) << s.name;
    const GgmlType want = stories_type(c, s);
    ASSERT_EQ(ggml_type_name(d.type), ggml_type_name(want)) << s.name;
    ++census[want];
    if (want == s.type) {  // kept byte for byte
      ASSERT_EQ(s.bytes, d.bytes);
      EXPECT_EQ(0, std::memcmp(s.data, d.data, s.bytes)) << s.name;
      continue;
    }
    // Every row equals the reference conversion of the source row.
    const int64_t k = static_cast<int64_t>(s.ne[0]);
    const int64_t rows = static_cast<int64_t>(s.elements() / s.ne[0]);
    const size_t row_bytes = ggml_row_bytes(want, s.ne[0]);
    std::vector<uint8_t> expect(row_bytes);
    for (int64_t r = 0; r < rows; ++r) {
      const float* x = reinterpret_cast<const float*>(s.data) + r * k;
      quantize_row(want, x, expect.data(), k);
      ASSERT_EQ(0, std::memcmp(expect.data(), d.data + r * row_bytes, row_bytes))
          << s.name << " row " << r;
    }
  }
  EXPECT_EQ(report.types, census);
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizeStories,
                         ::testing::Values(StoriesCase{"q8_0", false}, StoriesCase{"q4_0", false},
                                           StoriesCase{"q4_0", true}, StoriesCase{"q4_k_m", false}),
                         [](const auto& info) {
                           return std::string(info.param.ftype) + (info.param.pure ? "_pure" : "");
                         });

TEST(QuantizeModel, RefusesToRequantize) {
  XTILE_REQUIRE_FIXTURE(in, "models/stories260K.gguf");
  ThreadPool pool(1);
  const std::string q8 = test::temp_path("stories-q8-for-requant.gguf");
  quantize_model(in, q8, GgmlType::Q8_0, pool);
  try {
    quantize_model(q8, test::temp_path("requant.gguf"), GgmlType::Q4_0, pool);
    FAIL() << "requantizing a q8_0 model must be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("already q8_0"), std::string::npos) << e.what();
  }
}

TEST(QuantizeModel, CliRejectsAnUnknownTypeListingTheValidOnes) {
  XTILE_REQUIRE_FIXTURE(in, "models/stories260K.gguf");
  std::string out;
  EXPECT_EQ(test::run_command(test::xtile_binary() + " quantize " + in + " " +
                                  test::temp_path("x.gguf").string() + " q5_k",
                              &out),
            1);
  EXPECT_NE(out.find("'q5_k'"), std::string::npos) << out;
  for (const Ftype& f : ftypes()) EXPECT_NE(out.find(f.name), std::string::npos) << out;
}

TEST(QuantizeModel, CliPrintsTheTypeCensusAndHonoursPure) {
  XTILE_REQUIRE_FIXTURE(in, "models/stories260K.gguf");
  const std::string out = test::temp_path("cli-q4_0.gguf").string();
  std::string log;
  ASSERT_EQ(
      test::run_command(test::xtile_binary() + " quantize " + in + " " + out + " Q4_0 -t 2", &log),
      0)
      << log;
  // 5 layers: 4 quantizable matrices + ffn_gate/up in Q4_0, token_embd too; ffn_down (K = 172)
  // and the norms F32; output.weight Q6_K -> Q8_0 (64 % 256 != 0).
  EXPECT_NE(log.find("tensor types: f32 16, q4_0 31, q8_0 1"), std::string::npos) << log;
  EXPECT_EQ(gguf::File::open(out).tensor("output.weight").type, GgmlType::Q8_0);
  ASSERT_EQ(test::run_command(test::xtile_binary() + " quantize " + in + " " + out + " q4_0 --pure",
                              &log),
            0)
      << log;
  EXPECT_NE(log.find("q4_0 (pure)"), std::string::npos) << log;
  EXPECT_EQ(gguf::File::open(out).tensor("output.weight").type, GgmlType::Q4_0);
}

}  // namespace quantize_model_test
}  // namespace
}  // namespace xtile
