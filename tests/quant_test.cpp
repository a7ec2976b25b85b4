// The reference quantizers against hand-computed bytes (src/quant/quant.h, DESIGN.md §3.1), plus
// seeded random checks of the error bounds and of the relations between the three rounding rules.
#include "quant/quant.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "base/error.h"
#include "base/fp16.h"

namespace xtile {
namespace {
namespace quant_test {  // unity batches: CMakeLists.txt

struct Acts {
  std::vector<int8_t> q;
  std::vector<float> d;
  std::vector<int32_t> s;
};

Acts quantize_acts(const std::vector<float>& x) {
  const int64_t k = static_cast<int64_t>(x.size());
  Acts a{std::vector<int8_t>(k), std::vector<float>(k / kQK), std::vector<int32_t>(k / kQK)};
  quantize_acts_row_ref(x.data(), k, a.q.data(), a.d.data(), a.s.data());
  return a;
}

BlockQ8_0 quantize_q8(const std::vector<float>& x) {
  EXPECT_EQ(x.size(), static_cast<size_t>(kQK));
  BlockQ8_0 b;
  quantize_row_q8_0(x.data(), &b, kQK);
  return b;
}

BlockQ4_0 quantize_q4(const std::vector<float>& x) {
  EXPECT_EQ(x.size(), static_cast<size_t>(kQK));
  BlockQ4_0 b;
  quantize_row_q4_0(x.data(), &b, kQK);
  return b;
}

uint32_t bits(float f) {
  return std::bit_cast<uint32_t>(f);
}

// 2^e as a float, exact for every e in [-149, 127] (std::ldexp is exact for these).
float pow2(int e) {
  return std::ldexp(1.0f, e);
}

std::vector<float> random_row(std::mt19937& rng, int64_t k) {
  // Blocks of very different magnitudes (scale 2^-16 .. 2^12), some all-zero, some with a single
  // spike: the shapes activations and weights actually have. The top keeps Q4_0's d = max / -8
  // below fp16's 65504 (it overflows to inf above |max| = 524032, in ggml too); the bottom gives
  // Q8_0 scales that are fp16 subnormals.
  std::vector<float> x(k);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> e(-16, 12), kind(0, 9), pos(0, kQK - 1);
  for (int64_t b = 0; b < k / kQK; ++b) {
    const float scale = pow2(e(rng));
    const int shape = kind(rng);
    for (int j = 0; j < kQK; ++j) x[b * kQK + j] = shape == 0 ? 0.0f : u(rng) * scale;
    if (shape == 1) x[b * kQK + pos(rng)] = 50.0f * scale;
  }
  return x;
}

// ----------------------------------------------------------------------------------------------
// Q8_0

TEST(QuantQ8_0, AllZeroBlockHasZeroScaleAndCodes) {
  std::vector<float> x(2 * kQK, 0.0f);
  x[3] = -0.0f;  // -0 * 0 rounds to -0, which must still be the byte 0
  BlockQ8_0 y[2];
  quantize_row_q8_0(x.data(), y, 2 * kQK);
  for (const BlockQ8_0& b : y) {
    EXPECT_EQ(b.d, 0x0000);
    for (int j = 0; j < kQK; ++j) EXPECT_EQ(b.qs[j], 0) << j;
  }
  std::vector<float> back(2 * kQK, 1.0f);
  dequantize_row_q8_0(y, back.data(), 2 * kQK);
  for (float v : back) EXPECT_EQ(v, 0.0f);
}

TEST(QuantQ8_0, AmaxOf127GivesScaleOneAndCodesEqualToInputs) {
  std::vector<float> x(kQK);
  for (int j = 0; j < kQK - 1; ++j) x[j] = static_cast<float>(j - 16);  // -16 .. 14
  x[kQK - 1] = -127.0f;
  const BlockQ8_0 b = quantize_q8(x);
  EXPECT_EQ(b.d, 0x3c00);  // 1.0 in fp16
  for (int j = 0; j < kQK; ++j) EXPECT_EQ(b.qs[j], static_cast<int8_t>(x[j])) << j;
  std::vector<float> back(kQK);
  dequantize_row_q8_0(&b, back.data(), kQK);
  EXPECT_EQ(back, x);
}

TEST(QuantQ8_0, HalfwayCasesRoundAwayFromZero) {
  // amax = 127 makes d = 1 and id = 1, so x * id is exactly the half-integer written here.
  std::vector<float> x(kQK, 0.0f);
  x[0] = 127.0f;
  const float in[] = {2.5f, 3.5f, -2.5f, 0.5f, -0.5f, 1.5f, -3.5f, 126.5f, -126.5f};
  const int8_t want[] = {3, 4, -3, 1, -1, 2, -4, 127, -127};  // roundf: half away from zero
  for (int i = 0; i < 9; ++i) x[1 + i] = in[i];
  const BlockQ8_0 b = quantize_q8(x);
  EXPECT_EQ(b.d, 0x3c00);
  EXPECT_EQ(b.qs[0], 127);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(b.qs[1 + i], want[i]) << "x = " << in[i];
}

// The codes are roundf(x · id) (ggml's quantize_row_q8_0_ref) for random rows of many scales and
// for the floats on either side of every half, where a rounding written another way would differ.
TEST(QuantQ8_0, CodesAreRoundfOfTheScaledValues) {
  std::mt19937 rng(4242);
  std::vector<float> x(64 * kQK);
  for (size_t i = 0; i < x.size(); ++i) {
    const float scale = std::ldexp(1.0f, static_cast<int>(i / kQK % 40) - 20);
    x[i] = std::normal_distribution<float>(0.0f, scale)(rng);
  }
  for (int h = 0; h < 127; ++h) {  // block 0 of these: amax 127, so id = 1 and x · id = x
    float* b = x.data() + (h % 8) * kQK;
    b[0] = 127.0f;
    b[1 + (h / 8) % 31] = std::nextafter(h + 0.5f, 0.0f);
  }
  for (int h = 0; h < 31; ++h) {
    x[8 * kQK + 1 + h] = std::nextafter(h + 0.5f, 200.0f);
    x[9 * kQK + 1 + h] = -std::nextafter(h + 0.5f, 0.0f);
    x[10 * kQK + 1 + h] = -(h + 96.5f);
  }
  x[8 * kQK] = x[9 * kQK] = x[10 * kQK] = 127.0f;
  std::vector<BlockQ8_0> y(x.size() / kQK);
  quantize_row_q8_0(x.data(), y.data(), static_cast<int64_t>(x.size()));
  for (size_t b = 0; b < y.size(); ++b) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[b * kQK + j]));
    const float d = amax / 127.0f, id = d == 0.0f ? 0.0f : 1.0f / d;
    for (int j = 0; j < kQK; ++j) {
      const float want = std::clamp(std::round(x[b * kQK + j] * id), -127.0f, 127.0f);
      ASSERT_EQ(y[b].qs[j], static_cast<int8_t>(want)) << "block " << b << " x " << x[b * kQK + j];
    }
  }
}

