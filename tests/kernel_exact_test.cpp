// The bit-exact ladder (DESIGN.md §3): every tier's quantizer and matmul kernels give the same
// bytes as ref, on random and extreme data, over shapes around every boundary, for any thread
// count. Comparisons are memcmp, never a tolerance.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "base/error.h"
#include "cpu/cpu_caps.h"
#include "cpu/thread_pool.h"
#include "kernel_test_util.h"
#include "kernels/pack/pack.h"
#include "kernels/ref/ref_kernels.h"
#include "kernels/registry.h"
#include "ops/matmul.h"

namespace xtile {
namespace {

using test::ActPattern;
using test::WeightPattern;

struct Case {
  GgmlType type;
  int64_t m, n, k;
  uint32_t seed;
  WeightPattern wp = WeightPattern::random;
  ActPattern ap = ActPattern::random;
};

std::string describe(const Case& c) {
  return std::string(ggml_type_name(c.type)) + " M=" + std::to_string(c.m) +
         " N=" + std::to_string(c.n) + " K=" + std::to_string(c.k) +
         " seed=" + std::to_string(c.seed) + " wp=" + std::to_string(int(c.wp)) +
         " ap=" + std::to_string(int(c.ap));
}

// Inputs and the ref result of one case, computed once and shared by every tier's test.
struct RefResult {
  std::vector<uint8_t> weights;  // GGUF rows
  std::vector<float> x;
  std::vector<float> y;
};

const RefResult& ref_result(const Case& c) {
  static std::map<std::string, RefResult> cache;
  const std::string key = describe(c);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  RefResult r;
  r.weights = test::random_weights(c.type, c.n, c.k, c.seed, c.wp);
  r.x = test::random_activations(c.m, c.k, c.seed * 7919u + 1, c.ap);
  ActBuffer acts;
  QuantizedActs& qa = acts.resize(c.m, c.k);
  for (int64_t i = 0; i < c.m; ++i)
    ref::quantize_row(r.x.data() + i * c.k, c.k, qa.q + i * c.k, qa.d + i * (c.k / 32),
                      qa.s + i * (c.k / 32));
  const Layout layout = layout_for(c.type, Tier::ref);
  PackedMatrix w{c.type, layout, c.n, c.k, r.weights.data(), r.weights.size()};
  r.y.assign(static_cast<size_t>(c.m * c.n), 0.0f);
  const MatmulKernel* k = find_matmul_kernel(c.type, Tier::ref, MatmulShape::gemm);
  k->fn(w, qa, r.y.data(), c.n, 0, c.m, 0, c.n);
  return cache.emplace(key, std::move(r)).first->second;
}

class KernelExact : public ::testing::TestWithParam<Tier> {
 protected:
  void SetUp() override {
    const std::string why = cpu_caps().tier_unavailable_reason(GetParam());
    if (!why.empty()) GTEST_SKIP() << "tier " << tier_name(GetParam()) << " skipped: " << why;
  }

  // Quantizes with the tier's quantizer and checks its bytes against ref's.
  void quantize_and_check(const Case& c, const std::vector<float>& x, ActBuffer& out) {
    const KernelSet ks = select_kernels(GetParam(), c.type);
    QuantizedActs& qa = out.resize(c.m, c.k);
    ActBuffer ref_buf;
    QuantizedActs& qr = ref_buf.resize(c.m, c.k);
    const int64_t nb = c.k / 32;
    for (int64_t i = 0; i < c.m; ++i) {
      ks.quantize(x.data() + i * c.k, c.k, qa.q + i * c.k, qa.d + i * nb, qa.s + i * nb);
      ref::quantize_row(x.data() + i * c.k, c.k, qr.q + i * c.k, qr.d + i * nb, qr.s + i * nb);
    }
    ASSERT_EQ(0, std::memcmp(qa.q, qr.q, c.m * c.k)) << ks.quantize_name << " q " << describe(c);
    ASSERT_EQ(0, std::memcmp(qa.d, qr.d, c.m * nb * 4)) << ks.quantize_name << " d " << describe(c);
    ASSERT_EQ(0, std::memcmp(qa.s, qr.s, c.m * nb * 4)) << ks.quantize_name << " s " << describe(c);
  }

