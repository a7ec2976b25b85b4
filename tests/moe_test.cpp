// Mixture-of-experts (arch qwen3moe): routing against a plain scalar reference, the expert FFN
// against a float64 reference of the formula, bit-exactness of the packed experts across tiers,
// thread counts and batch splits, and whole models (fixture micro-qwen3moe, synthetic
// tiny-qwen3moe and a 2-layer cut of qwen3-30b-a3b).
#include "model/moe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "base/error.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "gguf/gguf.h"
#include "kernels/registry.h"
#include "model/embedding.h"
#include "model/generate.h"
#include "model/session.h"
#include "model/synth.h"
#include "model/weights.h"
#include "ops/ops.h"
#include "kernel_test_util.h"
#include "model_test_util.h"
#include "test_util.h"

namespace xtile {
namespace {

// ---- Routing ----

struct RefRoute {
  std::vector<int32_t> experts;  // ascending index
  std::vector<float> weights;
};

// The routing rule written plainly, in float: softmax with sequential sums, top-k by a stable
// sort on probability (equal probabilities keep the lower index first), the chosen experts in
// index order, weights renormalized over them.
RefRoute ref_route(const std::vector<float>& logits, int64_t k) {
  const size_t n = logits.size();
  float max = logits[0];
  for (float v : logits) max = std::max(max, v);
  std::vector<float> p(n);
  float sum = 0.0f;
  for (size_t i = 0; i < n; ++i) sum += p[i] = std::exp(logits[i] - max);
  for (float& v : p) v /= sum;
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return p[a] > p[b]; });
  RefRoute r;
  r.experts.assign(order.begin(), order.begin() + k);
  std::sort(r.experts.begin(), r.experts.end());
  float chosen = 0.0f;
  for (int32_t e : r.experts) chosen += p[e];
  for (int32_t e : r.experts) r.weights.push_back(p[e] / chosen);
  return r;
}

RefRoute route(std::vector<float> logits, int64_t k) {
  RefRoute r;
  r.experts.resize(k);
  r.weights.resize(k);
  moe_route_logits(logits.data(), static_cast<int64_t>(logits.size()), k, r.experts.data(),
                   r.weights.data());
  return r;
}

TEST(MoeRouting, MatchesTheScalarReference) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  for (auto [n, k] : {std::pair<int64_t, int64_t>{8, 2}, {8, 1}, {8, 8}, {128, 8}, {64, 4}}) {
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<float> logits(n);
      for (float& v : logits) v = normal(rng);
      const RefRoute want = ref_route(logits, k);
      const RefRoute got = route(logits, k);
      ASSERT_EQ(got.experts, want.experts) << n << " experts, k " << k << ", trial " << trial;
      float sum = 0.0f;
      for (int64_t j = 0; j < k; ++j) {
        EXPECT_NEAR(got.weights[j], want.weights[j], 1e-6f * want.weights[j] + 1e-12f);
        sum += got.weights[j];
      }
      EXPECT_NEAR(sum, 1.0f, 1e-6f);
    }
  }
}

TEST(MoeRouting, TiesTakeTheLowerIndexAndTheOrderIsByIndex) {
  // Experts 1, 2, 4 tie for first: k = 2 takes 1 and 2, with equal weights.
  RefRoute r = route({1.0f, 3.0f, 3.0f, 0.0f, 3.0f}, 2);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(r.weights[0], 0.5f);
  EXPECT_EQ(r.weights[1], 0.5f);
  EXPECT_EQ(route({1.0f, 3.0f, 3.0f, 0.0f, 3.0f}, 1).experts, (std::vector<int32_t>{1}));
  // All equal: the first k.
  EXPECT_EQ(route(std::vector<float>(16, 0.25f), 4).experts, (std::vector<int32_t>{0, 1, 2, 3}));
  // The best expert has the higher index: the result is still in index order, weights with it.
  r = route({0.0f, 1.0f, -5.0f, 4.0f}, 2);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{1, 3}));
  EXPECT_GT(r.weights[1], r.weights[0]);
  EXPECT_NEAR(r.weights[1], 1.0 / (1.0 + std::exp(-3.0)), 1e-6);
  // k = 1: weight exactly 1.
  r = route({0.5f, -1.0f, 2.0f}, 1);
  EXPECT_EQ(r.experts, (std::vector<int32_t>{2}));
  EXPECT_EQ(r.weights[0], 1.0f);
}