TEST(QuantQ8_0, PlusMinusAmaxMapTo127) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::uniform_int_distribution<int> e(-30, 30);
  for (int trial = 0; trial < 2000; ++trial) {
    std::vector<float> x(kQK);
    const float scale = pow2(e(rng));
    for (float& v : x) v = u(rng) * scale;
    const float amax = 1.5f * scale;
    x[trial % kQK] = amax;
    x[(trial + 5) % kQK] = -amax;
    const BlockQ8_0 b = quantize_q8(x);
    ASSERT_EQ(b.qs[trial % kQK], 127) << "amax " << amax;
    ASSERT_EQ(b.qs[(trial + 5) % kQK], -127) << "amax " << amax;
  }
}

TEST(QuantQ8_0, TinyScaleUnderflowsInFp16ButCodesFollowFp32Scale) {
  // amax = 127 * 2^-127 (a normal float) gives d = 2^-127 exactly (a denormal) and id = 2^127.
  // ggml computes q from the fp32 d, so the codes are the plain ratios, while d stored as fp16
  // underflows to +0 (below 2^-25, half the smallest fp16 subnormal).
  std::vector<float> x(kQK, 0.0f);
  x[0] = 127.0f * pow2(-127);
  x[1] = 5.0f * pow2(-127);
  x[2] = 2.5f * pow2(-127);  // exactly 5 * 2^-128: a tie, roundf gives 3
  x[3] = -pow2(-149);        // x * id = -2^-22: rounds to (negative) zero
  const BlockQ8_0 b = quantize_q8(x);
  EXPECT_EQ(b.d, 0x0000);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[1], 5);
  EXPECT_EQ(b.qs[2], 3);
  for (int j = 3; j < kQK; ++j) EXPECT_EQ(b.qs[j], 0) << j;
}

