// AVX-512 readers of the x16 layouts (src/kernels/pack/x16_layout.h): for one group of 16 weight
// rows and one 32-block, the codes as VNNI bytes and the contract's scale / min / sub-scale
// vectors (quant/weight_terms.h). One struct per weight type, all with the same interface, so
// that the int8 core of a tier (avx512_matmul.cpp, and the amx build's panel unpack) is written
// once. Included only by translation units built with AVX-512 flags; everything here has
// internal linkage (an unnamed namespace), so no AVX-512 code becomes a weak symbol that a
// portable caller could link to (tests/tier_symbols_test.cpp).
//
// Interface of a type T:
//   T::G                      its Geometry
//   T::kBias                  the codes are q + kBias (unsigned, the VPDPBUSD operand): the dot
//                             is isum + kBias·s, removed by starting the int32 sum at −kBias·s
//   T::kHalves                Q6_K: two sums per block (sub-scales), the bias per half (sl)
//   T::kMin                   the fold has the min term
//   pair(p, j, jj, &a, &b)    p = the group-superblock, j = block in it, jj = 0..3: a holds k
//                             4jj..4jj+3 and b k 16+4jj..16+4jj+3 of the 16 rows (VNNI order)
//   scale(p, j)               16 fp32 block scales (exact)
//   min(p, j)                 16 fp32 mins (kMin types)
//   sub(p, j, &lo, &hi)       16 int32 sub-scales of each half (kHalves types)
//   kPrep, prep(p, buf), scale_prep(p, j, buf), min_prep(p, j, buf)
//                             types whose block scales are 6-bit codes (Q4_K, Q5_K, IQ4_XS)
//                             unpack all of a superblock's codes to bytes once (kPrep bytes at
//                             buf) and read block j's from there: the same values as scale()
//                             and min(), a third of the work in a streaming GEMV
#pragma once

// GCC 12's AVX-512 headers initialise _mm512_undefined_*() from themselves, which its own
// -Wmaybe-uninitialized then reports at every inlined intrinsic (GCC PR 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "kernels/pack/x16_layout.h"
#include "quant/block_formats.h"

// Always inlined: the readers are called per 64 bytes of weights inside the tiles, and GCC's
// inliner gave up on them in the larger register blocks (Q6_K::pair was a call per vector).
#ifndef XTILE_X16_INLINE
#define XTILE_X16_INLINE inline __attribute__((always_inline))
#endif

