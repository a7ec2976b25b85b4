// The float ops of the forward pass against float64 references written out by hand, and their
// determinism: the same bits for any thread count and any batch a row arrives in.
#include "ops/ops.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "base/fp16.h"
#include "cpu/thread_pool.h"
#include "kernels/attention_isa.h"
#include "ops/attention.h"
#include "ops/lanes16.h"
#include "ops/matmul_float.h"
#include "test_util.h"

namespace xtile {
namespace {
namespace ops_test {  // unity batches: CMakeLists.txt

std::vector<float> random_vec(size_t n, uint32_t seed, float scale = 1.0f) {
  return test::random_normal(n, seed, scale);
}

// |error| bound of a float sum of n terms with magnitudes summing to `abs_sum`: each of the
// at most n additions rounds by <= eps/2 of a partial sum bounded by abs_sum (Higham), plus the
// rounding of each product.
double sum_bound(int64_t n, double abs_sum) {
  return (static_cast<double>(n) + 2.0) * std::numeric_limits<float>::epsilon() * abs_sum;
}

TEST(OpsTest, DotAndSumFollowTheSixteenLaneOrder) {
  // The order of ops.h written out independently: lane i % 16 in ascending i, then the fold
  // w = 8, 4, 2, 1. Values spanning 16 orders of magnitude make any other order give other bits.
  for (int64_t n : {1, 15, 16, 17, 33, 100, 1000}) {
    std::vector<float> a = random_vec(static_cast<size_t>(n), 1u + static_cast<uint32_t>(n));
    std::vector<float> b = random_vec(static_cast<size_t>(n), 99u + static_cast<uint32_t>(n));
    for (int64_t i = 0; i < n; i += 3) a[static_cast<size_t>(i)] *= 1e8f;
    float lanes[16] = {};
    float slanes[16] = {};
    for (int64_t i = 0; i < n; ++i) {
      const float p = a[static_cast<size_t>(i)] * b[static_cast<size_t>(i)];
      lanes[i % 16] = lanes[i % 16] + p;
      slanes[i % 16] = slanes[i % 16] + a[static_cast<size_t>(i)];
    }
    for (int w = 8; w >= 1; w /= 2)
      for (int j = 0; j < w; ++j) {
        lanes[j] = lanes[j] + lanes[j + w];
        slanes[j] = slanes[j] + slanes[j + w];
      }
    const float d = ops::dot(a.data(), b.data(), n);
    const float s = ops::sum(a.data(), n);
    EXPECT_EQ(std::memcmp(&d, &lanes[0], 4), 0) << "n=" << n << " " << d << " vs " << lanes[0];
    EXPECT_EQ(std::memcmp(&s, &slanes[0], 4), 0) << "n=" << n;
  }
}

TEST(OpsTest, DotsHaveEachRowsDotBits) {
  // ops::dots takes four rows at a time; every result must be ops::dot's bits for its row, for
  // any count (the groups of four and the remainder), any length (the lanes' tail) and a row
  // stride longer than the rows. Values spanning 16 orders of magnitude expose any reordering.
  for (int64_t n : {1, 15, 16, 17, 100, 1000, 2048}) {
    const int64_t stride = n + 5;
    for (int64_t count : {0, 1, 3, 4, 5, 8, 9, 128}) {
      std::vector<float> a = random_vec(static_cast<size_t>(count * stride + 1),
                                        7u + static_cast<uint32_t>(n + count));
      std::vector<float> b = random_vec(static_cast<size_t>(n), 11u + static_cast<uint32_t>(n));
      for (size_t i = 0; i < a.size(); i += 5) a[i] *= 1e8f;
      std::vector<float> out(static_cast<size_t>(count) + 1, -1.0f);
      ops::dots(a.data(), stride, count, b.data(), n, out.data());
      for (int64_t r = 0; r < count; ++r) {
        const float want = ops::dot(a.data() + r * stride, b.data(), n);
        EXPECT_EQ(std::memcmp(&out[static_cast<size_t>(r)], &want, 4), 0)
            << "n=" << n << " count=" << count << " row " << r;
      }
      EXPECT_EQ(out[static_cast<size_t>(count)], -1.0f) << "wrote past count";
    }
  }
}

TEST(OpsTest, DotIsCloseToFloat64) {
  for (int64_t n : {1, 7, 64, 1000, 4096}) {
    const auto a = random_vec(static_cast<size_t>(n), 5);
    const auto b = random_vec(static_cast<size_t>(n), 6);
    double ref = 0, abs_sum = 0;
    for (size_t i = 0; i < a.size(); ++i) {
      ref += static_cast<double>(a[i]) * b[i];
      abs_sum += std::fabs(static_cast<double>(a[i]) * b[i]);
    }
    EXPECT_NEAR(ops::dot(a.data(), b.data(), n), ref, sum_bound(n, abs_sum)) << "n=" << n;
  }
}

TEST(OpsTest, Fp16RowConversionsAreExactAndAgreeWithThePortableLoops) {
  std::vector<uint16_t> all(65536);
  for (uint32_t h = 0; h < 65536; ++h) all[h] = static_cast<uint16_t>(h);
  std::vector<float> row(65536), portable(65536);
  ops::f16_to_f32_row(all.data(), row.data(), 65536);  // F16C where the CPU has it
  ops::f16_to_f32_row_portable(all.data(), portable.data(), 65536);
  for (uint32_t h = 0; h < 65536; ++h) {
    const float b = fp16_to_fp32(static_cast<uint16_t>(h));
    ASSERT_EQ(std::memcmp(&row[h], &b, 4), 0) << "row conversion, h=" << h;
    ASSERT_EQ(std::memcmp(&portable[h], &b, 4), 0) << "portable row conversion, h=" << h;
  }
  // f32 → f16: every half's value, its neighbours, halfway points, and random bit patterns.
  std::vector<float> x;
  std::mt19937 rng(5);
  for (uint32_t h = 0; h < 65536; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    x.push_back(f);
    x.push_back(std::nextafter(f, INFINITY));
    x.push_back(std::nextafter(f, -INFINITY));
  }
  for (int i = 0; i < 200000; ++i) {
    const uint32_t bits = rng();
    float f;
    std::memcpy(&f, &bits, 4);
    x.push_back(f);
  }
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> fast(x.size()), slow(x.size());
  ops::f32_to_f16_row(x.data(), fast.data(), n);
  ops::f32_to_f16_row_portable(x.data(), slow.data(), n);
  for (size_t i = 0; i < x.size(); ++i)
    ASSERT_EQ(fast[i], slow[i]) << "f32 -> f16 of " << x[i] << " (element " << i << ")";
}

TEST(OpsTest, RmsNormMatchesFloat64) {
  for (int64_t n : {8, 16, 64, 172, 1024}) {
    const auto x = random_vec(static_cast<size_t>(n), 11, 3.0f);
    const auto w = random_vec(static_cast<size_t>(n), 12);
    const float eps = 1e-5f;
    double ss = 0;
    for (float v : x) ss += static_cast<double>(v) * v;
    const double scale = 1.0 / std::sqrt(ss / static_cast<double>(n) + eps);
    std::vector<float> y(static_cast<size_t>(n));
    ops::rmsnorm_row(x.data(), w.data(), n, eps, y.data());
    for (size_t i = 0; i < y.size(); ++i) {
      const double ref = x[i] * scale * w[i];
      // A few roundings of ~eps each on a value of magnitude |ref|.
      EXPECT_NEAR(y[i], ref, 1e-5 * std::fabs(ref) + 1e-30) << "n=" << n << " i=" << i;
    }
  }
}

TEST(OpsTest, RmsNormIsTheSameForEveryThreadCount) {
  const int64_t rows = 37, n = 96;
  const auto x = random_vec(static_cast<size_t>(rows * n), 21);
  const auto w = random_vec(static_cast<size_t>(n), 22);
  std::vector<float> base(x.size());
  ThreadPool one(1);
  ops::rmsnorm(one, x.data(), n, w.data(), rows, n, 1e-6f, base.data(), n);
  for (int t : {2, 3, 5}) {
    ThreadPool pool(t);
    std::vector<float> y(x.size());
    ops::rmsnorm(pool, x.data(), n, w.data(), rows, n, 1e-6f, y.data(), n);
    EXPECT_EQ(std::memcmp(y.data(), base.data(), y.size() * 4), 0) << t << " threads";
  }
}

// RoPE by its definition in float64: pair i of (x[a_i], x[b_i]) turns by pos * base^(-2i/n_rot).
std::vector<double> rope_ref(const std::vector<float>& x, bool neox, int64_t n_rot, int64_t pos,
                             double base) {
  std::vector<double> y(x.begin(), x.end());
  for (int64_t i = 0; i < n_rot / 2; ++i) {
    const double theta = static_cast<double>(pos) * std::pow(base, -2.0 * i / n_rot);
    const size_t a = neox ? static_cast<size_t>(i) : static_cast<size_t>(2 * i);
    const size_t b = neox ? static_cast<size_t>(i + n_rot / 2) : a + 1;
    y[a] = x[a] * std::cos(theta) - x[b] * std::sin(theta);
    y[b] = x[a] * std::sin(theta) + x[b] * std::cos(theta);
  }
  return y;
}

void check_rope(ops::RopeMode mode, int64_t head_dim, int64_t n_rot, int64_t pos, double base) {
  auto x = random_vec(static_cast<size_t>(head_dim), 31 + static_cast<uint32_t>(pos));
  const auto ref = rope_ref(x, mode == ops::RopeMode::neox, n_rot, pos, base);
  std::vector<double> inv(static_cast<size_t>(n_rot / 2));
  std::vector<float> c(inv.size()), s(inv.size());
  ops::rope_inv_freq(base, n_rot, nullptr, 1.0, inv.data());
  ops::rope_cos_sin(pos, inv.data(), n_rot, c.data(), s.data());
  ops::rope_head(mode, x.data(), n_rot, c.data(), s.data());
  for (size_t i = 0; i < x.size(); ++i)
    EXPECT_NEAR(x[i], ref[i], 2e-6 * (1.0 + std::fabs(ref[i])))
        << (mode == ops::RopeMode::neox ? "neox" : "norm") << " dim " << i << " pos " << pos;
}

TEST(OpsTest, RopeNormModeRotatesAdjacentPairs) {
  for (int64_t pos : {0, 1, 5, 77, 4000}) check_rope(ops::RopeMode::norm, 16, 16, pos, 10000.0);
  check_rope(ops::RopeMode::norm, 128, 64, 300, 500000.0);  // partial rotary: tail untouched
}

TEST(OpsTest, RopeNeoxModeRotatesHalves) {
  for (int64_t pos : {0, 1, 5, 77, 4000}) check_rope(ops::RopeMode::neox, 16, 16, pos, 1e6);
  check_rope(ops::RopeMode::neox, 128, 128, 12345, 1e6);
}

TEST(OpsTest, RopeModesDiffer) {
  // Guard against a reference that would accept either pairing.
  auto a = random_vec(16, 3);
  auto b = a;
  std::vector<double> inv(8);
  std::vector<float> c(8), s(8);
  ops::rope_inv_freq(10000.0, 16, nullptr, 1.0, inv.data());
  ops::rope_cos_sin(3, inv.data(), 16, c.data(), s.data());
  ops::rope_head(ops::RopeMode::norm, a.data(), 16, c.data(), s.data());
  ops::rope_head(ops::RopeMode::neox, b.data(), 16, c.data(), s.data());
  EXPECT_NE(std::memcmp(a.data(), b.data(), 64), 0);
}

TEST(OpsTest, RopeLinearScalingAndFreqFactorsDivideTheFrequency) {
  std::vector<double> plain(4), scaled(4);
  const std::vector<float> factors = {1.0f, 2.0f, 4.0f, 8.0f};
  ops::rope_inv_freq(10000.0, 8, nullptr, 1.0, plain.data());
  ops::rope_inv_freq(10000.0, 8, factors.data(), 2.0, scaled.data());
  for (size_t i = 0; i < 4; ++i) EXPECT_DOUBLE_EQ(scaled[i], plain[i] / (2.0 * factors[i]));
}

TEST(OpsTest, SoftmaxMatchesFloat64) {
  for (int64_t n : {1, 2, 17, 512}) {
    auto x = random_vec(static_cast<size_t>(n), 41, 5.0f);
    x[0] = 1000.0f;  // large values must not overflow (the max is subtracted)
    std::vector<double> ref(x.size());
    double mx = -1e300, sum = 0;
    for (float v : x) mx = std::max(mx, static_cast<double>(v));
    for (size_t i = 0; i < x.size(); ++i) sum += ref[i] = std::exp(x[i] - mx);
    ops::softmax_row(x.data(), n);
    double total = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_NEAR(x[i], ref[i] / sum, 1e-6) << "n=" << n << " i=" << i;
      total += x[i];
    }
    EXPECT_NEAR(total, 1.0, 1e-5);
  }
}

TEST(OpsTest, SwigluMatchesFloat64) {
  const auto g = random_vec(100, 51, 4.0f);
  const auto u = random_vec(100, 52);
  std::vector<float> y(100);
  ops::swiglu_row(g.data(), u.data(), y.data(), 100);
  for (size_t i = 0; i < y.size(); ++i) {
    const double ref = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
    EXPECT_NEAR(y[i], ref, 1e-6 * (1.0 + std::fabs(ref)));
  }
}

// The lanes16.h versions are picked by the CPU through the caller in ops.cpp: a call from
// another translation unit once reached the baseline version on every CPU.
TEST(OpsTest, LanesFunctionsRunAtTheCpusWidth) {
  const int want = __builtin_cpu_supports("avx512f") ? 16 : __builtin_cpu_supports("avx2") ? 8 : 4;
  EXPECT_EQ(ops::lanes_width(), want);
}

TEST(OpsTest, ArgmaxTakesTheFirstMaximum) {
  const std::vector<float> x = {1.0f, 3.0f, -2.0f, 3.0f};
  EXPECT_EQ(ops::argmax(x.data(), 4), 1);
}

// The vectorized argmax against the one-at-a-time loop it replaces, on every length around the
// 16-lane steps and a vocabulary's, with ties, ±0, infinities and NaNs (also at 0) in any place.
TEST(OpsTest, ArgmaxIsTheScalarLoopsIndex) {
  auto scalar = [](const float* x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; ++i)
      if (x[i] > x[best]) best = i;
    return best;
  };
  std::mt19937 rng(11);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const float specials[] = {0.0f, -0.0f, inf, -inf, nan, 7.0f, 7.0f};
  std::vector<int64_t> lengths;
  for (int64_t n = 1; n <= 70; ++n) lengths.push_back(n);
  lengths.push_back(151936);
  int checked = 0;
  for (int64_t n : lengths)
    for (int trial = 0; trial < 12; ++trial) {
      std::vector<float> x(static_cast<size_t>(n));
      // Few distinct values (ties) in some trials, a wide spread in others.
      std::uniform_int_distribution<int> small(-3, 3);
      std::normal_distribution<float> wide(0.0f, 10.0f);
      for (float& v : x) v = trial % 2 ? static_cast<float>(small(rng)) : wide(rng);
      std::uniform_int_distribution<int64_t> at(0, n - 1);
      std::uniform_int_distribution<int> which(0, std::size(specials) - 1);
      for (int s = 0; s < trial % 4; ++s) x[static_cast<size_t>(at(rng))] = specials[which(rng)];
      if (trial == 11) x[0] = nan;
      ASSERT_EQ(ops::argmax(x.data(), n), scalar(x.data(), n)) << "n=" << n << " trial " << trial;
      ++checked;
    }
  EXPECT_EQ(checked, 71 * 12);
}

TEST(OpsTest, MatmulF32MatchesFloat64AndThreadCounts) {
  const int64_t n = 45, k = 172, m = 9;
  const auto w = random_vec(static_cast<size_t>(n * k), 61);
  const auto x = random_vec(static_cast<size_t>(m * k), 62);
  std::vector<float> base(static_cast<size_t>(m * n));
  ThreadPool one(1);
  matmul_f32(one, w.data(), n, k, x.data(), k, m, base.data(), n);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      double ref = 0, abs_sum = 0;
      for (int64_t q = 0; q < k; ++q) {
        const double p = static_cast<double>(w[static_cast<size_t>(j * k + q)]) *
                         x[static_cast<size_t>(i * k + q)];
        ref += p;
        abs_sum += std::fabs(p);
      }
      EXPECT_NEAR(base[static_cast<size_t>(i * n + j)], ref, sum_bound(k, abs_sum));
    }
  for (int t : {2, 3, 4}) {
    ThreadPool pool(t);
    for (int64_t rows : {int64_t{1}, m}) {
      std::vector<float> y(static_cast<size_t>(rows * n));
      matmul_f32(pool, w.data(), n, k, x.data(), k, rows, y.data(), n);
      EXPECT_EQ(std::memcmp(y.data(), base.data(), y.size() * 4), 0)
          << t << " threads, " << rows << " rows";
    }
  }
}