  // Both kernels of the tier (GEMV and GEMM) over the whole output, and the threaded driver.
  void check(const Case& c, std::initializer_list<int> thread_counts = {2}) {
    const RefResult& ref = ref_result(c);
    const KernelSet ks = select_kernels(GetParam(), c.type);
    AlignedBuffer packed(packed_bytes(ks.layout, c.n, c.k));
    pack_matrix(ks.layout, ref.weights.data(), c.n, c.k, packed.data());
    const PackedMatrix w{c.type, ks.layout, c.n, c.k, packed.data(), packed.size()};
    ActBuffer acts;
    quantize_and_check(c, ref.x, acts);
    if (HasFatalFailure()) return;
    const size_t bytes = ref.y.size() * sizeof(float);
    std::vector<float> y(ref.y.size());
    for (const MatmulKernel* kernel : {ks.gemv, ks.gemm}) {
      std::fill(y.begin(), y.end(), std::nanf("1"));
      kernel->fn(w, acts.acts(), y.data(), c.n, 0, c.m, 0, c.n);
      ASSERT_EQ(0, std::memcmp(y.data(), ref.y.data(), bytes)) << kernel->name << " " << describe(c);
    }
    for (int t : thread_counts) {
      ThreadPool pool(t);
      std::fill(y.begin(), y.end(), std::nanf("1"));
      matmul_quantized(pool, ks, w, acts.acts(), y.data(), c.n);
      ASSERT_EQ(0, std::memcmp(y.data(), ref.y.data(), bytes))
          << "driver with " << t << " threads, " << describe(c);
    }
  }
};

TEST_P(KernelExact, EveryMUpTo70AndLarge) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    for (int64_t m = 1; m <= 70; ++m) check({type, m, 33, 96, uint32_t(m)});
    check({type, 128, 33, 96, 128});
    check({type, 512, 40, 128, 512});
  }
}

TEST_P(KernelExact, NAroundTheInterleave) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0})
    for (int64_t n : {1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 100, 4096 + 16})
      for (int64_t m : {1, 5, 17}) check({type, m, n, 256, uint32_t(n * 31 + m)});
}

TEST_P(KernelExact, KFrom32To11008) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0})
    for (int64_t k : {32, 64, 96, 128, 160, 224, 256, 288, 512, 1024, 2048, 4096, 11008})
      for (int64_t m : {1, 4, 19}) check({type, m, 48, k, uint32_t(k + m)});
}

TEST_P(KernelExact, LargeShapes) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    check({type, 128, 100, 4096, 1});
    check({type, 3, 4096 + 16, 2048, 2});
    check({type, 64, 64, 11008, 3});
  }
}

TEST_P(KernelExact, SameBytesForOneToFourThreads) {
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    check({type, 1, 4096 + 16, 512, 11}, {1, 2, 3, 4});
    check({type, 37, 200, 256, 12}, {1, 2, 3, 4});
    check({type, 3, 16, 64, 13}, {1, 2, 3, 4});  // fewer groups than threads
  }
}

TEST_P(KernelExact, ExtremeValues) {
  // Weights at -128/127/0 and nibbles at 0/15 against activations at ±127 in every block: where
  // int16 intermediates (VPMADDUBSW) would saturate if a kernel took a shortcut.
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0})
    for (WeightPattern wp : {WeightPattern::all_min, WeightPattern::all_max, WeightPattern::zeros,
                             WeightPattern::alternating_extremes, WeightPattern::random})
      for (ActPattern ap : {ActPattern::extremes, ActPattern::zeros, ActPattern::ties,
                            ActPattern::random})
        for (int64_t m : {1, 2, 20})
          check({type, m, 33, 256, uint32_t(m * 100 + int(wp) * 10 + int(ap)), wp, ap});
}