TEST(QuantQ8_0, DenormalBlockQuantizesToZero) {
  // amax = 127 * 2^-149 gives d = 2^-149 (the smallest denormal, not zero) but 1/d = 2^149
  // overflows; such blocks are defined to quantize like a zero block (see quant.cpp).
  std::vector<float> x(kQK, 0.0f);
  x[0] = 127.0f * pow2(-149);
  x[1] = pow2(-149);
  x[2] = -3.0f * pow2(-149);
  const BlockQ8_0 b = quantize_q8(x);
  EXPECT_EQ(b.d, 0x0000);
  for (int j = 0; j < kQK; ++j) EXPECT_EQ(b.qs[j], 0) << j;
}

TEST(QuantQ8_0, DequantizeErrorIsBoundedAndRequantizingIsIdempotent) {
  std::mt19937 rng(1234);
  const int64_t k = 4096;
  const std::vector<float> x = random_row(rng, k);
  std::vector<BlockQ8_0> y(k / kQK), y2(k / kQK);
  std::vector<float> back(k);
  quantize_row_q8_0(x.data(), y.data(), k);
  dequantize_row_q8_0(y.data(), back.data(), k);
  for (int64_t b = 0; b < k / kQK; ++b) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[b * kQK + j]));
    const float d = amax / 127.0f;
    const float d16 = fp16_to_fp32(y[b].d);
    // q = round(x / d) is within d/2 of x / d; dequantizing with the fp16 scale adds
    // |q| * |d - d16| <= 127 * |d - d16|. The 1e-6 relative slack covers the float rounding of
    // x * id and of d16 * q (a few ulp of amax).
    const double bound = d / 2.0 + 127.0 * std::fabs(double(d) - double(d16)) + 1e-6 * amax;
    for (int j = 0; j < kQK; ++j) {
      const int64_t i = b * kQK + j;
      ASSERT_LE(std::fabs(double(x[i]) - double(back[i])), bound) << "block " << b << " j " << j;
    }
  }
  // The amax element quantizes to +-127, so amax of the dequantized block is 127 * d16 (exact:
  // 11 x 7 bits) and its d is d16 again: quantizing the dequantized row reproduces the bytes.
  // Blocks whose d underflowed to fp16 zero dequantize to zeros and requantize to a zero block.
  quantize_row_q8_0(back.data(), y2.data(), k);
  int underflowed = 0;
  for (int64_t b = 0; b < k / kQK; ++b) {
    if (y[b].d == 0) {
      ++underflowed;
      ASSERT_EQ(y2[b].d, 0) << b;
      for (int j = 0; j < kQK; ++j) ASSERT_EQ(y2[b].qs[j], 0) << b;
    } else {
      ASSERT_EQ(std::memcmp(&y[b], &y2[b], sizeof(BlockQ8_0)), 0) << "block " << b;
    }
  }
  EXPECT_LT(underflowed, k / kQK / 4);  // the data must mostly exercise the non-trivial case
}

TEST(QuantQ8_0, RejectsRowLengthNotMultipleOf32) {
  std::vector<float> x(40, 1.0f);
  std::vector<BlockQ8_0> y(2);
  EXPECT_THROW(quantize_row_q8_0(x.data(), y.data(), 40), Error);
  std::vector<float> out(40);
  EXPECT_THROW(dequantize_row_q8_0(y.data(), out.data(), 33), Error);
}

// ----------------------------------------------------------------------------------------------
// Q4_0

