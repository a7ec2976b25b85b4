// Mixture-of-experts (arch qwen3moe): routing against an independent float64 top-k, the expert
// FFN against a float64 reference of the formula that routes by itself, bit-exactness of the packed
// experts across tiers, thread counts and batch splits, and whole models (fixture micro-qwen3moe,
// synthetic tiny-qwen3moe and a 2-layer cut of qwen3-30b-a3b).
#include "model/moe.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "base/error.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "gguf/gguf.h"
#include "kernel_test_util.h"
#include "kernels/registry.h"
#include "model/embedding.h"
#include "model/generate.h"
#include "model/session.h"
#include "model/synth.h"
#include "model/weights.h"
#include "model_test_util.h"
#include "ops/ops.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace moe_test {  // unity batches: CMakeLists.txt

// ---- Routing ----

// The routing rule in float64, written from its definition and independent of the
// implementation: softmax over the router logits, the n_used most probable experts (equal
// probabilities: the lower index first), reported in index order with their probabilities
// renormalized over the chosen ones. `gap` is the logit distance between the last expert chosen
// and the first one left out: the float implementation rounds its logits and probabilities, so
// when the gap is within its rounding error (a near-tie) either choice is right and the case
// says nothing; callers skip those.
struct Route64 {
  std::vector<int32_t> experts;  // ascending index
  std::vector<double> weights;
  double gap = 0;
};

Route64 route64(const std::vector<double>& logits, int64_t k) {
  const size_t n = logits.size();
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += p[i] = std::exp(logits[i] - max);
  for (double& v : p) v /= sum;
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(),
            [&](int32_t a, int32_t b) { return p[a] != p[b] ? p[a] > p[b] : a < b; });
  Route64 r;
  r.experts.assign(order.begin(), order.begin() + k);
  std::sort(r.experts.begin(), r.experts.end());
  double chosen = 0;
  for (int32_t e : r.experts) chosen += p[e];
  for (int32_t e : r.experts) r.weights.push_back(p[e] / chosen);
  r.gap = static_cast<size_t>(k) < n ? logits[order[k - 1]] - logits[order[k]]
                                     : std::numeric_limits<double>::infinity();
  return r;
}

// Well beyond the float error of a logit (a dot product of a few thousand terms of order 1, or
// one float rounding of a given logit) and rare among random logits.
constexpr double kNearTie = 1e-3;

struct FloatRoute {
  std::vector<int32_t> experts;
  std::vector<float> weights;
};

FloatRoute route(std::vector<float> logits, int64_t k) {
  FloatRoute r;
  r.experts.resize(k);
  r.weights.resize(k);
  moe_route_logits(logits.data(), static_cast<int64_t>(logits.size()), k, r.experts.data(),
                   r.weights.data());
  return r;
}

void expect_same_route(const FloatRoute& got, const Route64& want, const std::string& what) {
  ASSERT_EQ(got.experts, want.experts) << what;
  float sum = 0.0f;
  for (size_t j = 0; j < want.weights.size(); ++j) {
    EXPECT_NEAR(got.weights[j], want.weights[j], 1e-6 * want.weights[j] + 1e-12) << what;
    sum += got.weights[j];
  }
  EXPECT_NEAR(sum, 1.0f, 1e-6f) << what;
}

TEST(MoeRouting, MatchesAFloat64TopK) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 2.0f);
  int checked = 0, near_ties = 0;
  for (auto [n, k] : {std::pair<int64_t, int64_t>{8, 2}, {8, 1}, {8, 8}, {128, 8}, {64, 4}}) {
    for (int trial = 0; trial < 200; ++trial) {
      std::vector<float> logits(n);
      for (float& v : logits) v = normal(rng);
      const Route64 want = route64(std::vector<double>(logits.begin(), logits.end()), k);
      if (want.gap < kNearTie) {
        ++near_ties;
        continue;
      }
      ++checked;
      expect_same_route(route(logits, k), want,
                        std::to_string(n) + " experts, k " + std::to_string(k) + ", trial " +
                            std::to_string(trial));
    }
  }
  EXPECT_LT(near_ties, checked / 50) << "too many near-ties for the test to mean much";
}

