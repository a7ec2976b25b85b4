// Reference (de)quantization: the specification that every kernel tier reproduces bit for bit.
// Built with -ffp-contract=off (CMakeLists.txt), so each expression below rounds exactly as
// written: no fused multiply-add, no reassociation.
#include "quant/quant.h"

#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>

#include "base/error.h"
#include "base/fp16.h"

namespace xtile {
namespace {

void check_row_length(const char* what, int64_t k) {
  if (k < 0 || k % kQK != 0) {
    fail(what, ": row length ", k, " is not a non-negative multiple of ", kQK);
  }
}

// 1/d for a block scale d, or 0 when d is 0 or when 1/d overflows. The overflow case is a block
// whose amax is below about 127 * 2^-128 (every block of denormals, and tiny normals): there the
// literal rule id = 1/d gives inf, and x * inf is inf (or NaN for x == 0), which no integer
// conversion defines. Treating such a block like an all-zero one gives q = 0 (Q4_0: nibble 8),
// which is also what its dequantized value would be once d is stored as fp16 (it underflows to 0).
// Vector tiers compute id the same way: one scalar reciprocal per block, inf replaced by 0.
float inverse_scale(float d) {
  if (d == 0.0f) return 0.0f;
  const float id = 1.0f / d;
  return std::isinf(id) ? 0.0f : id;
}

// Converts an already-rounded value to int8 without undefined behaviour. For finite inputs the
// value is always within [-127, 127] (|x * id| <= 127 * (1 + 3 ulp) before rounding), so this is
// the plain conversion; only NaN/inf inputs, which are the caller's problem, reach the clamp (NaN
// -> 0).
int8_t to_int8_clamped(float v) {
  if (v >= 127.0f) return 127;
  if (v <= -127.0f) return -127;
  if (!(v == v)) return 0;  // NaN
  return static_cast<int8_t>(v);
}

// to_int8_clamped(roundf(v)) without the libm call, so that GCC vectorizes a block's 32 (the
// KV cache's and the attention queries' q8_0 rows called roundf 470 million times in a 4096-token
// prompt of qwen3-0.6b: 8.5 % of it). The clamp first (NaN to 0), then the truncation t and the
// fraction v − t, exact for |v| < 2^23: half away from zero is t ± 1 where |v − t| ≥ 0.5.
int8_t round_to_int8(float v) {
  float c = v > 127.0f ? 127.0f : v;
  c = c < -127.0f ? -127.0f : c;
  c = c == c ? c : 0.0f;
  const auto t = static_cast<int32_t>(c);
  const float f = c - static_cast<float>(t);
  return static_cast<int8_t>(t + (f >= 0.5f ? 1 : 0) - (f <= -0.5f ? 1 : 0));
}

// Q4_0's q = min(15, (int8_t)(x * id + 8.5f)): t is >= 0.5 - tiny for finite inputs, so the
// truncation of t is its integer part; NaN (bad input only) maps to nibble 0 rather than UB.
uint8_t q4_nibble(float t) {
  if (t >= 15.0f) return 15;
  if (!(t > 0.0f)) return 0;
  return static_cast<uint8_t>(static_cast<int>(t));
}

}  // namespace

void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k) {
  check_row_length("quantize_row_q8_0", k);
  const int64_t nb = k / kQK;
  for (int64_t b = 0; b < nb; ++b) {
    // Written for the vectorizer: the max in 8 lanes (a max is exact, so any grouping gives the
    // one maximum), the codes into a local array (y's int8 may alias x for the compiler).
    const float* xb = x + b * kQK;
    float lane_max[8] = {};
    for (int j = 0; j < kQK; j += 8)
      for (int l = 0; l < 8; ++l) {
        const float a = std::fabs(xb[j + l]);
        lane_max[l] = a > lane_max[l] ? a : lane_max[l];
      }
    float amax = 0.0f;
    for (float m : lane_max) amax = m > amax ? m : amax;
    const float d = amax / 127.0f;
    const float id = inverse_scale(d);
    y[b].d = fp32_to_fp16(d);
    // roundf: half away from zero, as ggml's quantize_row_q8_0_ref (not the activations' rule).
    int8_t q[kQK];
    for (int j = 0; j < kQK; ++j) q[j] = round_to_int8(xb[j] * id);
    std::memcpy(y[b].qs, q, sizeof q);
  }
}