TEST(QuantQ4_0, HandComputedBlockWithClampAndNibblePlacement) {
  // max = +8 (element 0), so d = 8 / -8 = -1 and id = -1: t = -x + 8.5, q = min(15, trunc(t)).
  std::vector<float> x(kQK, 0.0f);
  x[0] = 8.0f;    // t = 0.5  -> 0 (the max itself maps to nibble 0, value -8 * d = 8)
  x[1] = -8.0f;   // t = 16.5 -> 16 -> clamped to 15 (value 7: the one-step clamp error)
  x[3] = 1.0f;    // t = 7.5  -> 7
  x[4] = -1.0f;   // t = 9.5  -> 9
  x[5] = 0.5f;    // t = 8.0  -> 8
  x[6] = -0.5f;   // t = 9.0  -> 9
  x[7] = 2.7f;    // t = 5.8  -> 5
  x[8] = -7.5f;   // t = 16.0 -> 15
  x[9] = -7.4f;   // t = 15.9 -> 15
  x[10] = 7.4f;   // t = 1.1  -> 1
  x[16] = 3.0f;   // t = 5.5  -> 5   (high nibble of qs[0])
  x[17] = -3.0f;  // t = 11.5 -> 11  (high nibble of qs[1])
  x[31] = 6.0f;   // t = 2.5  -> 2   (high nibble of qs[15])
  const BlockQ4_0 b = quantize_q4(x);
  EXPECT_EQ(b.d, 0xbc00);  // -1.0 in fp16: the scale carries the sign of -max
  const uint8_t want[16] = {0x50, 0xbf, 0x88, 0x87, 0x89, 0x88, 0x89, 0x85,
                            0x8f, 0x8f, 0x81, 0x88, 0x88, 0x88, 0x88, 0x28};
  for (int j = 0; j < 16; ++j) EXPECT_EQ(b.qs[j], want[j]) << "qs[" << j << "]";

  std::vector<float> back(kQK);
  dequantize_row_q4_0(&b, back.data(), kQK);
  // value = d * (q - 8) = 8 - q
  const float want_back[kQK] = {8, -7, 0, 1, -1, 0, -1, 3, -7, -7, 7, 0, 0, 0, 0, 0,
                                3, -3, 0, 0, 0,  0, 0,  0, 0,  0,  0, 0, 0, 0, 0, 6};
  for (int j = 0; j < kQK; ++j) EXPECT_EQ(back[j], want_back[j]) << j;
}

TEST(QuantQ4_0, FirstElementWinsTiesOfMagnitudeAndFixesTheSign) {
  std::vector<float> x(kQK, 0.0f);
  x[2] = -8.0f;
  x[5] = 8.0f;
  BlockQ4_0 b = quantize_q4(x);
  EXPECT_EQ(b.d, 0x3c00);    // max = -8 (first): d = +1
  EXPECT_EQ(b.qs[2], 0x80);  // t = -8 + 8.5 -> 0
  EXPECT_EQ(b.qs[5], 0x8f);  // t = 16.5 -> 15
  EXPECT_EQ(b.qs[0], 0x88);

  std::swap(x[2], x[5]);
  b = quantize_q4(x);
  EXPECT_EQ(b.d, 0xbc00);  // max = +8 (first): d = -1
  EXPECT_EQ(b.qs[2], 0x80);
  EXPECT_EQ(b.qs[5], 0x8f);
}

TEST(QuantQ4_0, AllZeroAndDenormalBlocksGiveNibbleEight) {
  std::vector<float> x(2 * kQK, 0.0f);
  // Block 1: max = 8 * 2^-149, d = -2^-149, 1/d overflows: quantized like a zero block.
  x[kQK + 0] = 8.0f * pow2(-149);
  x[kQK + 1] = -3.0f * pow2(-149);
  BlockQ4_0 y[2];
  quantize_row_q4_0(x.data(), y, 2 * kQK);
  EXPECT_EQ(y[0].d, 0x8000);  // max = 0 gives d = 0 / -8 = -0, as in ggml
  EXPECT_EQ(y[1].d, 0x8000);  // -2^-149 in fp16 is -0
  for (const BlockQ4_0& b : y) {
    for (int j = 0; j < kQK / 2; ++j) EXPECT_EQ(b.qs[j], 0x88) << j;
  }
  std::vector<float> back(2 * kQK, 1.0f);
  dequantize_row_q4_0(y, back.data(), 2 * kQK);
  for (float v : back) EXPECT_EQ(std::fabs(v), 0.0f);
}

