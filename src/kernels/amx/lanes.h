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

#include "kernels/avx512/x16_avx512.h"
#else
#include <cmath>

#include "base/fp16.h"
#include "kernels/pack/pack.h"
#endif

#include "kernels/pack/x16_layout.h"

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
// A Q6_K block's isum from its two stored C-tile rows (the byte planes, unpack_q6k_planes):
// 256 · C_hi + C_lo, exact in int32 (|isum| < 2^24), then converted like load_i32_as_f32.
inline F32x16 load_planes_as_f32(const int32_t* hi, const int32_t* lo) {
  const __m512i isum =
      _mm512_add_epi32(_mm512_slli_epi32(_mm512_load_si512(hi), 8), _mm512_load_si512(lo));
  return _mm512_maskz_cvtepi32_ps(static_cast<__mmask16>(0xffff), isum);
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

// c + a * s for a scalar s in memory (the min term: one fma, no rounded product first).
inline F32x16 fma_bcast(F32x16 a, const float* s, F32x16 c) {
  return _mm512_fmadd_ps(a, _mm512_set1_ps(*s), c);
}

// Into L2 (PREFETCHT1): for data needed a whole row tile later, not in the next few cycles.
inline void prefetch_l2(const void* p) {
  _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1);
}

// Block b of group g of a packed x16 matrix whose type reads through T (x16_avx512.h): the B
// tile (8 rows × 64 bytes, the signed values q in VNNI order), the 16 block scales and mins.
template <typename T>
inline void unpack_block_as(const PackedMatrix& w, int64_t g, int64_t b, int8_t* bq, float* bs,
                            float* bm) {
  constexpr int bpsb = T::G.elems / 32;
  const int64_t nsb = w.k / T::G.elems;
  const uint8_t* p = w.data + (g * nsb + b / bpsb) * T::G.bytes;
  const int j = static_cast<int>(b % bpsb);
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(T::kBias));
  for (int jj = 0; jj < 4; ++jj) {
    __m512i a, c;
    T::pair(p, j, jj, &a, &c);  // codes q + kBias
    _mm512_store_si512(bq + jj * 64, _mm512_sub_epi8(a, bias));
    _mm512_store_si512(bq + (jj + 4) * 64, _mm512_sub_epi8(c, bias));
  }
  _mm512_store_ps(bs, T::scale(p, j));
  _mm512_store_ps(bm, T::kMin ? T::min(p, j) : _mm512_setzero_ps());
}

// unpack_block_as for a type fixed at compile time (the one place a tile type maps to its reader):
// the streaming K loop unpacks every block inside the loop, so it takes the type as a template
// argument instead of switching once per block.
template <GgmlType kType>
inline constexpr GgmlType kUnpackAs = kType;  // one streaming K loop per type
template <GgmlType kType>
inline void unpack_block_of(const PackedMatrix& w, int64_t g, int64_t b, int8_t* bq, float* bs,
                            float* bm) {
  namespace t = x16avx512;
  if constexpr (kType == GgmlType::Q8_0) unpack_block_as<t::Q8_0>(w, g, b, bq, bs, bm);
  else if constexpr (kType == GgmlType::Q4_0)
    unpack_block_as<t::Q4_0>(w, g, b, bq, bs, bm);
  else if constexpr (kType == GgmlType::Q4_1)
    unpack_block_as<t::Q4_1>(w, g, b, bq, bs, bm);
  else if constexpr (kType == GgmlType::Q5_0)
    unpack_block_as<t::Q5_0>(w, g, b, bq, bs, bm);
  else if constexpr (kType == GgmlType::Q5_1)
    unpack_block_as<t::Q5_1>(w, g, b, bq, bs, bm);
  else if constexpr (kType == GgmlType::IQ4_NL)
    unpack_block_as<t::Iq4Nl>(w, g, b, bq, bs, bm);
  else if constexpr (kType == GgmlType::Q4_K)
    unpack_block_as<t::Q4_K>(w, g, b, bq, bs, bm);
  else if constexpr (kType == GgmlType::Q5_K)
    unpack_block_as<t::Q5_K>(w, g, b, bq, bs, bm);
  else {  // the last tile type: anything else does not compile
    static_assert(kType == GgmlType::IQ4_XS, "unpack_block_of: not a tile type");
    unpack_block_as<t::Iq4Xs>(w, g, b, bq, bs, bm);
  }
}

