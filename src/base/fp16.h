// fp16/bf16 <-> fp32 in scalar code, rounding exactly as F16C's VCVTPS2PH with round-to-nearest-even
// (and VCVTPH2PS, which is exact), so that scalar and vector paths give the same bits.
#pragma once

#include <bit>
#include <cstdint>

#include "base/float_contract.h"

namespace xtile {

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0);  // inf, quiet NaN
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;
  } else {
    // Subnormal half: normalise (every half subnormal is a normal float).
    int e = 113;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((mant & 0x3ffu) << 13);
  }
  return std::bit_cast<float>(bits);
}

inline uint16_t fp32_to_fp16(float f) {
  const uint32_t x = std::bit_cast<uint32_t>(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) {  // inf or NaN (NaN stays quiet NaN with the top payload bits)
    if (absx == 0x7f800000u) return sign | 0x7c00u;
    return sign | 0x7e00u | static_cast<uint16_t>((absx >> 13) & 0x3ffu);
  }
  if (absx >= 0x477ff000u) return sign | 0x7c00u;  // rounds to >= 65520: overflow to inf
  if (absx >= 0x38800000u) {                        // normal half
    uint32_t mant = absx + 0xc8000fffu + ((absx >> 13) & 1u);  // rebias exp, round half even
    return sign | static_cast<uint16_t>(mant >> 13);
  }
  // Subnormal or zero half: shift the implicit-1 mantissa right with round-half-even.
  if (absx < 0x33000000u) return sign;  // below half the smallest subnormal: +-0
  const uint32_t e = absx >> 23;
  const uint32_t m = (absx & 0x7fffffu) | 0x800000u;
  const uint32_t shift = 126 - e;  // result = m >> (shift) in half-subnormal units
  uint32_t q = m >> shift;
  const uint32_t rem = m & ((1u << shift) - 1);
  const uint32_t halfway = 1u << (shift - 1);
  if (rem > halfway || (rem == halfway && (q & 1u))) ++q;
  return sign | static_cast<uint16_t>(q);
}

inline float bf16_to_fp32(uint16_t h) { return std::bit_cast<float>(static_cast<uint32_t>(h) << 16); }

inline uint16_t fp32_to_bf16(float f) {
  uint32_t x = std::bit_cast<uint32_t>(f);
  if ((x & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet NaN
  x += 0x7fffu + ((x >> 16) & 1u);  // round half to even
  return static_cast<uint16_t>(x >> 16);
}

}  // namespace xtile