TEST(MoeRouting, RowRoutingIsTheRouterDotThenTheRule) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const MoeShape shape{64, 8, 2, 32};
  std::vector<float> router(64 * 8), h(64), scratch(8);
  for (float& v : router) v = normal(rng);
  for (float& v : h) v = normal(rng);
  std::vector<float> logits(8);
  for (int e = 0; e < 8; ++e) logits[e] = ops::dot(router.data() + e * 64, h.data(), 64);
  const RefRoute want = route(logits, 2);
  RefRoute got{std::vector<int32_t>(2), std::vector<float>(2)};
  moe_route_row(router.data(), h.data(), shape, scratch.data(), got.experts.data(),
                got.weights.data());
  EXPECT_EQ(got.experts, want.experts);
  EXPECT_EQ(std::memcmp(got.weights.data(), want.weights.data(), 8), 0);
}

// ---- The expert FFN of one layer, outside a model ----

MoeShape shape_of(const gguf::File& f) {
  const std::string a = f.get_string("general.architecture") + ".";
  return MoeShape{static_cast<int64_t>(f.get_uint(a + "embedding_length")),
                  static_cast<int64_t>(f.get_uint(a + "expert_count")),
                  static_cast<int64_t>(f.get_uint(a + "expert_used_count")),
                  static_cast<int64_t>(f.get_uint(a + "expert_feed_forward_length"))};
}

// Expert x's row r of a 3-D expert tensor, dequantized from the GGUF bytes.
std::vector<double> expert_row(const gguf::TensorInfo& t, int64_t x, int64_t r) {
  const int64_t k = static_cast<int64_t>(t.ne[0]), n = static_cast<int64_t>(t.ne[1]);
  std::vector<float> f(static_cast<size_t>(k));
  dequantize_gguf_row(t.type, t.data, k, x * n + r, f.data());
  return std::vector<double>(f.begin(), f.end());
}

// The MoE FFN of one row in float64 from the GGUF tensors of layer l, with the routing given
// (the float routing's choice; its weights are recomputed in double).
std::vector<double> ref_ffn(const gguf::File& f, int64_t l, const MoeShape& s, const float* h,
                            const int32_t* experts) {
  const std::string b = "blk." + std::to_string(l) + ".";
  const gguf::TensorInfo& router = f.tensor(b + "ffn_gate_inp.weight");
  const gguf::TensorInfo& gate = f.tensor(b + "ffn_gate_exps.weight");
  const gguf::TensorInfo& up = f.tensor(b + "ffn_up_exps.weight");
  const gguf::TensorInfo& down = f.tensor(b + "ffn_down_exps.weight");
  std::vector<double> logits(static_cast<size_t>(s.n_expert));
  for (int64_t e = 0; e < s.n_expert; ++e) {
    std::vector<float> w(static_cast<size_t>(s.n_embd));
    dequantize_gguf_row(router.type, router.data, s.n_embd, e, w.data());
    for (int64_t i = 0; i < s.n_embd; ++i) logits[e] += double{w[i]} * h[i];
  }
  double chosen = 0;
  for (int64_t j = 0; j < s.n_used; ++j) chosen += std::exp(logits[experts[j]]);
  std::vector<double> out(static_cast<size_t>(s.n_embd));
  for (int64_t j = 0; j < s.n_used; ++j) {
    const int32_t x = experts[j];
    const double w = std::exp(logits[x]) / chosen;
    std::vector<double> act(static_cast<size_t>(s.n_ff));
    for (int64_t r = 0; r < s.n_ff; ++r) {
      double g = 0, u = 0;
      const std::vector<double> gr = expert_row(gate, x, r), ur = expert_row(up, x, r);
      for (int64_t i = 0; i < s.n_embd; ++i) g += gr[i] * h[i], u += ur[i] * h[i];
      act[r] = g / (1 + std::exp(-g)) * u;
    }
    for (int64_t r = 0; r < s.n_embd; ++r) {
      const std::vector<double> dr = expert_row(down, x, r);
      double d = 0;
      for (int64_t i = 0; i < s.n_ff; ++i) d += dr[i] * act[i];
      out[r] += w * d;
    }
  }
  return out;
}

std::vector<float> random_rows(int64_t rows, int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> h(static_cast<size_t>(rows * n));
  for (float& v : h) v = normal(rng);
  return h;
}

using test::expect_identical;
using test::GreedyRun;
using test::kOnceUponATime;
using test::tier_unavailable;