TEST(MoeRouting, TiesTakeTheLowerIndexAndTheOrderIsByIndex) {
  // Experts 1, 2, 4 tie for first: k = 2 takes 1 and 2, with equal weights.
  FloatRoute r = route({1.0f, 3.0f, 3.0f, 0.0f, 3.0f}, 2);
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

TEST(MoeRouting, RowRoutingMatchesAFloat64RouterAndTopK) {
  std::mt19937 rng(9);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  const MoeShape shape{64, 8, 2, 32};
  int checked = 0, near_ties = 0;
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<float> router(64 * 8), h(64), scratch(8);
    for (float& v : router) v = normal(rng);
    for (float& v : h) v = normal(rng);
    std::vector<double> logits(8);
    for (int e = 0; e < 8; ++e)
      for (int i = 0; i < 64; ++i) logits[e] += double{router[e * 64 + i]} * h[i];
    const Route64 want = route64(logits, 2);
    if (want.gap < kNearTie) {
      ++near_ties;
      continue;
    }
    ++checked;
    FloatRoute got{std::vector<int32_t>(2), std::vector<float>(2)};
    moe_route_row(router.data(), h.data(), shape, scratch.data(), got.experts.data(),
                  got.weights.data());
    ASSERT_EQ(got.experts, want.experts) << "trial " << trial;
    // The float dot's logits are within ~1e-5 of the float64 ones: the weights too.
    for (int j = 0; j < 2; ++j) EXPECT_NEAR(got.weights[j], want.weights[j], 1e-5) << trial;
  }
  EXPECT_LT(near_ties, checked / 20);
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

// The MoE FFN of one row in float64 from the GGUF tensors of layer l, routing included: the
// router logits in float64 and route64's choice (not the implementation's).
struct RefFfn {
  std::vector<double> out;
  Route64 route;
};

RefFfn ref_ffn(const gguf::File& f, int64_t l, const MoeShape& s, const float* h) {
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
  RefFfn ref;
  ref.route = route64(logits, s.n_used);
  ref.out.assign(static_cast<size_t>(s.n_embd), 0.0);
  for (int64_t j = 0; j < s.n_used; ++j) {
    const int32_t x = ref.route.experts[j];
    const double w = ref.route.weights[j];
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
      ref.out[r] += w * d;
    }
  }
  return ref;
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
  int near_ties = 0;
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t i = 0; i < rows; ++i) {
      const RefFfn want = ref_ffn(f, l, s, h.data() + i * s.n_embd);
      if (want.route.gap < kNearTie) {
        ++near_ties;
        continue;
      }
      const int32_t* ex = r.experts.data() + (l * rows + i) * s.n_used;
      ASSERT_EQ(std::vector<int32_t>(ex, ex + s.n_used), want.route.experts)
          << "layer " << l << " row " << i;
      const float* got = r.out.data() + (l * rows + i) * s.n_embd;
      for (int64_t c = 0; c < s.n_embd; ++c)
        ASSERT_NEAR(got[c], want.out[c], 1e-4 + 1e-5 * std::fabs(want.out[c]))
            << "layer " << l << " row " << i << " column " << c;
    }
  EXPECT_LE(near_ties, 2);
}

constexpr Tier kAllTiers[] = {Tier::ref, Tier::avx2, Tier::avx512, Tier::amx, Tier::amx_emu};

std::string tier_param_name(Tier t) {
  std::string s(tier_name(t));
  for (char& ch : s)
    if (ch == '-') ch = '_';
  return s;
}

std::string type_tier_name(const ::testing::TestParamInfo<std::tuple<GgmlType, Tier>>& info) {
  return std::string(ggml_type_name(std::get<0>(info.param))) + "_" +
         tier_param_name(std::get<1>(info.param));
}

// The ref tier on one thread in one batch: what the other tiers, thread counts and batch sizes
// must reproduce (once per file per process; each tier is its own test case).
const LayerRun& ref_layers(const std::string& path, const std::vector<float>& h, int64_t rows) {
  static std::map<std::string, LayerRun> runs;
  auto it = runs.find(path);
  if (it == runs.end()) it = runs.emplace(path, run_layers(path, Tier::ref, 1, h, rows, 512)).first;
  return it->second;
}

