// Block formats and the reference (de)quantization: the specification every kernel obeys.
#pragma once

#include <cstddef>
#include <cstdint>

namespace xtile {

constexpr int kQK = 32;  // elements per Q8_0/Q4_0 block (and per activation block)

// GGML Q8_0: fp16 scale, 32 signed bytes. 34 bytes.
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
static_assert(sizeof(BlockQ8_0) == 34);

// GGML Q4_0: fp16 scale, 16 bytes of nibbles; element i < 16 is the low nibble of qs[i],
// element i + 16 the high nibble; the weight value is nibble - 8. 18 bytes.
struct BlockQ4_0 {
  uint16_t d;
  uint8_t qs[kQK / 2];
};
static_assert(sizeof(BlockQ4_0) == 18);

// GGML reference rules. k must be a multiple of 32.
// Q8_0: d = amax / 127, q = roundf(x / d) (half away from zero, as ggml's reference).
void quantize_row_q8_0(const float* x, BlockQ8_0* y, int64_t k);
// Q4_0: m = the element of largest magnitude (signed), d = m / -8, q = min(15, trunc(x/d + 8.5)).
void quantize_row_q4_0(const float* x, BlockQ4_0* y, int64_t k);
void dequantize_row_q8_0(const BlockQ8_0* x, float* y, int64_t k);
void dequantize_row_q4_0(const BlockQ4_0* x, float* y, int64_t k);

void convert_row_f16_to_f32(const uint16_t* x, float* y, int64_t k);
void convert_row_bf16_to_f32(const uint16_t* x, float* y, int64_t k);
void convert_row_f32_to_f16(const float* x, uint16_t* y, int64_t k);
void convert_row_f32_to_bf16(const float* x, uint16_t* y, int64_t k);

// Activation quantization of DESIGN.md §3.1, one row of k (multiple of 32) floats:
// per block b: amax = max|x|, d[b] = amax / 127.0f, id = d ? 1/d : 0,
// q = (int8) nearbyint(x * id) (round half to even), s[b] = sum of the block's q.
// Where 1/d overflows (amax below ~127 * 2^-128: every block of denormals), id = 0, so q = 0
// (Q4_0/Q8_0 likewise); vector tiers must do the same. Finite inputs always give |q| <= 127.
void quantize_acts_row_ref(const float* x, int64_t k, int8_t* q, float* d, int32_t* s);

}  // namespace xtile
