// Float -> integer conversions the reference quantizers need, each one giving the integer ggml's
// C code gives for every finite input it can meet, without the undefined behaviour of converting
// an out-of-range float in C++.
#pragma once

#include <bit>
#include <cstdint>
#include <limits>

namespace xtile::qround {

// ggml's nearest_int: adding 1.5·2^23 puts the integer part of v in the low mantissa bits,
// rounded to nearest with ties to even (the default FP mode), and the mantissa is read back.
// For |v| < 2^22 this is round-half-even; beyond (never reached by finite weights, which ggml
// asserts) it wraps as ggml's does instead of being undefined.
inline int nearest_int(float v) {
  const float shifted = v + 12582912.0f;
  const int32_t bits = std::bit_cast<int32_t>(shifted);
  return (bits & 0x007fffff) - 0x00400000;
}

// A C cast (int)v, truncation toward zero, as ggml's `(int8_t)(v)` / `(uint8_t)(v)` round their
// quants before the narrowing. Out of int range (NaN, inf: bad input only) gives 0 instead of UB.
inline int trunc_to_int(float v) {
  if (!(v > -2147483648.0f && v < 2147483648.0f)) return 0;
  return static_cast<int>(v);
}

// 1/d, or 0 when d is 0 (ggml: `d ? 1.0f/d : 0.0f`). Also 0 where 1/d overflows (d a float
// denormal): there ggml's quants would come from inf·x, which C++ cannot convert; every such
// block dequantizes to 0 anyway because its fp16 scale underflows (quant.cpp does the same).
inline float inverse_or_zero(float d) {
  if (d == 0.0f) return 0.0f;
  const float id = 1.0f / d;
  return id == std::numeric_limits<float>::infinity() ||
                 id == -std::numeric_limits<float>::infinity()
             ? 0.0f
             : id;
}

}  // namespace xtile::qround
