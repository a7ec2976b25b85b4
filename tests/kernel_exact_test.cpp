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
#include "kernels/gemv_prefetch.h"
#include "kernels/pack/pack.h"
#include "kernels/ref/ref_kernels.h"
#include "kernels/registry.h"
#include "ops/matmul.h"
#include "quant/weight_terms.h"

namespace xtile {
namespace {
namespace kernel_exact_test {  // unity batches: CMakeLists.txt

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
  for (int64_t i = 0; i < c.m; ++i) quantize_act_row(ref::quantize_row, r.x.data() + i * c.k, qa, i);
  const Layout layout = layout_for(c.type, Tier::ref);
  PackedMatrix w{c.type, layout, c.n, c.k, r.weights.data(), r.weights.size()};
  r.y.assign(static_cast<size_t>(c.m * c.n), 0.0f);
  const MatmulKernel* k = find_matmul_kernel(c.type, Tier::ref, MatmulShape::gemm);
  k->fn(w, qa, r.y.data(), c.n, 0, c.m, 0, c.n);
  return cache.emplace(key, std::move(r)).first->second;
}

// The quantized weight types of the ladder (quant/weight_terms.h).
const GgmlType kTypes[] = {GgmlType::Q8_0, GgmlType::Q4_0, GgmlType::Q4_1,  GgmlType::Q5_0,
                           GgmlType::Q5_1, GgmlType::IQ4_NL, GgmlType::Q4_K, GgmlType::Q5_K,
                           GgmlType::Q6_K, GgmlType::IQ4_XS};

// Parameter: (tier, weight type). The ref tier is included: its kernel against itself only checks
// that the harness runs (the real check of ref is against the fixtures' float64 oracle,
// quant_fixture_test.cpp, and hand-computed blocks, weight_terms_test.cpp).
class KernelExact : public ::testing::TestWithParam<std::tuple<Tier, GgmlType>> {
 protected:
  Tier tier() const { return std::get<0>(GetParam()); }
  // The GEMV settings of gemv_prefetch.h (prefetch level, stream count, Q8_0's tile) are read by
  // the avx2 and avx512 GEMVs (amx's is avx512's); ref and amx-emu have none to read.
  bool reads_gemv_settings() const {
    return tier() == Tier::avx2 || tier() == Tier::avx512 || tier() == Tier::amx;
  }
  GgmlType type() const { return std::get<1>(GetParam()); }
  // The type's superblock: K values below are rounded up to a multiple of it.
  int64_t kq(int64_t k) const {
    const int64_t e = weight_format(type())->super_elems;
    return (k + e - 1) / e * e;
  }

  void SetUp() override {
    const std::string why = test::tier_unavailable(tier(), type());
    if (!why.empty())
      GTEST_SKIP() << "tier " << tier_name(tier()) << ", " << ggml_type_name(type())
                   << " skipped: " << why;
  }

  // Quantizes with the tier's quantizer and checks its bytes against ref's.
  void quantize_and_check(const Case& c, const std::vector<float>& x, ActBuffer& out) {
    const KernelSet ks = select_kernels(tier(), c.type);
    QuantizedActs& qa = out.resize(c.m, c.k);
    ActBuffer ref_buf;
    QuantizedActs& qr = ref_buf.resize(c.m, c.k);
    const int64_t nb = c.k / 32;
    for (int64_t i = 0; i < c.m; ++i) {
      quantize_act_row(ks.quantize, x.data() + i * c.k, qa, i);
      quantize_act_row(ref::quantize_row, x.data() + i * c.k, qr, i);
    }
    ASSERT_EQ(0, std::memcmp(qa.q, qr.q, c.m * c.k)) << ks.quantize_name << " q " << describe(c);
    ASSERT_EQ(0, std::memcmp(qa.d, qr.d, c.m * nb * 4)) << ks.quantize_name << " d " << describe(c);
    ASSERT_EQ(0, std::memcmp(qa.s, qr.s, c.m * nb * 4)) << ks.quantize_name << " s " << describe(c);
  }