TEST(QuantQ4_0, DequantizeErrorIsBoundedAndRequantizingIsIdempotent) {
  std::mt19937 rng(99);
  const int64_t k = 4096;
  const std::vector<float> x = random_row(rng, k);
  std::vector<BlockQ4_0> y(k / kQK), y2(k / kQK);
  std::vector<float> back(k);
  quantize_row_q4_0(x.data(), y.data(), k);
  dequantize_row_q4_0(y.data(), back.data(), k);
  for (int64_t b = 0; b < k / kQK; ++b) {
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float v = x[b * kQK + j];
      if (amax < std::fabs(v)) amax = std::fabs(v), max = v;
    }
    const double d = max / -8.0f;
    const double d16 = fp16_to_fp32(y[b].d);
    for (int j = 0; j < kQK; ++j) {
      const int64_t i = b * kQK + j;
      // x / d lies in [-8, 8]; q - 8 is x / d rounded half up, except that x / d >= 7.5 is clamped
      // to 7 (error up to one step |d|). The fp16 scale adds |q - 8| * |d - d16| <= 8 |d - d16|.
      const double ratio = d == 0 ? 0 : double(x[i]) / d;
      const double steps = ratio >= 7.5 ? 1.0 : 0.5;
      const double bound = steps * std::fabs(d) + 8.0 * std::fabs(d - d16) + 1e-6 * amax;
      ASSERT_LE(std::fabs(double(x[i]) - double(back[i])), bound) << "block " << b << " j " << j;
    }
  }
  // The max element dequantizes to -8 * d16, which is again the block's max: same d, same bytes
  // (blocks whose d underflowed to fp16 zero come back as zero blocks: nibbles 8).
  quantize_row_q4_0(back.data(), y2.data(), k);
  int underflowed = 0;
  for (int64_t b = 0; b < k / kQK; ++b) {
    if ((y[b].d & 0x7fff) == 0) {
      ++underflowed;
      for (int j = 0; j < kQK / 2; ++j) ASSERT_EQ(y2[b].qs[j], 0x88) << b;
    } else {
      ASSERT_EQ(std::memcmp(&y[b], &y2[b], sizeof(BlockQ4_0)), 0) << "block " << b;
    }
  }
  EXPECT_LT(underflowed, k / kQK / 4);
}

// ----------------------------------------------------------------------------------------------
// Activations (DESIGN.md §3.1)

TEST(QuantActs, AllZeroBlock) {
  std::vector<float> x(kQK, 0.0f);
  x[7] = -0.0f;
  const Acts a = quantize_acts(x);
  EXPECT_EQ(bits(a.d[0]), 0u);
  EXPECT_EQ(a.s[0], 0);
  for (int j = 0; j < kQK; ++j) EXPECT_EQ(a.q[j], 0) << j;
}

TEST(QuantActs, AmaxOf127GivesScaleOneAndCodesEqualToInputs) {
  std::vector<float> x(kQK);
  for (int j = 0; j < kQK - 1; ++j) x[j] = static_cast<float>(j - 16);  // -16 .. 14, sum -31
  x[kQK - 1] = 127.0f;
  const Acts a = quantize_acts(x);
  EXPECT_EQ(a.d[0], 1.0f);
  for (int j = 0; j < kQK; ++j) EXPECT_EQ(a.q[j], static_cast<int8_t>(x[j])) << j;
  EXPECT_EQ(a.s[0], 96);
}

TEST(QuantActs, HalfwayCasesRoundToEven) {
  std::vector<float> x(kQK, 0.0f);
  x[0] = 127.0f;  // d = 1, id = 1: x * id is exactly the half-integer written here
  const float in[] = {2.5f, 3.5f, -2.5f, 0.5f, -0.5f, 1.5f, -3.5f, 126.5f, -126.5f};
  const int8_t want[] = {2, 4, -2, 0, 0, 2, -4, 126, -126};
  for (int i = 0; i < 9; ++i) x[1 + i] = in[i];
  const Acts a = quantize_acts(x);
  EXPECT_EQ(a.d[0], 1.0f);
  EXPECT_EQ(a.q[0], 127);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(a.q[1 + i], want[i]) << "x = " << in[i];
  EXPECT_EQ(a.s[0], 127 + 2 + 4 - 2 + 0 + 0 + 2 - 4 + 126 - 126);
}

