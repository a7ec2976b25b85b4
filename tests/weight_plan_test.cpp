// WeightStore::check_plan, the model fuzzer's last step (fuzz/model_fuzz.cpp): it accepts what
// load() accepts and rejects what load() rejects with the same message, without packing.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "base/error.h"
#include "cpu/thread_pool.h"
#include "gguf/gguf.h"
#include "model/synth.h"
#include "model/weights.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace weight_plan_test {  // unity batches: CMakeLists.txt

std::string synth_file(const std::string& preset, GgmlType type) {
  const std::string path =
      test::temp_path("plan-" + preset + "-" + std::string(ggml_type_name(type)) + ".gguf")
          .string();
  synth::Options o;
  o.preset = preset;
  o.type = type;
  o.layers = 1;
  synth::write_model(o, path);
  return path;
}

std::string load_error(const std::string& path) {
  try {
    ThreadPool pool(1);
    WeightStore::load(path, pool, LoadOptions{});
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string plan_error(const std::string& path) {
  try {
    WeightStore::check_plan(std::make_unique<gguf::File>(gguf::File::open(path)), Tier::ref);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(WeightPlan, AcceptsValidModelsAndPacksNothing) {
  for (const char* preset : {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-qwen3moe"}) {
    const std::string path = synth_file(preset, GgmlType::Q4_0);
    const uint64_t before = repack_count();
    EXPECT_EQ(plan_error(path), "") << preset;
    EXPECT_EQ(repack_count(), before) << preset << ": the plan packed a tensor";
  }
}

// The same file without one tensor, or with one tensor of another shape.
std::string rewritten(const std::string& path, const std::string& drop,
                      const std::string& reshape) {
  const gguf::File f = gguf::File::open(path);
  gguf::Writer w;
  for (const auto& [k, v] : f.metadata()) w.set(k, v);
  for (const gguf::TensorInfo& t : f.tensors()) {
    if (t.name == drop) continue;
    std::vector<uint64_t> ne(t.ne, t.ne + t.n_dims);
    if (t.name == reshape) std::swap(ne[0], ne[1]);  // a transposed matrix: same bytes
    w.add_tensor(t.name, t.type, ne, t.data);
  }
  const std::string out = path + "." + drop + reshape + ".gguf";
  w.write(out);
  return out;
}

TEST(WeightPlan, RejectsWhatLoadRejectsWithTheSameMessage) {
  const std::string path = synth_file("tiny-llama", GgmlType::Q8_0);
  const std::string missing = rewritten(path, "blk.0.attn_k.weight", "");
  EXPECT_NE(plan_error(missing).find("missing tensor 'blk.0.attn_k.weight'"), std::string::npos)
      << plan_error(missing);
  EXPECT_EQ(plan_error(missing), load_error(missing));

  const std::string transposed = rewritten(path, "", "blk.0.ffn_up.weight");
  EXPECT_NE(plan_error(transposed).find("tensor 'blk.0.ffn_up.weight' has shape [256, 128]"),
            std::string::npos)
      << plan_error(transposed);
  EXPECT_EQ(plan_error(transposed), load_error(transposed));

  // The MoE experts are planned too (MoeWeights validates their shapes).
  const std::string moe =
      rewritten(synth_file("tiny-qwen3moe", GgmlType::Q4_0), "blk.0.ffn_down_exps.weight", "");
  EXPECT_NE(plan_error(moe).find("blk.0.ffn_down_exps.weight"), std::string::npos)
      << plan_error(moe);
  EXPECT_EQ(plan_error(moe), load_error(moe));
}

}  // namespace weight_plan_test
}  // namespace
}  // namespace xtile