TEST_P(KernelExact, SubRangesWriteOnlyTheirOutputs) {
  // A kernel given [m0, m1) × [n0, n1) writes exactly that block of y (row stride ldy > n).
  for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0}) {
    const Case c{type, 21, 50, 128, 77};
    const RefResult& ref = ref_result(c);
    const KernelSet ks = select_kernels(GetParam(), c.type);
    AlignedBuffer packed(packed_bytes(ks.layout, c.n, c.k));
    pack_matrix(ks.layout, ref.weights.data(), c.n, c.k, packed.data());
    const PackedMatrix w{c.type, ks.layout, c.n, c.k, packed.data(), packed.size()};
    ActBuffer acts;
    quantize_and_check(c, ref.x, acts);
    const int64_t ldy = c.n + 7;
    for (const MatmulKernel* kernel : {ks.gemv, ks.gemm})
      for (auto [m0, m1, n0, n1] : {std::tuple<int64_t, int64_t, int64_t, int64_t>{3, 9, 16, 50},
                                    {0, 21, 0, 16}, {20, 21, 32, 48}, {5, 6, 48, 50}}) {
        std::vector<float> y(static_cast<size_t>(c.m * ldy), -7.0f);
        kernel->fn(w, acts.acts(), y.data(), ldy, m0, m1, n0, n1);
        for (int64_t m = 0; m < c.m; ++m)
          for (int64_t n = 0; n < ldy; ++n) {
            const float got = y[m * ldy + n];
            if (m >= m0 && m < m1 && n >= n0 && n < n1)
              ASSERT_EQ(0, std::memcmp(&got, &ref.y[m * c.n + n], 4))
                  << kernel->name << " m=" << m << " n=" << n;
            else
              ASSERT_EQ(got, -7.0f) << kernel->name << " wrote outside its block at m=" << m
                                    << " n=" << n;
          }
      }
  }
}

TEST_P(KernelExact, RefusesTensorPackedForAnotherLayout) {
  const KernelSet ks = select_kernels(GetParam(), GgmlType::Q8_0);
  std::vector<uint8_t> bytes(packed_bytes(Layout::q4_0_x16, 16, 64));
  const PackedMatrix wrong{GgmlType::Q4_0, Layout::q4_0_x16, 16, 64, bytes.data(), bytes.size()};
  ActBuffer acts;
  acts.resize(1, 64);
  std::vector<float> y(16);
  EXPECT_THROW(ks.gemv->fn(wrong, acts.acts(), y.data(), 16, 0, 1, 0, 16), Error);
  EXPECT_THROW(ks.gemm->fn(wrong, acts.acts(), y.data(), 16, 0, 1, 0, 16), Error);
}

// Tiers under test: every tier in the registry (ref against itself keeps the harness honest).
std::vector<Tier> registered_tiers() {
  std::set<int> seen;
  std::vector<Tier> tiers;
  for (const MatmulKernel& k : all_matmul_kernels())
    if (seen.insert(int(k.tier)).second) tiers.push_back(k.tier);
  return tiers;
}

INSTANTIATE_TEST_SUITE_P(Tiers, KernelExact, ::testing::ValuesIn(registered_tiers()),
                         [](const auto& info) {
                           std::string n(tier_name(info.param));
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

TEST(KernelRegistry, EveryTierHasBothShapesForBothTypes) {
  for (int t = 0; t < kTierCount; ++t)
    for (GgmlType type : {GgmlType::Q8_0, GgmlType::Q4_0})
      for (MatmulShape s : {MatmulShape::gemv, MatmulShape::gemm})
        EXPECT_NE(find_matmul_kernel(type, Tier(t), s), nullptr)
            << tier_name(Tier(t)) << " " << ggml_type_name(type) << " "
            << (s == MatmulShape::gemv ? "gemv" : "gemm");
}

TEST(KernelRegistry, KernelNamesAreUniqueAndNameTheirTier) {
  // A name appears twice only for the same function (the amx tier reuses the avx512 GEMV).
  std::map<std::string_view, MatmulFn> names;
  for (const MatmulKernel& k : all_matmul_kernels()) {
    auto [it, fresh] = names.emplace(k.name, k.fn);
    EXPECT_TRUE(fresh || it->second == k.fn) << k.name;
    EXPECT_NE(k.name.find(ggml_type_name(k.type)), std::string_view::npos) << k.name;
  }
}

}  // namespace
}  // namespace xtile