  // Both kernels of the tier (GEMV and GEMM) over the whole output, and the threaded driver.
  void check(Case c, std::initializer_list<int> thread_counts = {2}) {
    c.type = type();
    c.k = kq(c.k);
    const RefResult& ref = ref_result(c);
    const KernelSet ks = select_kernels(tier(), c.type);
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
  for (int64_t m = 1; m <= 70; ++m) check({{}, m, 33, 96, uint32_t(m)});
  check({{}, 128, 33, 96, 128});
  check({{}, 512, 40, 128, 512});
}

TEST_P(KernelExact, NAroundTheInterleave) {
  for (int64_t n : {1, 2, 15, 16, 17, 31, 32, 33, 47, 48, 100, 4096 + 16})
    for (int64_t m : {1, 5, 17}) check({{}, m, n, 256, uint32_t(n * 31 + m)});
}

TEST_P(KernelExact, KUpTo11008) {
  // Multiples of 32 for the 32-element types; for the 256-element ones the same list rounded
  // up (256 ... 11008 = 43 superblocks), so both cover one block, odd counts and many. M = 7: the
  // avx2 GEMM's one-pass tile of 5..8 rows (tile_wide) resuming across its K chunks.
  for (int64_t k : {32, 64, 96, 128, 160, 224, 256, 288, 512, 768, 1024, 2048, 4096, 11008})
    for (int64_t m : {1, 4, 7, 19}) check({{}, m, 48, k, uint32_t(k + m)});
}

TEST_P(KernelExact, LargeShapes) {
  check({{}, 128, 100, 4096, 1});
  check({{}, 3, 4096 + 16, 2048, 2});
  check({{}, 64, 64, 11008, 3});
  // K = 2048: the avx2 GEMM's M chunks are 128 rows, so the last 6 rows are a chunk of their own
  // that it does not decode (tile_wide from row 128, after a decoded chunk).
  check({{}, 134, 40, 2048, 4});
}

TEST_P(KernelExact, SameBytesForOneToFourThreads) {
  check({{}, 1, 4096 + 16, 512, 11}, {1, 2, 3, 4});
  check({{}, 37, 200, 256, 12}, {1, 2, 3, 4});
  check({{}, 3, 16, 64, 13}, {1, 2, 3, 4});  // fewer groups than threads
}

// The GEMV's software prefetch goes to L1 or L2 by the CPU (gemv_prefetch.h); either way the
// bytes are the reference's.
TEST_P(KernelExact, BothGemvPrefetchLevelsGiveTheSameBytes) {
  if (!reads_gemv_settings())
    GTEST_SKIP() << tier_name(tier()) << " reads no GEMV setting (its GEMV is its own loop)";
  const PrefetchLevel before = gemv_prefetch();
  for (PrefetchLevel level : {PrefetchLevel::kL1, PrefetchLevel::kL2}) {
    set_gemv_prefetch(level);
    for (int64_t m : {1, 2, 4}) check({{}, m, 1024 + 16, 2048, uint32_t(40 + m)});
  }
  set_gemv_prefetch(before);
}

// The avx512 GEMV's one- and two-row tiles read one group stream or four at once by the CPU
// (gemv_streams(), gemv_prefetch.h); either way the bytes are the reference's, also where a
// range's last tile has fewer groups (1024 + 16 rows: 65 groups) and across thread splits.
TEST_P(KernelExact, BothGemvStreamCountsGiveTheSameBytes) {
  if (!reads_gemv_settings())
    GTEST_SKIP() << tier_name(tier()) << " reads no GEMV setting (its GEMV is its own loop)";
  const int before = gemv_streams();
  for (int streams : {1, 4}) {
    set_gemv_streams(streams);
    for (int64_t m : {1, 2, 3}) check({{}, m, 1024 + 16, 2048, uint32_t(50 + m)}, {1, 2, 3});
    check({{}, 1, 16 * 7, 256, 57}, {1, 2});
  }
  set_gemv_streams(before);
}

// The avx2 Q8_0 one-row tile reads four streams to L1 on Zen 3 whatever the streams setting says
// (gemv_q8_0_four_l1, gemv_prefetch.h); under either choice and either streams setting the bytes
// are the reference's, across thread splits and a range's short last tile (65 groups). Every
// type runs it: the others must not change with the choice either.
TEST_P(KernelExact, BothQ8_0TileChoicesGiveTheSameBytes) {
  if (!reads_gemv_settings())
    GTEST_SKIP() << tier_name(tier()) << " reads no GEMV setting (its GEMV is its own loop)";
  const bool before = gemv_q8_0_four_l1();
  const int streams_before = gemv_streams();
  for (bool four_l1 : {false, true})
    for (int streams : {1, 4}) {
      set_gemv_q8_0_four_l1(four_l1);
      set_gemv_streams(streams);
      for (int64_t m : {1, 2}) check({{}, m, 1024 + 16, 2048, uint32_t(60 + m)}, {1, 2, 3});
      check({{}, 1, 16 * 7, 256, 67}, {1, 2});
    }
  set_gemv_q8_0_four_l1(before);
  set_gemv_streams(streams_before);
}

TEST_P(KernelExact, ExtremeValues) {
  // Every code at its minimum or maximum with the largest scale codes (Q6_K's -32 with its
  // sub-scales at -128 and 127, IQ4's -127 and 113, the fifth bits of Q5_*), against activations
  // at ±127 in every block: where int16 intermediates (VPMADDUBSW) would saturate if a kernel
  // took a shortcut. Also the activations' special values (denormal blocks, NaN elements).
  for (WeightPattern wp : {WeightPattern::all_min, WeightPattern::all_max, WeightPattern::zeros,
                           WeightPattern::alternating_extremes, WeightPattern::random})
    for (ActPattern ap : {ActPattern::extremes, ActPattern::zeros, ActPattern::ties,
                          ActPattern::specials, ActPattern::random})
      for (int64_t m : {1, 2, 8, 20})
        check({{}, m, 33, 256, uint32_t(m * 100 + int(wp) * 10 + int(ap)), wp, ap});
}

TEST_P(KernelExact, SubRangesWriteOnlyTheirOutputs) {
  // A kernel given [m0, m1) × [n0, n1) writes exactly that block of y (row stride ldy > n).
  const Case c{type(), 21, 50, kq(128), 77};
  const RefResult& ref = ref_result(c);
  const KernelSet ks = select_kernels(tier(), c.type);
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

TEST_P(KernelExact, RefusesTensorPackedForAnotherLayout) {
  // The same matrix packed for another type's kernels (Q4_0 for every type but Q4_0 itself).
  const GgmlType other = type() == GgmlType::Q4_0 ? GgmlType::Q8_0 : GgmlType::Q4_0;
  const KernelSet ks = select_kernels(tier(), type());
  const Layout wrong_layout = layout_for(other, tier());
  std::vector<uint8_t> bytes(packed_bytes(wrong_layout, 16, 256));
  const PackedMatrix wrong{other, wrong_layout, 16, 256, bytes.data(), bytes.size()};
  ActBuffer acts;
  acts.resize(1, 256);
  std::vector<float> y(16);
  EXPECT_THROW(ks.gemv->fn(wrong, acts.acts(), y.data(), 16, 0, 1, 0, 16), Error);
  EXPECT_THROW(ks.gemm->fn(wrong, acts.acts(), y.data(), 16, 0, 1, 0, 16), Error);
}

// Tiers under test: every tier in the registry.
std::vector<Tier> registered_tiers() {
  std::set<int> seen;
  std::vector<Tier> tiers;
  for (const MatmulKernel& k : all_matmul_kernels())
    if (seen.insert(int(k.tier)).second) tiers.push_back(k.tier);
  return tiers;
}

INSTANTIATE_TEST_SUITE_P(Tiers, KernelExact,
                         ::testing::Combine(::testing::ValuesIn(registered_tiers()),
                                            ::testing::ValuesIn(kTypes)),
                         [](const auto& info) {
                           std::string n(tier_name(std::get<0>(info.param)));
                           n += "_";
                           n += ggml_type_name(std::get<1>(info.param));
                           for (char& ch : n) if (ch == '-') ch = '_';
                           return n;
                         });

TEST(KernelRegistry, EveryTierHasBothShapesForEveryType) {
  for (int t = 0; t < kTierCount; ++t)
    for (GgmlType type : kTypes)
      for (MatmulShape s : {MatmulShape::gemv, MatmulShape::gemm})
        EXPECT_NE(find_matmul_kernel(type, Tier(t), s), nullptr)
            << tier_name(Tier(t)) << " " << ggml_type_name(type) << " "
            << (s == MatmulShape::gemv ? "gemv" : "gemm");
}

TEST(KernelRegistry, KernelNamesAreUniqueAndNameTheirTier) {
  // "<type>_<shape>_<block>__<isa>". A name appears twice only for the same function (the amx
  // tier reuses the avx512 VNNI kernels where tiles do not pay, the amx-emu tier the ref kernel
  // for Q6_K); the isa suffix must be one the tier may run.
  const std::map<Tier, std::set<std::string_view>> isas = {
      {Tier::ref, {"ref"}},
      {Tier::avx2, {"avx2"}},
      {Tier::avx512, {"avx512vnni"}},
      {Tier::amx, {"amx", "avx512vnni"}},
      {Tier::amx_emu, {"amx_emu", "ref"}}};
  std::map<std::string_view, MatmulFn> names;
  for (const MatmulKernel& k : all_matmul_kernels()) {
    auto [it, fresh] = names.emplace(k.name, k.fn);
    EXPECT_TRUE(fresh || it->second == k.fn) << k.name;
    const std::string type_prefix = std::string(ggml_type_name(k.type)) + "_";
    EXPECT_EQ(k.name.substr(0, type_prefix.size()), type_prefix) << k.name;
    const std::string shape = k.shape == MatmulShape::gemv ? "_gemv_" : "_gemm_";
    EXPECT_NE(k.name.find(shape), std::string_view::npos) << k.name;
    const size_t sep = k.name.rfind("__");
    ASSERT_NE(sep, std::string_view::npos) << k.name;
    EXPECT_TRUE(isas.at(k.tier).count(k.name.substr(sep + 2)))
        << k.name << " is registered for tier " << tier_name(k.tier);
  }
}

}  // namespace kernel_exact_test
}  // namespace
}  // namespace xtile
