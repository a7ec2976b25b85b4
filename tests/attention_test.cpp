// Attention's one arithmetic (ops/attention.h): the element loop is checked against a float64
// softmax, and every other way of computing it (the vectorized kernels at each width, prompt
// tiles, generation split over threads by blocks of 256 positions, any thread count, a row alone
// or in a batch) against the element loop with memcmp, across block edges and context lengths
// up to 5000, for f32, fp16, bf16 and q8_0 caches; a q8_0 cache against an f32 one within a
// stated tolerance.
#include "ops/attention.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>
#include <vector>

#include "base/error.h"
#include "base/fp16.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "model/kv_cache.h"
#include "quant/quant.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace attention_test {  // unity batches: CMakeLists.txt

std::vector<float> random_vec(size_t n, uint32_t seed, float scale = 1.0f) {
  return test::random_normal(n, seed, scale);
}

// A one-layer cache holding n_pos random positions.
struct Cache {
  Cache(int64_t n_kv, int64_t hd, int64_t n_pos, KvType type, uint32_t seed, float scale = 1.0f,
        std::optional<KvType> type_v = std::nullopt)
      : kv(1, n_pos, n_kv, hd, type, type_v.value_or(type)) {
    const auto k = random_vec(static_cast<size_t>(n_pos * n_kv * hd), seed, scale);
    const auto v = random_vec(static_cast<size_t>(n_pos * n_kv * hd), seed + 1, scale);
    for (int64_t p = 0; p < n_pos; ++p) kv.store(0, p, k.data() + p * n_kv * hd, v.data() + p * n_kv * hd);
  }
  KvCache kv;
};

ops::AttentionShape shape_of(int64_t n_head, int64_t n_kv, int64_t hd) {
  return {n_head, n_kv, hd, 1.0f / std::sqrt(static_cast<float>(hd))};
}

// The ISA paths (an fp16 cache read in place in generation, a q8_0 K's integer scores) run where
// the CPU has their tier (Attention.IsaPathsRunWhereTheCpuAllows says which ran).
constexpr ops::AttentionPath kVectorPaths[] = {
    ops::AttentionPath::lanes,        ops::AttentionPath::lanes_w4,
    ops::AttentionPath::lanes_w8,     ops::AttentionPath::lanes_w16,
    ops::AttentionPath::lanes_isa_w8, ops::AttentionPath::lanes_isa_w16};

std::vector<float> run(ThreadPool& pool, const ops::AttentionShape& s, const std::vector<float>& q,
                       const std::vector<int64_t>& pos, const ops::KvLayerView& kv,
                       ops::AttentionPath path) {
  const int64_t qd = s.n_head * s.head_dim;
  std::vector<float> out(pos.size() * static_cast<size_t>(qd), -1.0f), scratch;
  ops::attention(pool, s, q.data(), qd, pos.data(), static_cast<int64_t>(pos.size()), kv,
                 out.data(), qd, scratch, path);
  return out;
}

void expect_same(const std::vector<float>& got, const std::vector<float>& want, int64_t qd,
                 const std::vector<int64_t>& pos, const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t r = 0; r < pos.size(); ++r)
    ASSERT_EQ(0, std::memcmp(got.data() + r * qd, want.data() + r * qd, sizeof(float) * qd))
        << what << ": row " << r << " at position " << pos[r];
}

