// Q4_1, Q5_0, Q5_1: the 32-element "legacy" types, by ggml's reference rules (ggml's
// quantize_row_q4_1_ref / q5_0_ref / q5_1_ref, which llama-quantize runs without an imatrix).
// One pass per block: find the range, derive one scale (and a min for the _1 types), round each
// element with an explicit +0.5 and a truncating cast.
#include <cfloat>
#include <cmath>
#include <cstring>

#include "base/error.h"
#include "base/fp16.h"
#include "quant/quant_rounding.h"
#include "quant/quantize_types.h"

namespace xtile {

namespace {

constexpr int kBlock = 32;

void check_row_length(const char* what, int64_t k) {
  if (k < 0 || k % kBlock != 0)
    fail(what, ": row length ", k, " is not a non-negative multiple of ", kBlock);
}

// The block's smallest and largest value, as ggml scans them (from ±FLT_MAX).
void block_range(const float* x, float* lo, float* hi) {
  float mn = FLT_MAX, mx = -FLT_MAX;
  for (int j = 0; j < kBlock; ++j) {
    if (x[j] < mn) mn = x[j];
    if (x[j] > mx) mx = x[j];
  }
  *lo = mn;
  *hi = mx;
}

// Element j < 16 goes to the low nibble of byte j, element j + 16 to its high nibble; the fifth
// bits (5-bit types) to bit j and bit j + 16 of the little-endian u32 qh.
void pack_block(const uint8_t* q, uint8_t* qs, uint8_t* qh) {
  uint32_t high = 0;
  for (int j = 0; j < kBlock / 2; ++j) {
    const uint8_t lo = q[j], hi = q[j + kBlock / 2];
    qs[j] = static_cast<uint8_t>((lo & 0x0f) | ((hi & 0x0f) << 4));
    high |= static_cast<uint32_t>((lo >> 4) & 1u) << j;
    high |= static_cast<uint32_t>((hi >> 4) & 1u) << (j + kBlock / 2);
  }
  if (qh) std::memcpy(qh, &high, 4);
}

// Asymmetric block: d = (max − min) / levels, q = (int)((x − min)·(1/d) + 0.5). Q4_1 then caps q
// at 15 and Q5_1 does not (its q never exceeds 31 for finite input); `cap` says which.
void quantize_min_block(const float* x, int levels, int cap, uint16_t* d_out, uint16_t* m_out,
                        uint8_t* q) {
  float mn, mx;
  block_range(x, &mn, &mx);
  const float d = (mx - mn) / static_cast<float>(levels);
  const float id = qround::inverse_or_zero(d);
  *d_out = fp32_to_fp16(d);
  *m_out = fp32_to_fp16(mn);
  for (int j = 0; j < kBlock; ++j) {
    int v = qround::trunc_to_int((x[j] - mn) * id + 0.5f);
    if (cap >= 0 && v > cap) v = cap;
    q[j] = static_cast<uint8_t>(v);
  }
}

}  // namespace

void quantize_row_q4_1(const float* x, BlockQ4_1* y, int64_t k) {
  check_row_length("quantize_row_q4_1", k);
  for (int64_t b = 0; b < k / kBlock; ++b) {
    uint8_t q[kBlock];
    quantize_min_block(x + b * kBlock, 15, 15, &y[b].d, &y[b].m, q);
    pack_block(q, y[b].qs, nullptr);
  }
}

void quantize_row_q5_1(const float* x, BlockQ5_1* y, int64_t k) {
  check_row_length("quantize_row_q5_1", k);
  for (int64_t b = 0; b < k / kBlock; ++b) {
    uint8_t q[kBlock];
    quantize_min_block(x + b * kBlock, 31, -1, &y[b].d, &y[b].m, q);
    pack_block(q, y[b].qs, y[b].qh);
  }
}

void quantize_row_q5_0(const float* x, BlockQ5_0* y, int64_t k) {
  check_row_length("quantize_row_q5_0", k);
  for (int64_t b = 0; b < k / kBlock; ++b) {
    const float* xb = x + b * kBlock;
    // The signed value of largest magnitude (the first one on ties), so that it maps to q = 0
    // exactly (−16·d) and the opposite side gets the 15 remaining steps, as in Q4_0.
    float amax = 0.0f, max = 0.0f;
    for (int j = 0; j < kBlock; ++j) {
      if (amax < std::fabs(xb[j])) {
        amax = std::fabs(xb[j]);
        max = xb[j];
      }
    }
    const float d = max / -16.0f;
    const float id = qround::inverse_or_zero(d);
    y[b].d = fp32_to_fp16(d);
    uint8_t q[kBlock];
    for (int j = 0; j < kBlock; ++j) {
      int v = qround::trunc_to_int(xb[j] * id + 16.5f);
      if (v > 31) v = 31;
      q[j] = static_cast<uint8_t>(v);
    }
    pack_block(q, y[b].qs, y[b].qh);
  }
}

}  // namespace xtile