// Internal linkage (an unnamed namespace, as in x16_avx512.h): too large to be inlined at the
// sanitizer build's -O1, and an out-of-line inline function would be a weak symbol of AVX-512
// code (tests/tier_symbols_test.cpp).
namespace {  // NOLINT(google-build-namespaces)

// Q6_K on tiles (docs/AMX.md "Q6_K on tiles"): block b of group g as two B tiles, byte planes of
// w' = q · sc (q −32..31, sc its half's int8 sub-scale, |w'| ≤ 4096): lo = the low byte of w' as
// int8 and hi = (w' + 128) >> 8 (−16..16), so w' = 256 · hi + lo exactly and the TDPBSSD of the
// two planes give isum = 256 · C_hi + C_lo = Σ_h sc_h · isum_h, the contract's integer. bq: the
// hi plane's tile, then the lo plane's (2 × 512 bytes); bs: d; bm: zeros (no min term).
// Per 64 codes: VPUNPCK{L,H}BW of q with itself + VPSRAW 8 sign-extend the bytes 0-7 and 8-15 of
// each 128-bit lane to int16, VPMULLW by those rows' sub-scales, then VPACKSSWB / VPACKUSWB put
// hi and lo back in the lanes' byte order (AVX-512 BW only: no byte permutes needed).
inline void unpack_q6k_planes(const PackedMatrix& w, int64_t g, int64_t b, int8_t* bq, float* bs,
                              float* bm) {
  using T = x16avx512::Q6_K;
  constexpr int bpsb = T::G.elems / 32;
  const int64_t nsb = w.k / T::G.elems;
  const uint8_t* p = w.data + (g * nsb + b / bpsb) * T::G.bytes;
  const int j = static_cast<int>(b % bpsb);
  // int16 lane l of the unpacked low (high) bytes holds byte 16 (l / 8) + l % 8 (+ 8) of the B row,
  // i.e. weight row 4 (l / 8) + (l % 8) / 4 (+ 2): where each lane takes its sub-scale from.
  alignas(64) static constexpr int16_t kRowOfLane[2][32] = {
      {0, 0, 0, 0, 1, 1, 1, 1, 4,  4,  4,  4,  5,  5,  5,  5,
       8, 8, 8, 8, 9, 9, 9, 9, 12, 12, 12, 12, 13, 13, 13, 13},
      {2,  2,  2,  2,  3,  3,  3,  3,  6,  6,  6,  6,  7,  7,  7,  7,
       10, 10, 10, 10, 11, 11, 11, 11, 14, 14, 14, 14, 15, 15, 15, 15}};
  __m512i pat[2][2];
  for (int h = 0; h < 2; ++h) {
    const __m512i sc = _mm512_castsi256_si512(_mm256_cvtepi8_epi16(
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + T::G.sub + (2 * j + h) * 16))));
    pat[h][0] = _mm512_permutexvar_epi16(_mm512_load_si512(kRowOfLane[0]), sc);
    pat[h][1] = _mm512_permutexvar_epi16(_mm512_load_si512(kRowOfLane[1]), sc);
  }
  const __m512i bias = _mm512_set1_epi8(static_cast<char>(T::kBias));
  const __m512i round = _mm512_set1_epi16(128), low_byte = _mm512_set1_epi16(0xff);
  auto planes = [&](__m512i codes, int h, int8_t* hi, int8_t* lo) {
    const __m512i q = _mm512_sub_epi8(codes, bias);
    const __m512i wa =
        _mm512_mullo_epi16(_mm512_srai_epi16(_mm512_unpacklo_epi8(q, q), 8), pat[h][0]);
    const __m512i wb =
        _mm512_mullo_epi16(_mm512_srai_epi16(_mm512_unpackhi_epi8(q, q), 8), pat[h][1]);
    _mm512_store_si512(hi, _mm512_packs_epi16(_mm512_srai_epi16(_mm512_add_epi16(wa, round), 8),
                                              _mm512_srai_epi16(_mm512_add_epi16(wb, round), 8)));
    _mm512_store_si512(
        lo, _mm512_packus_epi16(_mm512_and_si512(wa, low_byte), _mm512_and_si512(wb, low_byte)));
  };
  for (int jj = 0; jj < 4; ++jj) {
    __m512i a, c;
    T::pair(p, j, jj, &a, &c);  // codes q + 32 of k 4jj.. (half 0) and 16 + 4jj.. (half 1)
    planes(a, 0, bq + jj * 64, bq + 512 + jj * 64);
    planes(c, 1, bq + (jj + 4) * 64, bq + 512 + (jj + 4) * 64);
  }
  _mm512_store_ps(bs, T::scale(p, j));
  _mm512_store_ps(bm, _mm512_setzero_ps());
}

}  // namespace