// lanes::exp (softmax and SiLU) against float64: within 2 ulp wherever e^x is a normal float,
// and expf's limits outside (overflow to +inf, underflow to 0, NaN kept).
TEST(OpsTest, LanesExpIsWithinTwoUlpAndKeepsTheLimits) {
  auto exp1 = [](float x) { return ops::lanes::exp_native<4>(ops::lanes::Native<4>{} + x)[0]; };
  int64_t checked = 0;
  int worst_ulp = 0;
  for (float x = -87.3f; x < 88.7f; x = std::nextafter(x + 0.000731f, 100.0f)) {
    const double want = std::exp(static_cast<double>(x));
    const float got = exp1(x);
    const float ulp = std::nextafter(static_cast<float>(want), INFINITY) - static_cast<float>(want);
    const int err = static_cast<int>(std::lround(std::fabs(got - want) / ulp));
    worst_ulp = std::max(worst_ulp, err);
    ++checked;
  }
  EXPECT_GT(checked, 200000);
  EXPECT_LE(worst_ulp, 2);
  EXPECT_EQ(exp1(0.0f), 1.0f);
  EXPECT_EQ(exp1(-0.0f), 1.0f);
  EXPECT_EQ(exp1(89.0f), INFINITY);
  EXPECT_EQ(exp1(INFINITY), INFINITY);
  EXPECT_EQ(exp1(-INFINITY), 0.0f);
  EXPECT_EQ(exp1(-200.0f), 0.0f);
  EXPECT_GT(exp1(-100.0f), 0.0f);  // a subnormal, as expf
  EXPECT_LT(exp1(-100.0f), 1e-43f);
  EXPECT_TRUE(std::isnan(exp1(NAN)));
}

