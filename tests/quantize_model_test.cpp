// `xtile quantize`: which tensors are quantized, GGML's rules for their bytes, clear errors.
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "base/error.h"
#include "gguf/gguf.h"
#include "model/quantize_model.h"
#include "quant/quant.h"
#include "test_util.h"

namespace xtile {
namespace {

TEST(QuantizeModel, RulesForWhichTensorsAreQuantized) {
  EXPECT_TRUE(should_quantize("blk.0.attn_q.weight", 2, 64));
  EXPECT_TRUE(should_quantize("blk.0.ffn_up_exps.weight", 3, 2048));
  EXPECT_FALSE(should_quantize("blk.0.attn_norm.weight", 1, 64));     // 1-D
  EXPECT_FALSE(should_quantize("blk.0.ffn_down.weight", 2, 172));     // K % 32 != 0
  EXPECT_FALSE(should_quantize("blk.0.attn_q.bias", 2, 64));          // not a weight
  EXPECT_FALSE(should_quantize("blk.0.ffn_gate_inp.weight", 2, 64));  // MoE router
}

class QuantizeStories : public ::testing::TestWithParam<GgmlType> {};

TEST_P(QuantizeStories, QuantizesByGgmlRulesAndKeepsTheRest) {
  XTILE_REQUIRE_FIXTURE(in, "models/stories260K.gguf");
  const GgmlType target = GetParam();
  const std::string out =
      test::temp_path(std::string("stories-") + std::string(ggml_type_name(target)) + ".gguf");
  ThreadPool pool(2);
  const QuantizeReport report = quantize_model(in, out, target, pool);
  EXPECT_GT(report.quantized, 0);
  EXPECT_GT(report.kept, 0);
  const gguf::File src = gguf::File::open(in);
  const gguf::File dst = gguf::File::open(out);
  EXPECT_EQ(dst.get_uint("general.file_type"), target == GgmlType::Q8_0 ? 7u : 2u);
  EXPECT_EQ(dst.get_string_array("tokenizer.ggml.tokens"),
            src.get_string_array("tokenizer.ggml.tokens"));
  ASSERT_EQ(src.tensors().size(), dst.tensors().size());
  for (const gguf::TensorInfo& s : src.tensors()) {
    const gguf::TensorInfo& d = dst.tensor(s.name);
    ASSERT_EQ(s.n_dims, d.n_dims) << s.name;
    for (uint32_t i = 0; i < s.n_dims; ++i) EXPECT_EQ(s.ne[i], d.ne[i]) << s.name;
    const bool quantized = should_quantize(s.name, s.n_dims, s.ne[0]);
    if (!quantized) {
      // K = 172 (ffn_down) and the norms stay F32, byte for byte.
      EXPECT_EQ(d.type, s.type) << s.name;
      ASSERT_EQ(s.bytes, d.bytes);
      EXPECT_EQ(0, std::memcmp(s.data, d.data, s.bytes)) << s.name;
      continue;
    }
    ASSERT_EQ(d.type, target) << s.name;
    // Every row equals the reference quantization of the source row.
    const int64_t k = static_cast<int64_t>(s.ne[0]);
    const int64_t rows = static_cast<int64_t>(s.elements() / s.ne[0]);
    const size_t row_bytes = ggml_row_bytes(target, s.ne[0]);
    std::vector<uint8_t> expect(row_bytes);
    for (int64_t r = 0; r < rows; ++r) {
      const float* x = reinterpret_cast<const float*>(s.data) + r * k;
      if (target == GgmlType::Q8_0)
        quantize_row_q8_0(x, reinterpret_cast<BlockQ8_0*>(expect.data()), k);
      else
        quantize_row_q4_0(x, reinterpret_cast<BlockQ4_0*>(expect.data()), k);
      ASSERT_EQ(0, std::memcmp(expect.data(), d.data + r * row_bytes, row_bytes))
          << s.name << " row " << r;
    }
  }
  EXPECT_NE(dst.tensor("blk.0.ffn_down.weight").type, target);  // K = 172
}

INSTANTIATE_TEST_SUITE_P(Types, QuantizeStories, ::testing::Values(GgmlType::Q8_0, GgmlType::Q4_0),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

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

TEST(QuantizeModel, CliRejectsAnUnknownType) {
  XTILE_REQUIRE_FIXTURE(in, "models/stories260K.gguf");
  std::string out;
  EXPECT_EQ(test::run_command(test::xtile_binary() + " quantize " + in + " " +
                                  test::temp_path("x.gguf").string() + " q5_k",
                              &out),
            1);
  EXPECT_NE(out.find("q5_k"), std::string::npos) << out;
}

}  // namespace
}  // namespace xtile