// unpack_block_as for the matrix's type (every type the tiles run; Q6_K as its two planes).
inline void unpack_block(const PackedMatrix& w, int64_t g, int64_t b, int8_t* bq, float* bs,
                         float* bm) {
  switch (w.type) {
    case GgmlType::Q8_0:
      return unpack_block_of<GgmlType::Q8_0>(w, g, b, bq, bs, bm);
    case GgmlType::Q4_0:
      return unpack_block_of<GgmlType::Q4_0>(w, g, b, bq, bs, bm);
    case GgmlType::Q4_1:
      return unpack_block_of<GgmlType::Q4_1>(w, g, b, bq, bs, bm);
    case GgmlType::Q5_0:
      return unpack_block_of<GgmlType::Q5_0>(w, g, b, bq, bs, bm);
    case GgmlType::Q5_1:
      return unpack_block_of<GgmlType::Q5_1>(w, g, b, bq, bs, bm);
    case GgmlType::IQ4_NL:
      return unpack_block_of<GgmlType::IQ4_NL>(w, g, b, bq, bs, bm);
    case GgmlType::Q4_K:
      return unpack_block_of<GgmlType::Q4_K>(w, g, b, bq, bs, bm);
    case GgmlType::Q5_K:
      return unpack_block_of<GgmlType::Q5_K>(w, g, b, bq, bs, bm);
    case GgmlType::IQ4_XS:
      return unpack_block_of<GgmlType::IQ4_XS>(w, g, b, bq, bs, bm);
    case GgmlType::Q6_K:  // two B tiles: 1024 bytes at bq
      return unpack_q6k_planes(w, g, b, bq, bs, bm);
    default:
      return;  // not a tile type: the kernel refuses it before unpacking
  }
}

#else  // portable scalar back-end

struct F32x16 {
  float v[16];
};