TEST(MoePackedRef, ExpertsMatchTheFloat64FormulaWithItsOwnRouting) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    const std::string path = synth_model("tiny-qwen3moe", type);
    gguf::File f = gguf::File::open(path);
    const MoeShape s = shape_of(f);
    const int64_t rows = 40;
    const std::vector<float> h = random_rows(rows, s.n_embd, 4);
    const LayerRun& base = ref_layers(path, h, rows);
    EXPECT_EQ(base.packed_tensors, 2u * 3u) << "3 expert tensors per layer, 2 layers";
    // The packed slices are the right experts: the ref tier against float64 on the GGUF bytes
    // (the activations are quantized to 8 bits, so about 1% apart).
    int near_ties = 0;
    for (int64_t l = 0; l < 2; ++l)
      for (int64_t i = 0; i < rows; ++i) {
        const RefFfn want = ref_ffn(f, l, s, h.data() + i * s.n_embd);
        if (want.route.gap < kNearTie) {
          ++near_ties;
          continue;
        }
        const int32_t* ex = base.experts.data() + (l * rows + i) * s.n_used;
        ASSERT_EQ(std::vector<int32_t>(ex, ex + s.n_used), want.route.experts)
            << ggml_type_name(type) << " layer " << l << " row " << i;
        EXPECT_LT(rel_error(base.out.data() + (l * rows + i) * s.n_embd, want.out), 0.03)
            << ggml_type_name(type) << " layer " << l << " row " << i;
      }
    EXPECT_LE(near_ties, 2) << ggml_type_name(type);
  }
}

class MoePackedTest : public ::testing::TestWithParam<std::tuple<GgmlType, Tier>> {};

TEST_P(MoePackedTest, ExpertsAreBitIdenticalToRefAcrossThreadsAndBatches) {
  const auto [type, tier] = GetParam();
  const std::string why = tier_unavailable(tier, type);
  if (!why.empty()) GTEST_SKIP() << "tier " << tier_name(tier) << " is not available: " << why;
  const std::string path = synth_model("tiny-qwen3moe", type);
  const MoeShape s = shape_of(gguf::File::open(path));
  const int64_t rows = 40;
  const std::vector<float> h = random_rows(rows, s.n_embd, 4);
  const LayerRun& base = ref_layers(path, h, rows);
  for (int threads : {1, 2, 3, 4})
    for (int64_t batch : {1, 7, 512}) {
      if (tier == Tier::ref && threads == 1 && batch == 512) continue;  // the base itself
      const LayerRun r = run_layers(path, tier, threads, h, rows, batch);
      ASSERT_EQ(r.experts, base.experts);
      ASSERT_EQ(std::memcmp(r.out.data(), base.out.data(), r.out.size() * sizeof(float)), 0)
          << tier_name(tier) << " -t " << threads << " -b " << batch;
    }
}

INSTANTIATE_TEST_SUITE_P(MoeSynth, MoePackedTest,
                         ::testing::Combine(::testing::Values(GgmlType::Q8_0, GgmlType::Q4_0),
                                            ::testing::ValuesIn(kAllTiers)),
                         type_tier_name);

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

// 20 prompt tokens (batch 7 splits them unevenly), then 8 greedy tokens.
std::vector<int32_t> exact_prompt() {
  std::vector<int32_t> prompt;
  for (int i = 0; i < 20; ++i) prompt.push_back((i * 37 + 11) % 500);
  return prompt;
}

const GreedyRun& ref_model_run(const std::string& path) {
  static std::map<std::string, GreedyRun> runs;
  auto it = runs.find(path);
  if (it == runs.end())
    it = runs.emplace(path, run_file(path, Tier::ref, 1, 512, exact_prompt(), 8)).first;
  return it->second;
}

class MoeModelExactTest : public ::testing::TestWithParam<std::tuple<GgmlType, Tier>> {};

TEST_P(MoeModelExactTest, TokensAndLogitsAreBitIdenticalToRefAcrossThreadsAndBatches) {
  const auto [type, tier] = GetParam();
  const std::string why = tier_unavailable(tier, type);
  if (!why.empty()) GTEST_SKIP() << "tier " << tier_name(tier) << " is not available: " << why;
  const std::string path = synth_model("tiny-qwen3moe", type);
  const GreedyRun& base = ref_model_run(path);
  ASSERT_EQ(base.logits.size(), 28u);
  for (const auto& row : base.logits)
    for (float x : row) ASSERT_TRUE(std::isfinite(x));
  for (int threads : {1, 2, 3, 4})
    for (int64_t batch : {1, 7, 512}) {
      if (tier == Tier::ref && threads == 1 && batch == 512) continue;  // the base itself
      expect_identical(run_file(path, tier, threads, batch, exact_prompt(), 8), base,
                       std::string(tier_name(tier)) + " -t " + std::to_string(threads) + " -b " +
                           std::to_string(batch));
    }
}

INSTANTIATE_TEST_SUITE_P(MoeSynth, MoeModelExactTest,
                         ::testing::Combine(::testing::Values(GgmlType::Q8_0, GgmlType::Q4_0),
                                            ::testing::ValuesIn(kAllTiers)),
                         type_tier_name);

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

}  // namespace moe_test
}  // namespace
}  // namespace xtile
