// The counts behind `xtile bench --roofline`: int8 ops of a prompt and bytes of weights one
// generated token reads, against figures derived here from the model's shape and GGUF tensors.
#include "model/benchmark.h"

#include <gtest/gtest.h>

#include "base/error.h"
#include "cpu/thread_pool.h"
#include "gguf/gguf.h"
#include "model/synth.h"
#include "model/weights.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace benchmark_test {  // unity batches: CMakeLists.txt

std::string synth_file(const std::string& preset, GgmlType type) {
  const std::string path =
      test::temp_path("bench-" + preset + "-" + std::string(ggml_type_name(type)) + ".gguf")
          .string();
  synth::Options o;
  o.preset = preset;
  o.type = type;
  o.seed = 3;
  o.threads = 1;
  synth::write_model(o, path);
  return path;
}

std::unique_ptr<WeightStore> load(const std::string& path, ThreadPool& pool) {
  LoadOptions lo;
  lo.tier = cpu_caps().tier_available(Tier::avx2) ? Tier::avx2 : Tier::ref;
  return WeightStore::load(path, pool, lo);
}

// A prompt of n tokens: every layer's matrices for every token, the output head once.
TEST(BenchCounts, PromptOpsCountEveryLayerPerTokenAndTheOutputHeadOnce) {
  ThreadPool pool(1);
  const auto w = load(synth_file("tiny-qwen3", GgmlType::Q8_0), pool);
  const ModelConfig& c = w->config();
  const double e = static_cast<double>(c.n_embd), ff = static_cast<double>(c.n_ff);
  const double qkv = static_cast<double>(c.q_dim() + 2 * c.kv_dim()) * e;
  const double per_layer = 2.0 * (qkv + e * static_cast<double>(c.q_dim()) + 3.0 * ff * e);
  const double head = 2.0 * static_cast<double>(c.n_vocab) * e;
  for (int64_t n : {1, 7, 512})
    EXPECT_DOUBLE_EQ(prompt_matmul_ops(*w, n),
                     static_cast<double>(n) * static_cast<double>(c.n_layer) * per_layer + head)
        << n << " tokens";
}

// A generated token with its logits pays every layer and the head: a one-token prompt's ops.
TEST(BenchCounts, TokenOpsAreEveryLayerAndTheHead) {
  ThreadPool pool(1);
  const auto w = load(synth_file("tiny-qwen3", GgmlType::Q8_0), pool);
  EXPECT_DOUBLE_EQ(token_matmul_ops(*w), prompt_matmul_ops(*w, 1));
  EXPECT_LT(prompt_matmul_ops(*w, 8), 8 * token_matmul_ops(*w));  // a prompt's head runs once
}

// tg<N> x<S>: S sequences of one session step together; each repetition times N steps.
TEST(BenchBatched, SequencesGenerateTogetherAtDepth) {
  ThreadPool pool(2);
  const auto w = load(synth_file("tiny-qwen3", GgmlType::Q8_0), pool);
  BenchTest t{0, 3, 5, 4};
  EXPECT_EQ(t.name(), "tg3 x4 @ d5");
  const BenchResult r = run_bench_test(*w, pool, t, 2, 512);
  ASSERT_EQ(r.seconds.size(), 2u);
  EXPECT_GT(r.mean_tps, 0.0);
  BenchTest pp{8, 0, 0, 2};  // a prompt is one sequence's
  EXPECT_THROW(run_bench_test(*w, pool, pp, 1, 512), Error);
}

// Generation in a MoE model reads the router and the n_used selected experts of each layer, not
// all n_expert of them.
TEST(BenchCounts, MoeTokenBytesCountOnlyTheSelectedExperts) {
  ThreadPool pool(1);
  const std::string path = synth_file("tiny-qwen3moe", GgmlType::Q8_0);
  const auto w = load(path, pool);
  const ModelConfig& c = w->config();
  const MoeShape& s = w->moe()->shape();
  ASSERT_LT(s.n_used, s.n_expert);
  gguf::File f = gguf::File::open(path);
  auto bytes = [&](const std::string& name) {
    const gguf::TensorInfo* t = f.find_tensor(name);
    EXPECT_NE(t, nullptr) << name;
    return t ? static_cast<double>(t->bytes) : 0.0;
  };
  // Every matrix of the dense part is Q8_0 with rows a multiple of 16: the x16 layout keeps
  // GGUF's 34 bytes per 32 weights, so packed bytes equal the tensors' bytes.
  // The output head: output.weight, or the tied token embedding.
  double want = bytes(f.find_tensor("output.weight") ? "output.weight" : "token_embd.weight");
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    want += bytes(b + "attn_q.weight") + bytes(b + "attn_k.weight") + bytes(b + "attn_v.weight") +
            bytes(b + "attn_output.weight");
    want += static_cast<double>(s.n_expert * s.n_embd) * sizeof(float);  // router, f32
    const double experts = bytes(b + "ffn_gate_exps.weight") + bytes(b + "ffn_up_exps.weight") +
                           bytes(b + "ffn_down_exps.weight");
    want += experts * static_cast<double>(s.n_used) / static_cast<double>(s.n_expert);
  }
  EXPECT_DOUBLE_EQ(static_cast<double>(weight_bytes_per_token(*w)), want);
}

}  // namespace benchmark_test
}  // namespace
}  // namespace xtile