// Out of line, with internal linkage: the K loops are instantiated per row count (1..16) and
// inline every lane operation; inlined, each 16-lane loop of this back-end is unrolled into
// every row of every instantiation, and that object took minutes to compile (7-8 min under the
// sanitizers, the largest part of CI's build). A call per lane operation costs the emulator
// nothing it would notice (a TDPBSSD here is 16 × 16 × 64 scalar products).
namespace {  // NOLINT(google-build-namespaces)
#define XTILE_EMU_LANE [[gnu::noinline]]

XTILE_EMU_LANE F32x16 zero() {
  return F32x16{};
}
XTILE_EMU_LANE F32x16 load(const float* p) {
  F32x16 r;
  std::memcpy(r.v, p, sizeof(r.v));
  return r;
}
XTILE_EMU_LANE F32x16 load_i32_as_f32(const int32_t* p) {
  F32x16 r;
  for (int l = 0; l < 16; ++l) r.v[l] = static_cast<float>(p[l]);
  return r;
}
XTILE_EMU_LANE F32x16 load_planes_as_f32(const int32_t* hi, const int32_t* lo) {
  F32x16 r;
  for (int l = 0; l < 16; ++l) r.v[l] = static_cast<float>(256 * hi[l] + lo[l]);
  return r;
}
XTILE_EMU_LANE F32x16 mul_bcast(const F32x16& v, const float* s) {
  F32x16 r;
  for (int l = 0; l < 16; ++l) r.v[l] = v.v[l] * *s;
  return r;
}
XTILE_EMU_LANE F32x16 fma(const F32x16& a, const F32x16& b, const F32x16& c) {
  F32x16 r;
  for (int l = 0; l < 16; ++l) r.v[l] = std::fma(a.v[l], b.v[l], c.v[l]);
  return r;
}
XTILE_EMU_LANE void store(float* p, const F32x16& v) {
  std::memcpy(p, v.v, sizeof(v.v));
}
XTILE_EMU_LANE void store_first(float* p, const F32x16& v, int n) {
  std::memcpy(p, v.v, static_cast<size_t>(n) * sizeof(float));
}

XTILE_EMU_LANE F32x16 fma_bcast(const F32x16& a, const float* s, const F32x16& c) {
  F32x16 r;
  for (int l = 0; l < 16; ++l) r.v[l] = std::fma(a.v[l], *s, c.v[l]);
  return r;
}

}  // namespace
#undef XTILE_EMU_LANE

inline void prefetch_l2(const void*) {}  // nothing to hide: the emulator has no memory system

// Block b of group g of a packed x16 matrix: the B tile (byte j·64 + r·4 + i = q of row r,
// element 4j + i), the 16 block scales and mins, from the contract's terms (packed_terms reads
// any x16 layout; the AVX-512 build decodes the same bytes with vectors, tested equal).
// Q6_K: the two byte planes of w' = q · sub (the AVX-512 build's unpack_q6k_planes), hi's tile
// then lo's: w' = 256 · hi + lo, hi = (w' + 128) >> 8 (an arithmetic shift in C++20).
inline void unpack_block(const PackedMatrix& w, int64_t g, int64_t b, int8_t* bq, float* bs,
                         float* bm) {
  for (int r = 0; r < x16::kRows; ++r) {
    BlockTerms t;
    packed_terms(w, g * x16::kRows + r, b, &t);
    for (int e = 0; e < 32; ++e) {
      const int at = (e / 4) * 64 + r * 4 + e % 4;
      if (w.type != GgmlType::Q6_K) {
        bq[at] = t.q[e];
        continue;
      }
      const int wq = t.q[e] * t.sub[e / 16];
      const int hi = (wq + 128) >> 8;
      bq[at] = static_cast<int8_t>(hi);
      bq[512 + at] = static_cast<int8_t>(wq - 256 * hi);
    }
    bs[r] = t.scale;
    bm[r] = t.min;
  }
}

// The portable unpack reads the type at run time, so one streaming K loop serves every type
// (each instantiation of those loops is compile time: the emulator's scalar lanes unrolled).
template <GgmlType>
inline constexpr GgmlType kUnpackAs = GgmlType::Q8_0;
template <GgmlType>
inline void unpack_block_of(const PackedMatrix& w, int64_t g, int64_t b, int8_t* bq, float* bs,
                            float* bm) {
  unpack_block(w, g, b, bq, bs, bm);
}

#endif  // XTILE_AMX_LANES_AVX512

}  // namespace xtile::XTILE_AMX_NS::lanes