void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t k) {
  check_row_length("quantize_row_q4_0", k);
  const int64_t nb = k / kQK;
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQK;
    // The signed value of largest magnitude; strict '<' keeps the first one on ties of |x|, so
    // {-8, 8} gives d = +1 and {8, -8} gives d = -1, exactly as ggml.
    float amax = 0.0f;
    float max = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float v = xb[j];
      if (amax < std::fabs(v)) {
        amax = std::fabs(v);
        max = v;
      }
    }
    const float d = max / -8.0f;
    const float id = inverse_scale(d);
    y[b].d = fp32_to_fp16(d);
    for (int j = 0; j < kQK / 2; ++j) {
      const uint8_t lo = q4_nibble(xb[j] * id + 8.5f);
      const uint8_t hi = q4_nibble(xb[j + kQK / 2] * id + 8.5f);
      y[b].qs[j] = static_cast<uint8_t>(lo | (hi << 4));
    }
  }
}

void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t k) {
  check_row_length("dequantize_row_q8_0", k);
  const int64_t nb = k / kQK;
  for (int64_t b = 0; b < nb; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK; ++j) y[b * kQK + j] = d * static_cast<float>(x[b].qs[j]);
  }
}

void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t k) {
  check_row_length("dequantize_row_q4_0", k);
  const int64_t nb = k / kQK;
  for (int64_t b = 0; b < nb; ++b) {
    const float d = fp16_to_fp32(x[b].d);
    for (int j = 0; j < kQK / 2; ++j) {
      const int lo = (x[b].qs[j] & 0x0f) - 8;
      const int hi = (x[b].qs[j] >> 4) - 8;
      y[b * kQK + j] = d * static_cast<float>(lo);
      y[b * kQK + j + kQK / 2] = d * static_cast<float>(hi);
    }
  }
}

void convert_row_f16_to_f32(const uint16_t* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) y[i] = fp16_to_fp32(x[i]);
}

void convert_row_bf16_to_f32(const uint16_t* x, float* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) y[i] = bf16_to_fp32(x[i]);
}

void convert_row_f32_to_f16(const float* x, uint16_t* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) y[i] = fp32_to_fp16(x[i]);
}

void convert_row_f32_to_bf16(const float* x, uint16_t* y, int64_t k) {
  for (int64_t i = 0; i < k; ++i) y[i] = fp32_to_bf16(x[i]);
}

void quantize_acts_row_ref(const float* x, int64_t k, int8_t* q, float* d, int32_t* s) {
  check_row_length("quantize_acts_row_ref", k);
  // nearbyint rounds in the current mode; the contract is round-half-to-even, the default. A
  // caller that changed the mode would silently get other bytes than every vector tier.
  if (std::fegetround() != FE_TONEAREST) {
    fail("quantize_acts_row_ref: the FP rounding mode is not round-to-nearest");
  }
  const int64_t nb = k / kQK;
  for (int64_t b = 0; b < nb; ++b) {
    const float* xb = x + b * kQK;
    int8_t* qb = q + b * kQK;
    float amax = 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float a = std::fabs(xb[j]);
      if (a > amax) amax = a;
    }
    const float db = amax / 127.0f;
    const float id = inverse_scale(db);
    int32_t sum = 0;
    for (int j = 0; j < kQK; ++j) {
      const int8_t v = to_int8_clamped(std::nearbyint(xb[j] * id));
      qb[j] = v;
      sum += v;
    }
    d[b] = db;
    s[b] = sum;
  }
}

}  // namespace xtile