TEST(QuantActs, BlocksHaveTheirOwnScaleAndSum) {
  std::vector<float> x(2 * kQK, 0.0f);
  x[0] = -127.0f;  // block 0: d = 1
  x[1] = 10.0f;
  x[2] = -4.5f;         // -> -4 (even)
  x[kQK + 0] = 63.5f;   // block 1: d = 0.5, id = 2
  x[kQK + 1] = 1.25f;   // 2.5 -> 2
  x[kQK + 2] = -0.75f;  // -1.5 -> -2
  x[kQK + 3] = 0.25f;   // 0.5 -> 0
  x[kQK + 4] = -63.5f;  // -127
  const Acts a = quantize_acts(x);
  EXPECT_EQ(a.d[0], 1.0f);
  EXPECT_EQ(a.d[1], 0.5f);
  EXPECT_EQ(a.q[0], -127);
  EXPECT_EQ(a.q[1], 10);
  EXPECT_EQ(a.q[2], -4);
  EXPECT_EQ(a.q[kQK + 0], 127);
  EXPECT_EQ(a.q[kQK + 1], 2);
  EXPECT_EQ(a.q[kQK + 2], -2);
  EXPECT_EQ(a.q[kQK + 3], 0);
  EXPECT_EQ(a.q[kQK + 4], -127);
  EXPECT_EQ(a.s[0], -121);
  EXPECT_EQ(a.s[1], 0);
}

TEST(QuantActs, TinyScaleStaysExactAndFinite) {
  // As QuantQ8_0.TinyScale...: d = 2^-127 (denormal, kept as fp32), id = 2^127.
  std::vector<float> x(kQK, 0.0f);
  x[0] = 127.0f * pow2(-127);
  x[1] = 5.0f * pow2(-127);
  x[2] = 2.5f * pow2(-127);   // tie: 2
  x[3] = -pow2(-149);         // -2^-22 -> 0
  x[4] = -3.5f * pow2(-127);  // tie: -4
  const Acts a = quantize_acts(x);
  EXPECT_EQ(bits(a.d[0]), bits(pow2(-127)));
  EXPECT_EQ(a.q[0], 127);
  EXPECT_EQ(a.q[1], 5);
  EXPECT_EQ(a.q[2], 2);
  EXPECT_EQ(a.q[3], 0);
  EXPECT_EQ(a.q[4], -4);
  EXPECT_EQ(a.s[0], 127 + 5 + 2 - 4);
}

TEST(QuantActs, DenormalBlocksQuantizeToZeroWithFiniteScale) {
  // Block 0: amax = 127 * 2^-149 -> d = 2^-149 exactly, 1/d = 2^149 overflows -> q = 0.
  // Block 1: amax = 127 * 2^-128 -> d = 2^-128, 1/d = 2^128 overflows -> q = 0 (the boundary).
  // Block 2: amax = 31 * 2^-149 -> d = 0.244 * 2^-149 rounds to 0 -> q = 0 (the d == 0 rule).
  std::vector<float> x(3 * kQK, 0.0f);
  x[0] = 127.0f * pow2(-149);
  x[1] = pow2(-149);
  x[2] = -3.0f * pow2(-149);
  x[kQK] = -127.0f * pow2(-128);
  x[kQK + 1] = 64.0f * pow2(-128);
  x[2 * kQK] = 31.0f * pow2(-149);
  x[2 * kQK + 1] = pow2(-149);
  const Acts a = quantize_acts(x);
  EXPECT_EQ(bits(a.d[0]), bits(pow2(-149)));
  EXPECT_EQ(bits(a.d[1]), bits(pow2(-128)));
  EXPECT_EQ(bits(a.d[2]), 0u);
  for (int b = 0; b < 3; ++b) {
    EXPECT_TRUE(std::isfinite(a.d[b]));
    EXPECT_EQ(a.s[b], 0);
  }
  for (size_t i = 0; i < a.q.size(); ++i) EXPECT_EQ(a.q[i], 0) << i;
}