// A synthetic model written once per (preset, type, layers) per process.
std::string synth_model(const std::string& preset, GgmlType type, uint32_t layers = 0,
                        uint32_t vocab = 0) {
  const std::string path = test::temp_path(preset + "-" + std::string(ggml_type_name(type)) + "-l" +
                                           std::to_string(layers) + ".gguf")
                               .string();
  if (!std::ifstream(path).good()) {
    synth::Options o;
    o.preset = preset;
    o.type = type;
    o.seed = 11;
    o.layers = layers;
    o.vocab_size = vocab;
    o.threads = 2;
    synth::write_model(o, path);
  }
  return path;
}

// The MoE FFN of every layer of a file for `rows` rows of h, in batches of `batch` rows.
struct LayerRun {
  std::vector<float> out;        // rows × n_embd, per layer concatenated
  std::vector<int32_t> experts;  // rows × n_used, per layer
  uint64_t packed_tensors = 0;
};

LayerRun run_layers(const std::string& path, Tier tier, int threads, const std::vector<float>& h,
                    int64_t rows, int64_t batch) {
  gguf::File f = gguf::File::open(path);
  const MoeShape s = shape_of(f);
  const int64_t n_layer =
      static_cast<int64_t>(f.get_uint(f.get_string("general.architecture") + ".block_count"));
  ThreadPool pool(threads);
  MoeWeights w(f, s, n_layer, [tier](GgmlType t) { return select_kernels(tier, t); });
  LayerRun r;
  w.build(pool, [&r](const MoeTensorEvent& ev) { r.packed_tensors += ev.packed; });
  QuantizeRowFn quantize = nullptr;
  if (w.layer(0).gate_up[0].packed) quantize = w.layer(0).gate_up_kernels.quantize;
  MoeFfn ffn(s, batch);
  r.out.resize(static_cast<size_t>(n_layer * rows * s.n_embd));
  for (int64_t l = 0; l < n_layer; ++l)
    for (int64_t r0 = 0; r0 < rows; r0 += batch) {
      const int64_t t = std::min(batch, rows - r0);
      ffn.forward(pool, w.layer(l), quantize, h.data() + r0 * s.n_embd, t,
                  r.out.data() + (l * rows + r0) * s.n_embd);
      r.experts.insert(r.experts.end(), ffn.experts().begin(),
                       ffn.experts().begin() + t * s.n_used);
    }
  return r;
}

// Relative error of a row: |got − want|₂ / |want|₂.
double rel_error(const float* got, const std::vector<double>& want) {
  double num = 0, den = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    num += (got[i] - want[i]) * (got[i] - want[i]);
    den += want[i] * want[i];
  }
  return std::sqrt(num / den);
}

TEST(MoeFfnTest, F32FixtureLayersMatchTheFloat64Formula) {
  XTILE_REQUIRE_FIXTURE(model, "models/micro-qwen3moe.gguf");
  const int64_t rows = 37;
  gguf::File f = gguf::File::open(model);
  const MoeShape s = shape_of(f);
  ASSERT_EQ(s.n_expert, 8);
  ASSERT_EQ(s.n_used, 2);
  const std::vector<float> h = random_rows(rows, s.n_embd, 3);
  const LayerRun r = run_layers(model, Tier::ref, 2, h, rows, 512);
  EXPECT_EQ(r.packed_tensors, 0u) << "F32 experts stay on the float path";
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t i = 0; i < rows; ++i) {
      const int32_t* ex = r.experts.data() + (l * rows + i) * s.n_used;
      EXPECT_LT(ex[0], ex[1]);
      const std::vector<double> want = ref_ffn(f, l, s, h.data() + i * s.n_embd, ex);
      const float* got = r.out.data() + (l * rows + i) * s.n_embd;
      for (int64_t c = 0; c < s.n_embd; ++c)
        ASSERT_NEAR(got[c], want[c], 1e-4 + 1e-5 * std::fabs(want[c]))
            << "layer " << l << " row " << i << " column " << c;
    }
}

class MoePackedTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(MoePackedTest, ExpertsMatchTheFormulaAndAreBitIdenticalAcrossTiersThreadsAndBatches) {
  const GgmlType type = GetParam();
  const std::string path = synth_model("tiny-qwen3moe", type);
  gguf::File f = gguf::File::open(path);
  const MoeShape s = shape_of(f);
  const int64_t rows = 40;
  const std::vector<float> h = random_rows(rows, s.n_embd, 4);
  const LayerRun base = run_layers(path, Tier::ref, 1, h, rows, 512);
  EXPECT_EQ(base.packed_tensors, 2u * 3u) << "3 expert tensors per layer, 2 layers";
  // The packed slices are the right experts: the ref tier against float64 on the GGUF bytes
  // (the activations are quantized to 8 bits, so about 1% apart).
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t i = 0; i < rows; ++i) {
      const std::vector<double> want =
          ref_ffn(f, l, s, h.data() + i * s.n_embd, base.experts.data() + (l * rows + i) * 2);
      EXPECT_LT(rel_error(base.out.data() + (l * rows + i) * s.n_embd, want), 0.03)
          << "layer " << l << " row " << i;
    }
  std::string skipped;
  for (Tier tier : {Tier::ref, Tier::avx2, Tier::avx512, Tier::amx, Tier::amx_emu}) {
    const std::string why = tier_unavailable(tier, type);
    if (!why.empty()) {
      skipped += std::string(tier_name(tier)) + ": " + why + "; ";
      continue;
    }
    for (int threads : {1, 2, 3, 4})
      for (int64_t batch : {1, 7, 512}) {
        const LayerRun r = run_layers(path, tier, threads, h, rows, batch);
        ASSERT_EQ(r.experts, base.experts);
        ASSERT_EQ(std::memcmp(r.out.data(), base.out.data(), r.out.size() * sizeof(float)), 0)
            << tier_name(tier) << " -t " << threads << " -b " << batch;
      }
  }
  if (!skipped.empty()) std::cout << "[ note     ] tiers skipped: " << skipped << "\n";
}

