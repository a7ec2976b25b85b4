// base/fp16.h against the hardware: fp16_to_fp32 must equal VCVTPH2PS and fp32_to_fp16 must equal
// VCVTPS2PH with imm 0 (round to nearest even), bit for bit, NaN payloads included, because the
// scalar and vector paths of every tier have to produce the same bytes (DESIGN.md §3.5). bf16 is
// checked against an independent round-to-nearest-even oracle in double precision.
#include "base/fp16.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "cpu/cpu_caps.h"
#include "kernels/avx2/f16c_convert.h"

namespace xtile {
namespace {
namespace fp16_test {  // unity batches: CMakeLists.txt

#define XTILE_REQUIRE_F16C()                                                                 \
  if (!avx2::f16c_convert_usable(cpu_caps()))                                                \
  GTEST_SKIP() << "this CPU/OS has no usable F16C (VCVTPH2PS/VCVTPS2PH need CPUID F16C and " \
                  "OS-enabled AVX state), so there is no hardware oracle to compare with"

uint32_t bits(float f) {
  return std::bit_cast<uint32_t>(f);
}
float from_bits(uint32_t u) {
  return std::bit_cast<float>(u);
}

std::string hex(uint32_t v, int digits = 8) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "0x%0*x", digits, v);
  return buf;
}

// Compares fp32_to_fp16 with VCVTPS2PH over `x`; reports the first mismatches with their bits.
void expect_f32_to_f16_matches_f16c(const std::vector<float>& x, const char* what) {
  std::vector<uint16_t> hw(x.size());
  avx2::f16c_from_fp32_n(x.data(), hw.data(), static_cast<int64_t>(x.size()));
  int64_t mismatches = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t sw = fp32_to_fp16(x[i]);
    if (sw != hw[i]) {
      if (++mismatches <= 10) {
        ADD_FAILURE() << what << ": fp32_to_fp16(" << hex(bits(x[i])) << " = " << x[i]
                      << ") = " << hex(sw, 4) << ", VCVTPS2PH gives " << hex(hw[i], 4);
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << what << ": " << mismatches << " of " << x.size() << " differ";
}

// Ivy Bridge has F16C but neither AVX2 nor FMA. The F16C object must be built for what it
// needs only, and the selection must refuse it on any CPU lacking one of its extensions
// (otherwise: SIGILL on the first fp16 row of a KV cache).
TEST(Fp16F16cSelection, IvyBridgeTakesTheF16cRowsAndTheObjectNeedsNoAvx2OrFma) {
  CpuCaps ivy;
  ivy.sse42 = ivy.avx = ivy.f16c = ivy.os_avx = true;
  EXPECT_FALSE(avx2::kF16cObjectIsa.avx2) << "f16c_convert.cpp is compiled with -mavx2";
  EXPECT_FALSE(avx2::kF16cObjectIsa.fma) << "f16c_convert.cpp is compiled with -mfma";
  EXPECT_FALSE(avx2::kF16cObjectIsa.avx512f);
  EXPECT_TRUE(avx2::kF16cObjectIsa.f16c && avx2::kF16cObjectIsa.avx);
  EXPECT_TRUE(avx2::f16c_convert_usable(ivy)) << "a CPU with F16C and AVX state should use it";

  // Every combination of the five bits: the path is taken exactly when the CPU has F16C, AVX
  // and the OS-enabled AVX state, and never when it lacks something the object was built for.
  for (int bits = 0; bits < 32; ++bits) {
    CpuCaps c;
    c.avx = bits & 1;
    c.f16c = bits & 2;
    c.os_avx = bits & 4;
    c.avx2 = bits & 8;
    c.fma = bits & 16;
    const bool usable = avx2::f16c_convert_usable(c);
    EXPECT_EQ(usable, c.avx && c.f16c && c.os_avx) << "caps bits " << bits;
    if (usable) {
      EXPECT_TRUE(!avx2::kF16cObjectIsa.avx2 || c.avx2) << "caps bits " << bits;
      EXPECT_TRUE(!avx2::kF16cObjectIsa.fma || c.fma) << "caps bits " << bits;
    }
  }
}

TEST(Fp16F16c, HalfToFloatMatchesVcvtph2psForAll65536Halves) {
  XTILE_REQUIRE_F16C();
  std::vector<uint16_t> h(65536);
  for (uint32_t i = 0; i < 65536; ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> hw(65536);
  avx2::f16c_to_fp32_n(h.data(), hw.data(), 65536);
  int mismatches = 0;
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint32_t sw = bits(fp16_to_fp32(h[i]));
    ASSERT_EQ(bits(avx2::f16c_to_fp32(h[i])), bits(hw[i])) << "scalar vs vector F16C, " << i;
    if (sw != bits(hw[i]) && ++mismatches <= 10) {
      ADD_FAILURE() << "fp16_to_fp32(" << hex(i, 4) << ") = " << hex(sw) << ", VCVTPH2PS gives "
                    << hex(bits(hw[i]));
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// Floats around every place where the conversion changes behaviour: for each of the 256
// exponents and both signs, mantissas whose low 13 bits (the bits a normal half drops) take every
// value under several high patterns, and for every shift 1..23 (the bits a subnormal half drops)
// the exact halfway points and their neighbours.
std::vector<float> dense_float_set() {
  std::vector<float> out;
  const uint32_t high_patterns[] = {0x000, 0x001, 0x002, 0x155, 0x2aa, 0x3fe, 0x3ff};
  for (uint32_t sign = 0; sign < 2; ++sign) {
    for (uint32_t e = 0; e < 256; ++e) {
      const uint32_t base = (sign << 31) | (e << 23);
      for (uint32_t hi : high_patterns) {
        for (uint32_t lo = 0; lo < (1u << 13); ++lo) out.push_back(from_bits(base | hi << 13 | lo));
      }
      for (uint32_t s = 1; s <= 23; ++s) {
        const uint32_t half = 1u << (s - 1);
        const uint32_t top_max = (0x7fffffu >> s);
        for (uint32_t top : {0u, 1u, 2u, 3u, top_max / 2, top_max - 1, top_max}) {
          const uint32_t m = (top << s) | half;
          for (int delta : {-1, 0, 1}) {
            const uint32_t mm = (m + static_cast<uint32_t>(delta)) & 0x7fffffu;
            out.push_back(from_bits(base | mm));
          }
        }
      }
    }
  }
  // Named edges (both signs): the largest half, the overflow threshold 65520 and its
  // neighbours, the smallest normal/subnormal halves and the halfway points below them.
  const float edges[] = {0.0f,
                         65504.0f,
                         65519.0f,
                         std::nextafter(65520.0f, 0.0f),
                         65520.0f,
                         std::nextafter(65520.0f, 1e9f),
                         65536.0f,
                         std::ldexp(1.0f, -14),
                         std::nextafter(std::ldexp(1.0f, -14), 0.0f),
                         std::ldexp(1.0f, -14) - std::ldexp(1.0f, -25),  // halfway to 2^-14
                         std::ldexp(1.0f, -24),
                         std::ldexp(1.0f, -25),  // half the smallest subnormal: ties to 0
                         std::nextafter(std::ldexp(1.0f, -25), 1.0f),
                         std::nextafter(std::ldexp(1.0f, -25), 0.0f),
                         std::ldexp(3.0f, -25),  // 1.5 subnormal steps: ties to 2
                         std::ldexp(1.0f, -26),
                         std::numeric_limits<float>::denorm_min(),
                         std::numeric_limits<float>::min(),
                         std::numeric_limits<float>::max(),
                         std::numeric_limits<float>::infinity()};
  for (float f : edges) {
    out.push_back(f);
    out.push_back(-f);
  }
  // NaNs: quiet and signalling, payloads in the kept and in the dropped bits.
  for (uint32_t payload : {0x400000u, 0x400001u, 0x000001u, 0x001fffu, 0x002000u, 0x3fe000u,
                           0x7fffffu, 0x155555u, 0x2aaaaau}) {
    out.push_back(from_bits(0x7f800000u | payload));
    out.push_back(from_bits(0xff800000u | payload));
  }
  return out;
}

TEST(Fp16F16c, FloatToHalfMatchesVcvtps2phOnDenseSet) {
  XTILE_REQUIRE_F16C();
  const std::vector<float> x = dense_float_set();
  ASSERT_GT(x.size(), 20'000'000u);
  expect_f32_to_f16_matches_f16c(x, "dense set");
}

TEST(Fp16F16c, FloatToHalfMatchesVcvtps2phOnRandomBits) {
  XTILE_REQUIRE_F16C();
  std::mt19937 rng(20240601);
  std::vector<float> x(10'000'000);
  for (float& f : x) f = from_bits(static_cast<uint32_t>(rng()));
  expect_f32_to_f16_matches_f16c(x, "random bit patterns");
}

TEST(Fp16F16c, FloatToHalfMatchesVcvtps2phOnEveryFloatInTheRoundingRange) {
  // Every float with |x| in [2^-26, 2^17): all the floats whose conversion rounds (outside this
  // range the result is +-0, +-inf or a NaN, all in the dense set). 2 x 43 x 2^23 values.
  XTILE_REQUIRE_F16C();
  std::vector<float> x(1u << 23);
  for (uint32_t sign = 0; sign < 2; ++sign) {
    for (uint32_t e = 127 - 26; e < 127 + 17; ++e) {
      for (uint32_t m = 0; m < (1u << 23); ++m) x[m] = from_bits(sign << 31 | e << 23 | m);
      std::vector<uint16_t> hw(x.size());
      avx2::f16c_from_fp32_n(x.data(), hw.data(), static_cast<int64_t>(x.size()));
      for (uint32_t m = 0; m < (1u << 23); ++m) {
        if (fp32_to_fp16(x[m]) != hw[m]) {
          FAIL() << "fp32_to_fp16(" << hex(bits(x[m])) << ") = " << hex(fp32_to_fp16(x[m]), 4)
                 << ", VCVTPS2PH gives " << hex(hw[m], 4);
        }
      }
    }
  }
}

TEST(Fp16, EveryHalfRoundTripsThroughFloat) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const bool nan = (h & 0x7c00) == 0x7c00 && (h & 0x03ff) != 0;
    // A signalling NaN comes back quiet (bit 9 set), with sign and payload kept.
    const uint16_t want = nan ? static_cast<uint16_t>(h | 0x0200) : h;
    ASSERT_EQ(fp32_to_fp16(fp16_to_fp32(h)), want) << hex(i, 4);
  }
}

// ----------------------------------------------------------------------------------------------
// bf16

// Value of the bit pattern with the exponent allowed to reach 255 (0x7f800000 -> 2^128), which
// is what round-to-nearest with an unbounded exponent compares against before overflowing.
double unbounded_value(uint32_t u) {
  const int e = static_cast<int>((u >> 23) & 0xff);
  const double m = static_cast<double>(u & 0x7fffffu);
  const double mag = e == 0 ? std::ldexp(m, -149) : std::ldexp(m + 8388608.0, e - 150);
  return (u >> 31) ? -mag : mag;
}

// Round to nearest even to the bf16 grid, written from the definition: pick the nearer of the two
// neighbouring bf16 values (distances are exact in double), the even one on a tie.
uint16_t bf16_oracle(float f) {
  const uint32_t u = bits(f);
  if (std::isnan(f)) return static_cast<uint16_t>((u >> 16) | 0x40);
  if (std::isinf(f)) return static_cast<uint16_t>(u >> 16);
  const uint32_t down = u & 0xffff0000u;  // toward zero
  const uint32_t up = down + 0x10000u;    // away from zero (0x7f80 0000 is +-inf)
  const double x = std::fabs(unbounded_value(u));
  const double dd = x - std::fabs(unbounded_value(down));
  const double du = std::fabs(unbounded_value(up)) - x;
  if (dd < du) return static_cast<uint16_t>(down >> 16);
  if (du < dd) return static_cast<uint16_t>(up >> 16);
  return static_cast<uint16_t>(((down >> 16) & 1) ? up >> 16 : down >> 16);
}

TEST(Fp16Bf16, EveryBf16RoundTripsThroughFloat) {
  for (uint32_t i = 0; i < 65536; ++i) {
    const uint16_t h = static_cast<uint16_t>(i);
    const float f = bf16_to_fp32(h);
    ASSERT_EQ(bits(f), i << 16);
    const bool nan = (h & 0x7f80) == 0x7f80 && (h & 0x007f) != 0;
    const uint16_t want = nan ? static_cast<uint16_t>(h | 0x0040) : h;  // quieted NaN
    ASSERT_EQ(fp32_to_bf16(f), want) << hex(i, 4);
  }
}

TEST(Fp16Bf16, FloatToBf16RoundsToNearestEven) {
  // Hand cases: 1 + 2^-8 is exactly halfway between 1 and 1 + 2^-7 -> 1 (even); 1 + 3 * 2^-8 is
  // halfway between 1 + 2^-7 and 1 + 2^-6 -> 1 + 2^-6 (even); just above a tie rounds up;
  // the largest float rounds to +inf (it is past the midpoint to 2^128).
  EXPECT_EQ(fp32_to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(fp32_to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(fp32_to_bf16(std::nextafter(1.0f + std::ldexp(1.0f, -8), 2.0f)), 0x3f81);
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::max()), 0x7f80);
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::max()), 0xff80);
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f7f7fffu)), 0x7f7f);  // just below the midpoint
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7fc00001u)), 0x7fc0);  // NaN with dropped payload stays NaN
  EXPECT_EQ(fp32_to_bf16(from_bits(0x7f800001u)), 0x7fc0);  // signalling NaN comes back quiet

  std::vector<float> x = dense_float_set();
  std::mt19937 rng(77);
  for (int i = 0; i < 2'000'000; ++i) x.push_back(from_bits(static_cast<uint32_t>(rng())));
  // The bf16 rounding point: every low-16-bit pattern at a few exponents.
  for (uint32_t e : {0u, 1u, 126u, 127u, 254u}) {
    for (uint32_t lo = 0; lo < 65536; ++lo) x.push_back(from_bits(e << 23 | 0x10000u | lo));
  }
  int64_t mismatches = 0;
  for (float f : x) {
    const uint16_t got = fp32_to_bf16(f);
    const uint16_t want = bf16_oracle(f);
    if (got != want && ++mismatches <= 10) {
      ADD_FAILURE() << "fp32_to_bf16(" << hex(bits(f)) << ") = " << hex(got, 4) << ", want "
                    << hex(want, 4);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

}  // namespace fp16_test
}  // namespace
}  // namespace xtile
