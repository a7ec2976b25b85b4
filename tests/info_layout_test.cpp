// `xtile info -m` names, for each weight, the packed layout and tier the runtime gives it.
#include <gtest/gtest.h>

#include "model/quantize_model.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace info_layout_test {  // unity batches: CMakeLists.txt

TEST(InfoLayout, ListsPackedLayoutAndTierPerWeight) {
  XTILE_REQUIRE_FIXTURE(in, "models/stories260K.gguf");
  const std::string q8 = test::temp_path("info-stories-q8_0.gguf");
  ThreadPool pool(1);
  quantize_model(in, q8, GgmlType::Q8_0, pool);
  std::string out;
  ASSERT_EQ(test::run_command(test::xtile_binary() + " info --kernels ref -m " + q8, &out), 0)
      << out;
  EXPECT_NE(out.find("packed layout (tier)"), std::string::npos) << out;
  // Q|K|V fused and packed for ref's row layout; ffn_down (K = 172) on the float path.
  const auto line_of = [&](const std::string& name) {
    const size_t at = out.find(name);
    return at == std::string::npos ? std::string() : out.substr(at, out.find('\n', at) - at);
  };
  EXPECT_NE(line_of("blk.0.attn_q.weight").find("q8_0_rows (ref, fused)"), std::string::npos)
      << line_of("blk.0.attn_q.weight");
  EXPECT_NE(line_of("blk.0.ffn_down.weight").find("f32 (float path)"), std::string::npos)
      << line_of("blk.0.ffn_down.weight");
  ASSERT_EQ(test::run_command(test::xtile_binary() + " info --kernels amx-emu -m " + q8, &out), 0);
  EXPECT_NE(line_of("blk.0.attn_output.weight").find("q8_0_x16 (amx-emu)"), std::string::npos)
      << line_of("blk.0.attn_output.weight");
}

}  // namespace info_layout_test
}  // namespace
}  // namespace xtile