namespace xtile {
namespace {  // NOLINT(google-build-namespaces): internal linkage on purpose, see above

namespace x16avx512 {

XTILE_X16_INLINE __m512i nibbles_lo(__m512i v) { return _mm512_and_si512(v, _mm512_set1_epi8(0x0f)); }
XTILE_X16_INLINE __m512i nibbles_hi(__m512i v) {
  return _mm512_and_si512(_mm512_srli_epi16(v, 4), _mm512_set1_epi8(0x0f));
}
XTILE_X16_INLINE __m512 fp16x16(const uint8_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
XTILE_X16_INLINE __m512 u8x16_to_f32(__m128i v) { return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(v)); }
XTILE_X16_INLINE __m128i load16(const uint8_t* p) {
  return _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
}
XTILE_X16_INLINE __m128i lo4(__m128i v) { return _mm_and_si128(v, _mm_set1_epi8(0x0f)); }
XTILE_X16_INLINE __m128i hi4(__m128i v) { return _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0f)); }
XTILE_X16_INLINE __m128i bits2(__m128i v, int shift) {
  return _mm_and_si128(_mm_srl_epi16(v, _mm_cvtsi32_si128(shift)), _mm_set1_epi8(3));
}
XTILE_X16_INLINE __m128i six(__m128i lo, __m128i hi2) {
  return _mm_or_si128(lo, _mm_slli_epi16(hi2, 4));  // hi2 <= 3: no bits cross bytes
}

// Codes from the nibble plane of block j (the 4-bit types).
template <const x16::Geometry& G>
XTILE_X16_INLINE __m512i plane(const uint8_t* p, int j, int jj) {
  return _mm512_loadu_si512(p + G.quants + j * G.quant_bytes + jj * 64);
}

// The base: d-only types whose codes are nibbles (Q4_0: bias 8).
template <const x16::Geometry& Geo>
struct Nibbles {
  static constexpr const x16::Geometry& G = Geo;
  static constexpr int kBias = -Geo.code_offset;
  static constexpr bool kHalves = false;
  static constexpr bool kMin = false;
  static XTILE_X16_INLINE void pair(const uint8_t* p, int j, int jj, __m512i* a, __m512i* b) {
    const __m512i v = plane<Geo>(p, j, jj);
    *a = nibbles_lo(v);
    *b = nibbles_hi(v);
  }
  static XTILE_X16_INLINE __m512 scale(const uint8_t* p, int) { return fp16x16(p); }
  static XTILE_X16_INLINE __m512 min(const uint8_t*, int) { return _mm512_setzero_ps(); }
  static XTILE_X16_INLINE void sub(const uint8_t*, int, __m512i*, __m512i*) {}
  static constexpr int kPrep = 0;
  static XTILE_X16_INLINE void prep(const uint8_t*, uint8_t*) {}
};

struct Q8_0 {
  static constexpr const x16::Geometry& G = x16::kQ8_0;
  static constexpr int kBias = 128;
  static constexpr bool kHalves = false;
  static constexpr bool kMin = false;
  static XTILE_X16_INLINE void pair(const uint8_t* p, int, int jj, __m512i* a, __m512i* b) {
    *a = _mm512_loadu_si512(p + G.quants + jj * 64);
    *b = _mm512_loadu_si512(p + G.quants + (jj + 4) * 64);
  }
  static XTILE_X16_INLINE __m512 scale(const uint8_t* p, int) { return fp16x16(p); }
  static XTILE_X16_INLINE __m512 min(const uint8_t*, int) { return _mm512_setzero_ps(); }
  static XTILE_X16_INLINE void sub(const uint8_t*, int, __m512i*, __m512i*) {}
  static constexpr int kPrep = 0;
  static XTILE_X16_INLINE void prep(const uint8_t*, uint8_t*) {}
};

using Q4_0 = Nibbles<x16::kQ4_0>;

// Q4_1 / Q5_1 add an fp16 min per row; Q5_0 / Q5_1 / Q5_K a fifth bit from the masks.
template <const x16::Geometry& Geo>
XTILE_X16_INLINE void add_fifth_bit(const uint8_t* p, int j, int jj, __m512i* a, __m512i* b) {
  uint64_t m[2];
  std::memcpy(m, p + Geo.high + j * Geo.high_bytes + jj * 16, 16);
  const __m512i sixteen = _mm512_set1_epi8(16);
  *a = _mm512_mask_add_epi8(*a, _cvtu64_mask64(m[0]), *a, sixteen);
  *b = _mm512_mask_add_epi8(*b, _cvtu64_mask64(m[1]), *b, sixteen);
}

struct Q4_1 : Nibbles<x16::kQ4_1> {
  static constexpr bool kMin = true;
  static XTILE_X16_INLINE __m512 min(const uint8_t* p, int) { return fp16x16(p + G.dmin); }
};

struct Q5_0 : Nibbles<x16::kQ5_0> {
  static XTILE_X16_INLINE void pair(const uint8_t* p, int j, int jj, __m512i* a, __m512i* b) {
    Nibbles::pair(p, j, jj, a, b);
    add_fifth_bit<G>(p, j, jj, a, b);
  }
};

struct Q5_1 : Nibbles<x16::kQ5_1> {
  static constexpr bool kMin = true;
  static XTILE_X16_INLINE void pair(const uint8_t* p, int j, int jj, __m512i* a, __m512i* b) {
    Nibbles::pair(p, j, jj, a, b);
    add_fifth_bit<G>(p, j, jj, a, b);
  }
  static XTILE_X16_INLINE __m512 min(const uint8_t* p, int) { return fp16x16(p + G.dmin); }
};

// IQ4: the codebook through VPSHUFB (16 entries, repeated per 128-bit lane), +128 to make the
// values unsigned.
XTILE_X16_INLINE __m512i iq4_lut_u8() {
  alignas(16) uint8_t t[16];
  for (int i = 0; i < 16; ++i) t[i] = static_cast<uint8_t>(kIq4Values[i] + 128);
  return _mm512_broadcast_i32x4(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
}

template <const x16::Geometry& Geo>
struct Codebook : Nibbles<Geo> {
  static constexpr int kBias = 128;
  static XTILE_X16_INLINE void pair(const uint8_t* p, int j, int jj, __m512i* a, __m512i* b) {
    const __m512i lut = iq4_lut_u8();
    Nibbles<Geo>::pair(p, j, jj, a, b);
    *a = _mm512_shuffle_epi8(lut, *a);
    *b = _mm512_shuffle_epi8(lut, *b);
  }
};

struct Iq4Nl : Codebook<x16::kIq4Nl> {};

// Q4_K / Q5_K: scale d·sc_j and min −dmin·m_j from the pack6 values (sc_j of row r at 16j + r,
// m_j at 128 + 16j + r: low nibbles of bytes 16j.. and their high nibbles; high bits in byte
// 128 + 16(j % 4) + r, at bit 2(j / 4) for sc and 4 + 2(j / 4) for m).
template <const x16::Geometry& Geo>
struct KQuant : Nibbles<Geo> {
  static constexpr int kBias = 0;
  static constexpr bool kMin = true;
  static XTILE_X16_INLINE __m512 scale(const uint8_t* p, int j) {
    const __m128i lo = load16(p + Geo.six + 16 * j);
    const __m128i hi = load16(p + Geo.six + 128 + 16 * (j % 4));
    return _mm512_mul_ps(fp16x16(p), u8x16_to_f32(six(lo4(lo), bits2(hi, 2 * (j / 4)))));
  }
  static XTILE_X16_INLINE __m512 min(const uint8_t* p, int j) {
    const __m128i lo = load16(p + Geo.six + 16 * j);
    const __m128i hi = load16(p + Geo.six + 128 + 16 * (j % 4));
    const __m512 m = u8x16_to_f32(six(hi4(lo), bits2(hi, 4 + 2 * (j / 4))));
    return neg_product(fp16x16(p + Geo.dmin), m);
  }
  // −(dmin · m) as ref computes it: the exact product, then its sign flipped (also for zero).
  static XTILE_X16_INLINE __m512 neg_product(__m512 dmin, __m512 m) {
    const __m512 prod = _mm512_mul_ps(dmin, m);
    return _mm512_castsi512_ps(
        _mm512_xor_si512(_mm512_castps_si512(prod), _mm512_set1_epi32(INT32_MIN)));
  }
  // buf: sc of block j, row r at 16j + r; m at 128 + 16j + r (bytes). The 128 low-nibble bytes
  // hold sc (low) and m (high) of blocks 0..3 then 4..7; the 64 high-bit bytes hold, at bits
  // 2s, the values of blocks 4s'.. (s = 0: sc 0-3, 1: sc 4-7, 2: m 0-3, 3: m 4-7).
  static constexpr int kPrep = 256;
  static XTILE_X16_INLINE void prep(const uint8_t* p, uint8_t* buf) {
    const __m512i lo0 = _mm512_loadu_si512(p + Geo.six);
    const __m512i lo1 = _mm512_loadu_si512(p + Geo.six + 64);
    const __m512i h = _mm512_loadu_si512(p + Geo.six + 128);
    const __m512i three = _mm512_set1_epi8(3);
    auto hi = [&](int s) {  // bits 2s..2s+1 of each byte, moved to bits 4..5
      return _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(h, 2 * s), three), 4);
    };
    _mm512_storeu_si512(buf, _mm512_or_si512(nibbles_lo(lo0), hi(0)));
    _mm512_storeu_si512(buf + 64, _mm512_or_si512(nibbles_lo(lo1), hi(1)));
    _mm512_storeu_si512(buf + 128, _mm512_or_si512(nibbles_hi(lo0), hi(2)));
    _mm512_storeu_si512(buf + 192, _mm512_or_si512(nibbles_hi(lo1), hi(3)));
  }
  static XTILE_X16_INLINE __m512 scale_prep(const uint8_t* p, int j, const uint8_t* buf) {
    return _mm512_mul_ps(fp16x16(p), u8x16_to_f32(load16(buf + 16 * j)));
  }
  static XTILE_X16_INLINE __m512 min_prep(const uint8_t* p, int j, const uint8_t* buf) {
    return neg_product(fp16x16(p + Geo.dmin), u8x16_to_f32(load16(buf + 128 + 16 * j)));
  }
};