TEST(Attention, ElementLoopMatchesFloat64Softmax) {
  const int64_t n_head = 4, n_kv = 2, hd = 16, n_pos = 600;  // three blocks of 256
  Cache c(n_kv, hd, n_pos, KvType::f32, 71);
  const auto kvw = c.kv.view(0);
  const auto s = shape_of(n_head, n_kv, hd);
  std::vector<int64_t> pos = {0, 1, 255, 256, 300, 599};
  const int64_t qd = n_head * hd;
  const auto q = random_vec(pos.size() * qd, 73);
  ThreadPool pool(2);
  const auto out = run(pool, s, q, pos, kvw, ops::AttentionPath::reference);
  const auto* k = static_cast<const float*>(kvw.k);
  const auto* v = static_cast<const float*>(kvw.v);
  for (size_t r = 0; r < pos.size(); ++r)
    for (int64_t h = 0; h < n_head; ++h) {
      const int64_t g = h / (n_head / n_kv), t = pos[r];
      std::vector<double> w(static_cast<size_t>(t + 1));
      double mx = -1e300, sum = 0;
      for (int64_t p = 0; p <= t; ++p) {
        double d = 0;
        for (int64_t i = 0; i < hd; ++i)
          d += double{q[r * qd + h * hd + i]} * k[ops::kv_k_index(kvw, g, p, i)];
        w[static_cast<size_t>(p)] = d / std::sqrt(double(hd));
        mx = std::max(mx, w[static_cast<size_t>(p)]);
      }
      for (double& x : w) sum += x = std::exp(x - mx);
      for (int64_t i = 0; i < hd; ++i) {
        double o = 0;
        for (int64_t p = 0; p <= t; ++p) o += w[static_cast<size_t>(p)] / sum * v[ops::kv_v_index(kvw, g, p, i)];
        EXPECT_NEAR(out[r * qd + h * hd + i], o, 2e-6) << "pos " << t << " head " << h << " i " << i;
      }
    }
}