// The ISA objects' lanes::exp (the softmax's in attention: fused multiply-adds, on AVX-512 the
// scaling by 2^n in one VSCALEFPS) gives the bits of the baseline's 4-lane one (fmaf, the
// two-factor scaling) for every kind of input: a fine sweep over the whole range, the subnormal
// results below -87.34, the clamps' edges and ulps around them, infinities, NaNs with payloads and
// random bit patterns.
TEST(OpsTest, LanesExpInTheIsaObjectsGivesTheBaselineBits) {
  std::vector<float> x;
  for (float v = -110.0f; v < 95.0f; v = std::nextafter(v + 0.00137f, 100.0f)) x.push_back(v);
  for (float edge : {88.72283935546875f, -103.972084045410156f, -87.3365f, -87.33654475f, 0.0f,
                     0.34657359f, -0.34657359f}) {
    float up = edge, down = edge;
    for (int i = 0; i < 64; ++i) {
      x.push_back(up);
      x.push_back(down);
      up = std::nextafter(up, INFINITY);
      down = std::nextafter(down, -INFINITY);
    }
  }
  for (float special :
       {INFINITY, -INFINITY, NAN, -NAN, -0.0f, std::numeric_limits<float>::max(),
        -std::numeric_limits<float>::max(), std::numeric_limits<float>::denorm_min(),
        -std::numeric_limits<float>::denorm_min()})
    x.push_back(special);
  std::mt19937 rng(7);
  for (int i = 0; i < 100000; ++i) {
    const uint32_t bits = rng();  // any float: NaNs with payloads, subnormals, huge values
    float v;
    std::memcpy(&v, &bits, 4);
    x.push_back(v);
  }
  while (x.size() % 16 != 0) x.push_back(-1.0f);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<float> want(x.size());
  for (int64_t i = 0; i < n; i += 4) {
    ops::lanes::Native<4> v;
    std::memcpy(&v, x.data() + i, sizeof v);
    const ops::lanes::Native<4> e = ops::lanes::exp_native<4>(v);
    std::memcpy(want.data() + i, &e, sizeof e);
  }
  int checked = 0;
  const auto expect_same = [&](const char* width, void (*exp_fn)(const float*, float*, int64_t)) {
    std::vector<float> got(x.size(), 1.0f);
    exp_fn(x.data(), got.data(), n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(std::memcmp(&got[i], &want[i], 4), 0)
          << width << ": e^" << x[i] << " gave " << got[i] << ", the baseline " << want[i];
    ++checked;
  };
  if (ops::attention_path_available(ops::AttentionPath::lanes_isa_w8))
    expect_same("avx2", avx2::attention_exp);
  if (ops::attention_path_available(ops::AttentionPath::lanes_isa_w16))
    expect_same("avx512", avx512::attention_exp);
  if (checked == 0) GTEST_SKIP() << "this CPU has neither the avx2 nor the avx512 tier";
}

// The three vector widths (AVX-512, AVX2, baseline) give the same bits: fold16 against the
// scalar 16-lane fold of ops.h, and exp across widths. (Compiled here for baseline x86-64,
// W = 8 and 16 run through GCC's generic lowering: the same operations, just not in one
// register.)
template <int W>
void expect_lanes_width_matches_scalar(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> mag(-30.0f, 30.0f);
  ops::lanes::F16<W> acc[16];
  float flat[16][16];
  for (int p = 0; p < 16; ++p) {
    for (int j = 0; j < 16; ++j) flat[p][j] = std::ldexp(mag(rng), static_cast<int>(mag(rng)) / 3);
    acc[p] = ops::lanes::load<W>(flat[p]);
  }
  const ops::lanes::F16<W> folded = ops::lanes::fold16(acc);
  for (int p = 0; p < 16; ++p) {
    float a[16];
    std::memcpy(a, flat[p], sizeof a);
    for (int j = 0; j < 8; ++j) a[j] += a[j + 8];
    for (int j = 0; j < 4; ++j) a[j] += a[j + 4];
    for (int j = 0; j < 2; ++j) a[j] += a[j + 2];
    const float want = a[0] + a[1];
    const float got = ops::lanes::lane(folded, p);
    EXPECT_EQ(std::memcmp(&got, &want, 4), 0) << "W=" << W << " value " << p;
  }
  for (int p = 0; p < 16; ++p) {
    const ops::lanes::F16<W> e = ops::lanes::exp(acc[p]);
    const ops::lanes::F16<4> e4 = ops::lanes::exp(ops::lanes::load<4>(flat[p]));
    EXPECT_EQ(std::memcmp(&e, &e4, sizeof e), 0) << "W=" << W << " exp of value " << p;
  }
}

TEST(OpsTest, LanesGiveTheSameBitsAtEveryWidth) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    expect_lanes_width_matches_scalar<4>(seed);
    expect_lanes_width_matches_scalar<8>(seed);
    expect_lanes_width_matches_scalar<16>(seed);
  }
}

}  // namespace ops_test
}  // namespace
}  // namespace xtile