struct Q4_K : KQuant<x16::kQ4_K> {};

struct Q5_K : KQuant<x16::kQ5_K> {
  static XTILE_X16_INLINE void pair(const uint8_t* p, int j, int jj, __m512i* a, __m512i* b) {
    KQuant::pair(p, j, jj, a, b);
    add_fifth_bit<G>(p, j, jj, a, b);
  }
};

// Q6_K: codes q + 32 (0..63) from the nibbles and the two-high-bits plane; per-half bias 32.
struct Q6_K : Nibbles<x16::kQ6_K> {
  static constexpr int kBias = 32;
  static constexpr bool kHalves = true;
  static XTILE_X16_INLINE void pair(const uint8_t* p, int j, int jj, __m512i* a, __m512i* b) {
    const __m512i v = plane<G>(p, j, jj);
    const __m512i h = _mm512_loadu_si512(p + G.high + j * G.high_bytes + (jj / 2) * 64);
    // A byte of the plane holds the two high bits of row 2p's low element at bits 0-1, its high
    // element's at 2-3, row 2p + 1's at 4-5 and 6-7. Masked to the low elements' (0x33) and the
    // high elements' (0xcc) fields, each row's field reaches bits 4-5 with bits 6-7 clear in at
    // most one shift (a 16-bit shift's carry from the neighbouring byte lands in bits 0-3, which
    // the select below takes from the nibble plane): the two masks are the same expressions for
    // both rows of a 64-byte plane row, 5 uops for its 4 fields where a mask per field took 7.
    const __m512i lo_fields = _mm512_and_si512(h, _mm512_set1_epi8(0x33));
    const __m512i hi_fields = _mm512_and_si512(h, _mm512_set1_epi8(static_cast<char>(0xcc)));
    const __m512i ha = jj % 2 ? lo_fields : _mm512_slli_epi16(lo_fields, 4);
    const __m512i hb = jj % 2 ? _mm512_srli_epi16(hi_fields, 2) : _mm512_slli_epi16(hi_fields, 2);
    // Bits 0-3 from the nibble, 4-7 from the high bits, in one VPTERNLOGD each: imm 0xE4 is
    // m ? x : y (m = 0x0f per byte).
    const __m512i low = _mm512_set1_epi8(0x0f);
    *a = _mm512_ternarylogic_epi32(v, ha, low, 0xE4);
    *b = _mm512_ternarylogic_epi32(_mm512_srli_epi16(v, 4), hb, low, 0xE4);
  }
  static XTILE_X16_INLINE void sub(const uint8_t* p, int j, __m512i* lo, __m512i* hi) {
    *lo = _mm512_cvtepi8_epi32(load16(p + G.sub + (2 * j) * 16));
    *hi = _mm512_cvtepi8_epi32(load16(p + G.sub + (2 * j + 1) * 16));
  }
};