// Every vectorized path, generation (split over threads by blocks) and prompt tiles, at every
// width, gives the element loop's bytes: head sizes 64/128/256, GQA groups 1..8, positions around
// the 16-position chunks and 256-position blocks; one test per cache type (f32, f16, bf16, q8_0),
// so that a failure names its type (each runs on a 3-thread pool: CTest's jobs gain no time
// from the split, the suite is CPU-bound on 2 cores).
class AttentionVectorPaths : public testing::TestWithParam<KvType> {};
}  // namespace attention_test
}  // namespace
// How GoogleTest names a KvType parameter in its messages ("f16", not the enum's bytes).
void PrintTo(KvType t, std::ostream* os) {
  *os << kv_type_name(t);
}
namespace {
namespace attention_test {  // unity batches: CMakeLists.txt

TEST_P(AttentionVectorPaths, GiveTheElementLoopsBytes) {
  const KvType type = GetParam();
  struct Case {
    int64_t hd, n_head, n_kv, n_pos;
    float scale;
  };
#if defined(__SANITIZE_ADDRESS__)
  // The sanitizer build (CI's second, at -O1) runs the element loop ~10x slower (per-element
  // fmaf calls and accessors not inlined): the long prompts keep their 256-position block
  // boundaries with fewer heads.
  const Case cases[] = {{64, 2, 2, 1, 1.0f},     {64, 8, 2, 17, 1.0f},   {128, 16, 8, 16, 1.0f},
                        {128, 16, 8, 70, 1.0f},  {128, 2, 1, 300, 3.0f}, {128, 3, 1, 47, 1e-3f},
                        {128, 2, 2, 530, 20.0f}, {256, 4, 2, 31, 1.0f},  {256, 2, 1, 260, 0.5f},
                        {64, 4, 2, 513, 1.0f}};
#else
  const Case cases[] = {{64, 2, 2, 1, 1.0f},    {64, 8, 2, 17, 1.0f},   {128, 16, 8, 16, 1.0f},
                        {128, 16, 8, 70, 1.0f}, {128, 32, 4, 300, 3.0f}, {128, 3, 1, 47, 1e-3f},
                        {128, 6, 2, 530, 20.0f}, {256, 4, 2, 31, 1.0f},  {256, 5, 1, 260, 0.5f},
                        {64, 16, 2, 513, 1.0f}};
#endif
  ThreadPool pool(3);
  uint32_t seed = 100 + 1000 * static_cast<uint32_t>(type);
  for (const Case& cs : cases) {
    Cache c(cs.n_kv, cs.hd, cs.n_pos, type, seed += 2, cs.scale);
    const auto s = shape_of(cs.n_head, cs.n_kv, cs.hd);
    const int64_t qd = cs.n_head * cs.hd;
    // A prompt (every position), then generation-like single rows and a few scattered rows.
    std::vector<std::vector<int64_t>> batches;
    std::vector<int64_t> all;
    for (int64_t p = 0; p < cs.n_pos; ++p) all.push_back(p);
    batches.push_back(all);
    for (int64_t p : {int64_t{0}, cs.n_pos / 2, cs.n_pos - 1}) batches.push_back({p});
    batches.push_back({cs.n_pos - 1, 0, cs.n_pos / 3});
    for (const auto& pos : batches) {
      const auto q = random_vec(pos.size() * qd, ++seed, cs.scale);
      const auto want = run(pool, s, q, pos, c.kv.view(0), ops::AttentionPath::reference);
      for (ops::AttentionPath path : kVectorPaths) {
        if (!ops::attention_path_available(path)) continue;
        const auto got = run(pool, s, q, pos, c.kv.view(0), path);
        expect_same(got, want, qd, pos,
                    "path " + std::to_string(int(path)) + " hd " + std::to_string(cs.hd) +
                        " heads " + std::to_string(cs.n_head) + "/" + std::to_string(cs.n_kv) +
                        " " + std::string(kv_type_name(type)) + " rows " +
                        std::to_string(pos.size()));
        if (HasFatalFailure()) return;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Attention, AttentionVectorPaths,
                         testing::Values(KvType::f32, KvType::f16, KvType::bf16, KvType::q8_0),
                         [](const testing::TestParamInfo<KvType>& info) {
                           return std::string(kv_type_name(info.param));
                         });

// The paths above that this CPU cannot run were left out; say so (skip) rather than pass quietly.
TEST(Attention, IsaPathsRunWhereTheCpuAllows) {
  const bool w8 = ops::attention_path_available(ops::AttentionPath::lanes_isa_w8);
  const bool w16 = ops::attention_path_available(ops::AttentionPath::lanes_isa_w16);
  EXPECT_EQ(w8, cpu_caps().tier_available(Tier::avx2));
  EXPECT_EQ(w16, cpu_caps().tier_available(Tier::avx512));
  if (!w8 || !w16)
    GTEST_SKIP() << "this CPU lacks the " << (w8 ? "avx512" : "avx2")
                 << " tier: its in-place fp16 attention and q8_0 K scores were not compared here";
}

// Context lengths up to 5000 (20 blocks): a row alone (generation, split by blocks over any
// number of threads), the same row inside a prompt batch, and the element loop agree.
// Run for the f16 cache and the q8_0 one (both read in place by the ISA paths in generation).
class AttentionLongContexts : public testing::TestWithParam<KvType> {};
TEST_P(AttentionLongContexts, AnyThreadCountAloneOrInABatch) {
  const int64_t n_head = 16, n_kv = 8, hd = 128, n_pos = 5000;
  Cache c(n_kv, hd, n_pos, GetParam(), 901);
  const auto s = shape_of(n_head, n_kv, hd);
  const int64_t qd = n_head * hd;
  const std::vector<int64_t> probe = {0, 255, 256, 1023, 2500, 4095, 4999};
  const auto q = random_vec(probe.size() * qd, 902);
  ThreadPool one(1);
  const auto want = run(one, s, q, probe, c.kv.view(0), ops::AttentionPath::reference);
  for (int threads : {1, 2, 3, 4, 8}) {
    ThreadPool pool(threads);
    for (size_t r = 0; r < probe.size(); ++r) {  // each row alone: split mode
      const std::vector<float> qr(q.begin() + r * qd, q.begin() + (r + 1) * qd);
      const auto got = run(pool, s, qr, {probe[r]}, c.kv.view(0), ops::AttentionPath::lanes);
      ASSERT_EQ(0, std::memcmp(got.data(), want.data() + r * qd, sizeof(float) * qd))
          << "position " << probe[r] << " alone, " << threads << " threads";
    }
  }
  // The probes inside a 64-row batch of neighbouring positions (prompt tiles).
  std::vector<int64_t> batch;
  for (int64_t p = 4936; p < 5000; ++p) batch.push_back(p);
  const auto qb = random_vec(batch.size() * qd, 903);
  ThreadPool pool(2);
  const auto tiles = run(pool, s, qb, batch, c.kv.view(0), ops::AttentionPath::lanes);
  for (size_t r = 0; r < batch.size(); r += 21) {
    const std::vector<float> qr(qb.begin() + r * qd, qb.begin() + (r + 1) * qd);
    const auto alone = run(one, s, qr, {batch[r]}, c.kv.view(0), ops::AttentionPath::reference);
    ASSERT_EQ(0, std::memcmp(alone.data(), tiles.data() + r * qd, sizeof(float) * qd))
        << "position " << batch[r] << " in a batch differs from the element loop alone";
  }
}
INSTANTIATE_TEST_SUITE_P(Attention, AttentionLongContexts,
                         testing::Values(KvType::f16, KvType::q8_0),
                         [](const testing::TestParamInfo<KvType>& info) {
                           return std::string(kv_type_name(info.param));
                         });

// K and V of different types (-ctk f16 -ctv bf16 and the reverse) read each through its own type,
// on every vector path: in generation the ISA paths read an fp16 or q8_0 V in place beside an fp16
// K or a q8_0 K's integer scores, and convert the other types piece by piece.
TEST(Attention, MixedKAndVTypes) {
  ThreadPool pool(2);
  const auto s = shape_of(8, 2, 128);
  for (auto [tk, tv] : {std::pair{KvType::f16, KvType::bf16}, std::pair{KvType::bf16, KvType::f32},
                        std::pair{KvType::q8_0, KvType::f16}, std::pair{KvType::f32, KvType::q8_0},
                        std::pair{KvType::f16, KvType::q8_0}, std::pair{KvType::bf16, KvType::q8_0},
                        std::pair{KvType::q8_0, KvType::bf16}}) {
    Cache c(2, 128, 300, tk, 555, 1.0f, tv);
    std::vector<int64_t> prompt = {299};
    for (int64_t p = 0; p < 40; ++p) prompt.push_back(p);
    // A prompt (tiles over the converted cache) and single rows (split mode) ending inside and at
    // the edge of a 16-position chunk and of a 256-position block.
    for (const auto& pos : {prompt, std::vector<int64_t>{299}, std::vector<int64_t>{255},
                            std::vector<int64_t>{16}, std::vector<int64_t>{0}}) {
      const auto q = random_vec(pos.size() * 8 * 128, 556);
      const auto want = run(pool, s, q, pos, c.kv.view(0), ops::AttentionPath::reference);
      for (ops::AttentionPath path : kVectorPaths) {
        if (!ops::attention_path_available(path)) continue;
        expect_same(run(pool, s, q, pos, c.kv.view(0), path), want, 8 * 128, pos,
                    std::string(kv_type_name(tk)) + "/" + std::string(kv_type_name(tv)) + " path " +
                        std::to_string(int(path)));
        if (HasFatalFailure()) return;
      }
    }
  }
}

// A q8_0 cache stores ggml's q8_0 blocks of each head's row and reads back their exact d·q.
TEST(Attention, Q8CacheHoldsQuantizeRowQ8_0sValues) {
  const int64_t n_kv = 2, hd = 64, n_pos = 37;
  const auto k = random_vec(static_cast<size_t>(n_pos * n_kv * hd), 31, 3.0f);
  const auto v = random_vec(static_cast<size_t>(n_pos * n_kv * hd), 32, 0.01f);
  KvCache small(1, n_pos, n_kv, hd, KvType::q8_0, KvType::q8_0);
  for (int64_t p = 0; p < n_pos; ++p) small.store(0, p, k.data() + p * n_kv * hd, v.data() + p * n_kv * hd);
  KvCache grown(1, 100, n_kv, hd, KvType::q8_0, KvType::q8_0);  // as a sequence's cache grows
  grown.copy_from(small, n_pos);
  EXPECT_EQ(small.bytes(), static_cast<size_t>(2 * n_kv * 48 * (hd / 32) * 34));  // capacity 48
  for (const KvCache* c : {&small, &grown}) {
    const auto view = c->view(0);
    for (int64_t p = 0; p < n_pos; ++p)
      for (int64_t g = 0; g < n_kv; ++g) {
        std::vector<BlockQ8_0> blocks(hd / 32);
        std::vector<float> want_k(hd), want_v(hd);
        quantize_row_q8_0(k.data() + (p * n_kv + g) * hd, blocks.data(), hd);
        dequantize_row_q8_0(blocks.data(), want_k.data(), hd);
        quantize_row_q8_0(v.data() + (p * n_kv + g) * hd, blocks.data(), hd);
        dequantize_row_q8_0(blocks.data(), want_v.data(), hd);
        for (int64_t i = 0; i < hd; ++i) {
          ASSERT_EQ(ops::kv_k_value(view, g, p, i), want_k[i]) << "K p " << p << " g " << g << " i " << i;
          ASSERT_EQ(ops::kv_v_value(view, g, p, i), want_v[i]) << "V p " << p << " g " << g << " i " << i;
        }
      }
  }
  EXPECT_THROW(KvCache(1, 16, 1, 48, KvType::q8_0), Error);  // head size not a multiple of 32
}

// A context beyond kMaxPositions is refused before its byte count (which could wrap) is taken.
TEST(KvCacheLimits, PositionsBeyondTheLimitAreRefused) {
  EXPECT_THROW(KvCache(1, KvCache::kMaxPositions + 1, 1, 32, KvType::f16), Error);
  EXPECT_THROW(KvCache(1, int64_t{1} << 62, 8, 128, KvType::f16), Error);
  EXPECT_THROW(KvCache(1, 0, 1, 32, KvType::f16), Error);
  EXPECT_EQ(KvCache::checked_positions(KvCache::kMaxPositions), KvCache::kMaxPositions);
}

// The tolerance of a q8_0 cache: with unit-normal q, K and V (head 128, 700 positions), every
// output within 0.02 of the f32 cache's and the mean error below 0.002 (q8_0 rounds each value
// of K, V and, for the scores, the query by at most amax/254 of its block of 32, ~1 % of a unit
// normal's block maximum; measured 0.0185 and 8.3e-4).
TEST(Attention, Q8CacheStaysNearTheF32Cache) {
  const int64_t n_head = 8, n_kv = 2, hd = 128, n_pos = 700;
  Cache exact(n_kv, hd, n_pos, KvType::f32, 77), q8(n_kv, hd, n_pos, KvType::q8_0, 77);
  const auto s = shape_of(n_head, n_kv, hd);
  const int64_t qd = n_head * hd;
  std::vector<int64_t> pos;
  for (int64_t p = 0; p < n_pos; p += 7) pos.push_back(p);
  const auto q = random_vec(pos.size() * qd, 78);
  ThreadPool pool(2);
  const auto want = run(pool, s, q, pos, exact.kv.view(0), ops::AttentionPath::lanes);
  const auto got = run(pool, s, q, pos, q8.kv.view(0), ops::AttentionPath::lanes);
  double worst = 0, sum = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double e = std::fabs(double{got[i]} - want[i]);
    worst = std::max(worst, e);
    sum += e;
  }
  EXPECT_LT(worst, 0.02);
  EXPECT_LT(sum / static_cast<double>(got.size()), 0.002);
  EXPECT_GT(worst, 0.0) << "the q8_0 cache rounded nothing: is it really q8_0?";
}

// A q8_0 K's element loop against float64: the scores are the quantized query (quantize_row_q8_0
// of each head's q) dotted with K's d·q, then the softmax and V as for any cache.
TEST(Attention, Q8KElementLoopMatchesFloat64OfTheQuantizedQuery) {
  const int64_t n_head = 4, n_kv = 2, hd = 64, n_pos = 520;
  Cache c(n_kv, hd, n_pos, KvType::q8_0, 81, 1.0f, KvType::f32);
  const auto kvw = c.kv.view(0);
  const auto s = shape_of(n_head, n_kv, hd);
  const std::vector<int64_t> pos = {0, 17, 255, 256, 519};
  const int64_t qd = n_head * hd;
  const auto q = random_vec(pos.size() * qd, 82, 2.0f);
  ThreadPool pool(2);
  const auto out = run(pool, s, q, pos, kvw, ops::AttentionPath::reference);
  for (size_t r = 0; r < pos.size(); ++r)
    for (int64_t h = 0; h < n_head; ++h) {
      const int64_t g = h / (n_head / n_kv), t = pos[r];
      std::vector<BlockQ8_0> qb(hd / 32);
      std::vector<float> qq(hd);
      quantize_row_q8_0(q.data() + r * qd + h * hd, qb.data(), hd);
      dequantize_row_q8_0(qb.data(), qq.data(), hd);
      std::vector<double> w(static_cast<size_t>(t + 1));
      double mx = -1e300, sum = 0;
      for (int64_t p = 0; p <= t; ++p) {
        double d = 0;
        for (int64_t i = 0; i < hd; ++i) d += double{qq[i]} * ops::kv_k_value(kvw, g, p, i);
        w[static_cast<size_t>(p)] = d / std::sqrt(double(hd));
        mx = std::max(mx, w[static_cast<size_t>(p)]);
      }
      for (double& x : w) sum += x = std::exp(x - mx);
      for (int64_t i = 0; i < hd; ++i) {
        double o = 0;
        for (int64_t p = 0; p <= t; ++p)
          o += w[static_cast<size_t>(p)] / sum * ops::kv_v_value(kvw, g, p, i);
        ASSERT_NEAR(out[r * qd + h * hd + i], o, 4e-6)
            << "pos " << t << " head " << h << " i " << i;
      }
    }
}

// A q8_0 K at the integer sums' extremes: K and queries of ±1 quantize to ±127, so a block's sum
// reaches ±32 · 127 · 127 (all signs alike) and K's scales are large (values of ±300); every
// vector path, prompt tiles and generation, gives the element loop's bytes.
TEST(Attention, Q8KScoresAtTheirExtremesGiveTheElementLoopsBytes) {
  const int64_t n_head = 8, n_kv = 2, hd = 128, n_pos = 300;
  std::mt19937 rng(91);
  auto signs = [&](size_t n, float a, bool alike) {
    std::vector<float> x(n);
    for (size_t i = 0; i < n; ++i) x[i] = alike || rng() % 2 ? a : -a;
    return x;
  };
  for (bool alike : {false, true}) {
    KvCache kv(1, n_pos, n_kv, hd, KvType::q8_0, KvType::f16);
    const auto k = signs(static_cast<size_t>(n_pos * n_kv * hd), 300.0f, alike);
    const auto v = random_vec(static_cast<size_t>(n_pos * n_kv * hd), 92);
    for (int64_t p = 0; p < n_pos; ++p)
      kv.store(0, p, k.data() + p * n_kv * hd, v.data() + p * n_kv * hd);
    ops::AttentionShape s = shape_of(n_head, n_kv, hd);
    s.scale = 1e-7f;  // scores of ~±1.4e7 · d_k · d_q brought near 1 (softmax not saturated)
    std::vector<int64_t> prompt;
    for (int64_t p = 0; p < n_pos; p += 3) prompt.push_back(p);
    for (const auto& pos : {prompt, std::vector<int64_t>{n_pos - 1}}) {
      const auto q = signs(pos.size() * n_head * hd, alike ? -1.0f : 1.0f, alike);
      ThreadPool pool(2);
      const auto want = run(pool, s, q, pos, kv.view(0), ops::AttentionPath::reference);
      for (ops::AttentionPath path : kVectorPaths) {
        if (!ops::attention_path_available(path)) continue;
        expect_same(run(pool, s, q, pos, kv.view(0), path), want, n_head * hd, pos,
                    "path " + std::to_string(int(path)) + (alike ? " alike" : " mixed"));
        if (HasFatalFailure()) return;
      }
    }
  }
}

TEST(Attention, RefusesACacheOfAnotherShape) {
  Cache c(2, 64, 16, KvType::f16, 1);
  const auto s = shape_of(4, 4, 64);  // 4 kv heads, the cache holds 2
  ThreadPool pool(1);
  std::vector<float> q(256), out(256), scratch;
  const int64_t pos = 3;
  EXPECT_THROW(ops::attention(pool, s, q.data(), 256, &pos, 1, c.kv.view(0), out.data(), 256, scratch),
               Error);
}

}  // namespace attention_test
}  // namespace
}  // namespace xtile