TEST(QuantActs, NonFiniteInputsDoNotCrash) {
  // Garbage in (the caller's problem): the output is defined, no UB, codes stay in [-127, 127].
  std::vector<float> x(kQK, 1.0f);
  x[0] = std::numeric_limits<float>::infinity();
  x[1] = std::numeric_limits<float>::quiet_NaN();
  x[2] = -std::numeric_limits<float>::infinity();
  const Acts a = quantize_acts(x);
  for (int8_t q : a.q) EXPECT_GE(q, -127);
  std::vector<BlockQ8_0> y8(1);
  std::vector<BlockQ4_0> y4(1);
  quantize_row_q8_0(x.data(), y8.data(), kQK);
  quantize_row_q4_0(x.data(), y4.data(), kQK);
  for (int8_t q : y8[0].qs) EXPECT_GE(q, -127);
}

TEST(QuantActs, RandomRowsObeyBoundsSumsAndMatchQ8_0AwayFromTies) {
  std::mt19937 rng(42);
  const int64_t k = 8192;
  const std::vector<float> x = random_row(rng, k);
  const Acts a = quantize_acts(x);
  std::vector<BlockQ8_0> y(k / kQK);
  quantize_row_q8_0(x.data(), y.data(), k);
  for (int64_t b = 0; b < k / kQK; ++b) {
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) amax = std::max(amax, std::fabs(x[b * kQK + j]));
    ASSERT_EQ(bits(a.d[b]), bits(amax / 127.0f)) << b;
    const float id = a.d[b] != 0.0f ? 1.0f / a.d[b] : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < kQK; ++j) {
      const int64_t i = b * kQK + j;
      const int8_t q = a.q[i];
      sum += q;
      ASSERT_GE(q, -127);
      if (std::fabs(x[i]) == amax && amax != 0.0f) {
        ASSERT_EQ(std::abs(q), 127) << i;
      }
      // |x - d q| <= d / 2 up to the rounding of x * id (1e-6 relative to amax).
      ASSERT_LE(std::fabs(double(x[i]) - double(a.d[b]) * q), a.d[b] / 2.0 + 1e-6 * amax) << i;
      // Same scale and product as Q8_0: the codes differ only where x * id is an exact tie.
      const float p = x[i] * id;
      if (p - std::trunc(p) == 0.5f || p - std::trunc(p) == -0.5f) {
        ASSERT_EQ(std::fabs(float(y[b].qs[j]) - q), 1.0f) << i;
      } else {
        ASSERT_EQ(y[b].qs[j], q) << i;
      }
    }
    ASSERT_EQ(a.s[b], sum) << b;
  }
}

TEST(QuantActs, RejectsRowLengthNotMultipleOf32) {
  std::vector<float> x(48, 1.0f);
  std::vector<int8_t> q(48);
  float d[2];
  int32_t s[2];
  try {
    quantize_acts_row_ref(x.data(), 48, q.data(), d, s);
    FAIL() << "no error for k = 48";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("48"), std::string::npos) << e.what();
  }
}

// ----------------------------------------------------------------------------------------------
// Row conversions

TEST(QuantConvert, RowsMatchScalarConversions) {
  std::mt19937 rng(5);
  const int64_t k = 1000;
  std::vector<float> x(k);
  std::vector<uint16_t> h(k), bf(k), h_in(k), bf_in(k);
  for (int64_t i = 0; i < k; ++i) {
    x[i] = std::bit_cast<float>(static_cast<uint32_t>(rng()));
    h_in[i] = static_cast<uint16_t>(rng());
    bf_in[i] = static_cast<uint16_t>(rng());
  }
  convert_row_f32_to_f16(x.data(), h.data(), k);
  convert_row_f32_to_bf16(x.data(), bf.data(), k);
  std::vector<float> from_h(k), from_bf(k);
  convert_row_f16_to_f32(h_in.data(), from_h.data(), k);
  convert_row_bf16_to_f32(bf_in.data(), from_bf.data(), k);
  for (int64_t i = 0; i < k; ++i) {
    ASSERT_EQ(h[i], fp32_to_fp16(x[i])) << i;
    ASSERT_EQ(bf[i], fp32_to_bf16(x[i])) << i;
    ASSERT_EQ(bits(from_h[i]), bits(fp16_to_fp32(h_in[i]))) << i;
    ASSERT_EQ(bits(from_bf[i]), bits(bf16_to_fp32(bf_in[i]))) << i;
  }
}

}  // namespace quant_test
}  // namespace
}  // namespace xtile