// IQ4_XS: scale d·(ls_j − 32), ls_j from pack6 of 128 values (low nibble in byte 16(j % 4) + r,
// nibble j / 4; high bits in byte 64 + 16(j % 2) + r at bit 2(j / 2)).
struct Iq4Xs : Codebook<x16::kIq4Xs> {
  static XTILE_X16_INLINE __m512 scale(const uint8_t* p, int j) {
    const __m128i lo = load16(p + G.six + 16 * (j % 4));
    const __m128i hi = load16(p + G.six + 64 + 16 * (j % 2));
    const __m128i l4 = j / 4 ? hi4(lo) : lo4(lo);
    const __m512 ls = u8x16_to_f32(six(l4, bits2(hi, 2 * (j / 2))));
    return _mm512_mul_ps(fp16x16(p), _mm512_sub_ps(ls, _mm512_set1_ps(32.0f)));
  }
  // buf: ls of block j, row r at 16j + r. Low nibbles: bytes 0..63, blocks 0-3 low and 4-7 high;
  // high bits: 32 bytes, at bits 2s the blocks 2s, 2s + 1 (bytes 0..15 and 16..31 of each).
  static constexpr int kPrep = 128;
  static XTILE_X16_INLINE void prep(const uint8_t* p, uint8_t* buf) {
    const __m512i lo = _mm512_loadu_si512(p + G.six);
    const __m512i h = _mm512_broadcast_i64x4(
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + G.six + 64)));
    const __m512i three = _mm512_set1_epi8(3);
    // Blocks 0-1 in the lower 256 bits take shift 0, blocks 2-3 in the upper take 2; blocks 4-7
    // likewise with 4 and 6.
    const __m512i s03 = _mm512_set_epi64(2, 2, 2, 2, 0, 0, 0, 0);
    const __m512i s47 = _mm512_set_epi64(6, 6, 6, 6, 4, 4, 4, 4);
    auto hi = [&](__m512i counts) {
      return _mm512_slli_epi16(_mm512_and_si512(_mm512_srlv_epi64(h, counts), three), 4);
    };
    _mm512_storeu_si512(buf, _mm512_or_si512(nibbles_lo(lo), hi(s03)));
    _mm512_storeu_si512(buf + 64, _mm512_or_si512(nibbles_hi(lo), hi(s47)));
  }
  static XTILE_X16_INLINE __m512 scale_prep(const uint8_t* p, int j, const uint8_t* buf) {
    const __m512 ls = u8x16_to_f32(load16(buf + 16 * j));
    return _mm512_mul_ps(fp16x16(p), _mm512_sub_ps(ls, _mm512_set1_ps(32.0f)));
  }
};

}  // namespace x16avx512

}  // namespace
}  // namespace xtile
