// The vector side of the amx kernels, 16 float lanes at a time (one C-tile row: 16 int32), with
// two back-ends like tile.h: AVX-512 intrinsics when XTILE_AMX_HW, portable scalar code for
// amx-emu. Both compute the same bits: int32 → float conversion rounds to nearest (exact here,
// |isum| < 2^24), the scale product is one rounded fp32 multiply, fma is fused (std::fma in the
// scalar code, with -ffp-contract=off so nothing else is fused), and fp16 → fp32 is exact.
// Lives in XTILE_AMX_NS for the reason given in tile.h.
#pragma once

#include <cstdint>
#include <cstring>

#include "kernels/amx/tile.h"

// Follows XTILE_AMX_HW unless set: tests/amx_emu_test.cpp builds the kernels with software tiles
// and the AVX-512 lanes, to check the AMX build's vector code bit for bit on a CPU without AMX.
#ifndef XTILE_AMX_LANES_AVX512
#define XTILE_AMX_LANES_AVX512 XTILE_AMX_HW
#endif

#if XTILE_AMX_LANES_AVX512
#include <immintrin.h>
#else
#include <cmath>

#include "base/fp16.h"
#endif

namespace xtile::XTILE_AMX_NS::lanes {

#if XTILE_AMX_LANES_AVX512

using F32x16 = __m512;

inline F32x16 zero() {
  return _mm512_setzero_ps();
}
// 16 floats from a 64-byte aligned address.
inline F32x16 load(const float* p) {
  return _mm512_load_ps(p);
}
// One stored C-tile row (64-byte aligned) converted to float. The zero-masked form with a full
// mask is the same VCVTDQ2PS; GCC 12's plain _mm512_cvtepi32_ps trips -Wmaybe-uninitialized
// on its own _mm512_undefined_ps().
inline F32x16 load_i32_as_f32(const int32_t* p) {
  return _mm512_maskz_cvtepi32_ps(static_cast<__mmask16>(0xffff), _mm512_load_si512(p));
}
// v * s for a scalar s in memory: VMULPS with an embedded {1to16} broadcast (one uop, the
// broadcast costs a load port, not a vector ALU port).
inline F32x16 mul_bcast(F32x16 v, const float* s) {
  return _mm512_mul_ps(v, _mm512_set1_ps(*s));
}
inline F32x16 fma(F32x16 a, F32x16 b, F32x16 c) {
  return _mm512_fmadd_ps(a, b, c);
}
inline void store(float* p, F32x16 v) {
  _mm512_storeu_ps(p, v);
}
// The first n (1..16) lanes only: the last n-tile of a matrix whose N is not a multiple of 16.
inline void store_first(float* p, F32x16 v, int n) {
  _mm512_mask_storeu_ps(p, static_cast<__mmask16>((1u << n) - 1), v);
}

// 16 fp16 weight scales (any alignment) → fp32 at a 64-byte aligned address (VCVTPH2PS, exact).
inline void fp16x16_to_f32(const void* src, float* dst) {
  const __m256i h = _mm256_loadu_si256(static_cast<const __m256i*>(src));
  _mm512_store_ps(dst, _mm512_maskz_cvtph_ps(static_cast<__mmask16>(0xffff), h));  // see above
}

// q8_0_x16 quants (uint8, weight + 128) → signed int8, 64 bytes (one B-tile row).
inline void unpack_q8(const uint8_t* src, int8_t* dst) {
  const __m512i v = _mm512_loadu_si512(src);
  _mm512_store_si512(dst, _mm512_xor_si512(v, _mm512_set1_epi8(static_cast<char>(0x80))));
}

// q4_0_x16 quants, 64 bytes holding B-tile row j in the low nibbles and row j + 4 in the high
// nibbles → two rows of signed int8 (nibble - 8).
inline void unpack_q4(const uint8_t* src, int8_t* lo, int8_t* hi) {
  const __m512i v = _mm512_loadu_si512(src);
  const __m512i mask = _mm512_set1_epi8(0x0f);
  const __m512i eight = _mm512_set1_epi8(8);
  _mm512_store_si512(lo, _mm512_sub_epi8(_mm512_and_si512(v, mask), eight));
  _mm512_store_si512(hi, _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(v, 4), mask), eight));
}

// Into L2 (PREFETCHT1): for data needed a whole row tile later, not in the next few cycles.
inline void prefetch_l2(const void* p) {
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1);
}

#else  // portable scalar back-end

struct F32x16 {
  float v[16];
};

inline F32x16 zero() {
  return F32x16{};
}
inline F32x16 load(const float* p) {
  F32x16 r;
  std::memcpy(r.v, p, sizeof(r.v));
  return r;
}
inline F32x16 load_i32_as_f32(const int32_t* p) {
  F32x16 r;
  for (int l = 0; l < 16; ++l) r.v[l] = static_cast<float>(p[l]);
  return r;
}
inline F32x16 mul_bcast(F32x16 v, const float* s) {
  const float x = *s;
  for (int l = 0; l < 16; ++l) v.v[l] *= x;
  return v;
}
inline F32x16 fma(F32x16 a, F32x16 b, F32x16 c) {
  for (int l = 0; l < 16; ++l) c.v[l] = std::fma(a.v[l], b.v[l], c.v[l]);
  return c;
}
inline void store(float* p, F32x16 v) {
  std::memcpy(p, v.v, sizeof(v.v));
}
inline void store_first(float* p, F32x16 v, int n) {
  std::memcpy(p, v.v, static_cast<size_t>(n) * sizeof(float));
}

inline void fp16x16_to_f32(const void* src, float* dst) {
  uint16_t h[16];
  std::memcpy(h, src, sizeof(h));  // the packed scales sit at 2-byte, not 32-byte, alignment
  for (int l = 0; l < 16; ++l) dst[l] = fp16_to_fp32(h[l]);
}

inline void unpack_q8(const uint8_t* src, int8_t* dst) {
  for (int i = 0; i < 64; ++i) dst[i] = static_cast<int8_t>(src[i] ^ 0x80);
}

inline void unpack_q4(const uint8_t* src, int8_t* lo, int8_t* hi) {
  for (int i = 0; i < 64; ++i) {
    lo[i] = static_cast<int8_t>((src[i] & 0x0f) - 8);
    hi[i] = static_cast<int8_t>((src[i] >> 4) - 8);
  }
}

inline void prefetch_l2(const void*) {}  // nothing to hide: the emulator has no memory system

#endif  // XTILE_AMX_LANES_AVX512

}  // namespace xtile::XTILE_AMX_NS::lanes