INSTANTIATE_TEST_SUITE_P(MoeSynth, MoePackedTest, ::testing::Values(GgmlType::Q8_0, GgmlType::Q4_0),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

TEST(MoeWeightsTest, BadExpertTensorsAreErrorsNamingTheTensor) {
  XTILE_REQUIRE_FIXTURE(model, "models/micro-qwen3moe.gguf");
  gguf::File f = gguf::File::open(model);
  MoeShape s = shape_of(f);
  auto kernels = [](GgmlType t) { return select_kernels(Tier::ref, t); };
  s.n_ff = 48;  // the file's experts have 32
  try {
    MoeWeights w(f, s, 2, kernels);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk.0.ffn_gate_exps.weight"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("[64, 48, 8]"), std::string::npos) << e.what();
  }
  s = shape_of(f);
  s.n_used = 9;
  EXPECT_THROW(MoeWeights(f, s, 2, kernels), Error);
  s = shape_of(f);
  EXPECT_THROW(MoeWeights(f, s, 3, kernels), Error);  // there is no blk.2
}

// ---- Whole models ----

GreedyRun run_file(const std::string& path, Tier tier, int threads, int64_t batch,
                  const std::vector<int32_t>& prompt, int64_t n) {
  ThreadPool pool(threads);
  LoadOptions lo;
  lo.tier = tier;
  auto w = WeightStore::load(path, pool, lo);
  return test::run_greedy(*w, pool, prompt, n, batch);
}


TEST(MoeModelTest, MicroQwen3MoeReproducesTheGreedyIdsAndTheFloat64Logits) {
  XTILE_REQUIRE_FIXTURE(model, "models/micro-qwen3moe.gguf");
  XTILE_REQUIRE_FIXTURE(greedy_path, "models/micro-qwen3moe.greedy.txt");
  XTILE_REQUIRE_FIXTURE(tsv_path, "models/micro-qwen3moe.reference.tsv");
  const std::vector<int32_t> greedy = test::parse_id_list(test::read_text(greedy_path));
  const std::vector<test::LogitsRow> ref = test::read_logits_tsv(tsv_path);
  ASSERT_EQ(greedy.size(), 29u);
  ASSERT_EQ(ref.size(), 29u);
  ThreadPool pool(2);
  auto w = WeightStore::load(model, pool, LoadOptions{});
  ASSERT_NE(w->moe(), nullptr);
  EXPECT_EQ(w->config().arch, Arch::qwen3moe);
  EXPECT_EQ(w->config().n_expert, 8);
  EXPECT_EQ(w->config().n_expert_used, 2);
  EXPECT_EQ(w->config().n_ff_exp, 32);
  // The float64 reference keeps K and V exact: an f32 KV cache (as MicroModelTest does).
  const GreedyRun r = test::run_greedy(*w, pool, kOnceUponATime, 24, 512, KvType::f32);
  std::vector<int32_t> ids = kOnceUponATime;
  ids.insert(ids.end(), r.generated.begin(), r.generated.end());
  EXPECT_EQ(ids, greedy);
  ASSERT_EQ(r.logits.size(), 29u);
  for (size_t p = 0; p < ref.size(); ++p) EXPECT_EQ(ref[p].token, greedy[p]) << "position " << p;
  test::expect_logits_near(r.logits, ref, 1e-3);
  // The 29 tokens in one batch give the bits of the prompt-then-one-at-a-time run: a row's
  // routing and expert sums do not depend on the rows beside it.
  test::expect_one_batch_matches(*w, pool, greedy, r);
}

class MoeModelExactTest : public ::testing::TestWithParam<GgmlType> {};

TEST_P(MoeModelExactTest, TokensAndLogitsAreBitIdenticalAcrossTiersThreadsAndBatches) {
  const GgmlType type = GetParam();
  const std::string path = synth_model("tiny-qwen3moe", type);
  // 20 prompt tokens (batch 7 splits them unevenly), then 8 greedy tokens.
  std::vector<int32_t> prompt;
  for (int i = 0; i < 20; ++i) prompt.push_back((i * 37 + 11) % 500);
  const GreedyRun base = run_file(path, Tier::ref, 1, 512, prompt, 8);
  ASSERT_EQ(base.logits.size(), 28u);
  for (const auto& row : base.logits)
    for (float x : row) ASSERT_TRUE(std::isfinite(x));
  std::string skipped;
  for (Tier tier : {Tier::ref, Tier::avx2, Tier::avx512, Tier::amx, Tier::amx_emu}) {
    const std::string why = tier_unavailable(tier, type);
    if (!why.empty()) {
      skipped += std::string(tier_name(tier)) + ": " + why + "; ";
      continue;
    }
    for (int threads : {1, 2, 3, 4})
      for (int64_t batch : {1, 7, 512}) {
        if (tier == Tier::ref && threads == 1 && batch == 512) continue;
        expect_identical(run_file(path, tier, threads, batch, prompt, 8), base,
                         std::string(tier_name(tier)) + " -t " + std::to_string(threads) + " -b " +
                             std::to_string(batch));
      }
  }
  if (!skipped.empty()) std::cout << "[ note     ] tiers skipped: " << skipped << "\n";
}

INSTANTIATE_TEST_SUITE_P(MoeSynth, MoeModelExactTest,
                         ::testing::Values(GgmlType::Q8_0, GgmlType::Q4_0),
                         [](const auto& info) { return std::string(ggml_type_name(info.param)); });

TEST(MoeModelTest, LoadRepacksEachExpertTensorOnceAndGenerationNothing) {
  const std::string path = synth_model("tiny-qwen3moe", GgmlType::Q4_0);
  ThreadPool pool(2);
  const uint64_t before = repack_count();
  LoadOptions lo;
  lo.tier = Tier::ref;
  auto w = WeightStore::load(path, pool, lo);
  // Per layer: the fused Q|K|V, attn_output, and the 3 expert tensors; then output.weight.
  EXPECT_EQ(repack_count() - before, 2u * (3 + 1 + 3) + 1);
  EXPECT_EQ(w->stats().repacks, 2u * (3 + 1 + 3) + 1);
  const uint64_t loaded = repack_count();
  test::run_greedy(*w, pool, {1, 2, 3, 4, 5}, 4, 512);
  EXPECT_EQ(repack_count(), loaded);
}

// Qwen3-30B-A3B's real shapes (2048 hidden, 128 experts of 768, 8 used), cut to 2 layers and a
// 4096-token vocabulary: the synthetic file is ~0.7 GB, so this runs with XTILE_LONG_TESTS=1.
TEST(MoeModelTest, Qwen3_30bA3bTwoLayersGiveTheSameLogitsOnRefAndAvx512) {
  if (!std::getenv("XTILE_LONG_TESTS"))
    GTEST_SKIP() << "writes and loads a 0.7 GB synthetic qwen3-30b-a3b cut to 2 layers; set "
                    "XTILE_LONG_TESTS=1 to run it";
  const std::string why = tier_unavailable(Tier::avx512, GgmlType::Q4_0);
  if (!why.empty()) GTEST_SKIP() << "avx512: " << why;
  const std::string path = synth_model("qwen3-30b-a3b", GgmlType::Q4_0, 2, 4096);
  const std::vector<int32_t> prompt = {1, 17, 400, 2023, 9, 77, 3000, 5};
  const GreedyRun ref = run_file(path, Tier::ref, 2, 512, prompt, 3);
  ASSERT_EQ(ref.logits.size(), 11u);
  for (const auto& row : ref.logits)
    for (float x : row) ASSERT_TRUE(std::isfinite(x));
  expect_identical(run_file(path, Tier::avx512, 2, 512, prompt, 3), ref, "avx512 -t 2");
  expect_identical(run_file(path, Tier::avx512, 2, 3, prompt, 3), ref, "avx512 -t 2 -b 3");
}

}  // namespace
}  // namespace xtile
