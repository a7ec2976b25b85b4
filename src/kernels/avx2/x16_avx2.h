// AVX2 readers of the x16 layouts (src/kernels/pack/x16_layout.h), one half-group (8 weight
// rows: bytes 32h..32h+31 of each 64-byte row) at a time: the codes in VNNI order and the
// contract's scale / min / sub-scale vectors. The AVX2 counterpart of avx512/x16_avx512.h, with
// the same interface plus what VPMADDUBSW needs (it saturates its int16 pair sums):
//   T::kSigned        the values are signed (Q8_0, IQ4): pair() gives the int8 values and the
//                     core multiplies |w| by x·sign(w) (pairs ≤ 2·128·127 < 32767); no bias
//   T::kBias          otherwise the codes are q + kBias, 0..kMaxCode, the unsigned operand
//   T::kJjPerMadd     how many jj steps of (a, b) products may be summed in int16 before
//                     VPMADDWD: 4·kMaxCode·127 per step, under 32767
//   kPrep, prep(p, buf), scale_prep / min_prep(p, h, j, buf)   as in the avx512 header: a
//                     superblock's 6-bit codes unpacked to bytes once (all 16 rows)
// Included only by translation units built with AVX2 flags; internal linkage (see the avx512
// header for why).
#pragma once

#include <immintrin.h>

#include <algorithm>
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

namespace x16avx2 {

XTILE_X16_INLINE __m256i load32(const uint8_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
XTILE_X16_INLINE __m256i nibbles_lo(__m256i v) { return _mm256_and_si256(v, _mm256_set1_epi8(0x0f)); }
XTILE_X16_INLINE __m256i nibbles_hi(__m256i v) {
  return _mm256_and_si256(_mm256_srli_epi16(v, 4), _mm256_set1_epi8(0x0f));
}
XTILE_X16_INLINE __m256 fp16x8(const uint8_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
XTILE_X16_INLINE void store32(uint8_t* p, __m256i v) {
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v);
}
XTILE_X16_INLINE __m128i load8(const uint8_t* p) {
  return _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
}
XTILE_X16_INLINE __m256 u8x8_to_f32(__m128i v) { return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(v)); }
XTILE_X16_INLINE __m128i lo4(__m128i v) { return _mm_and_si128(v, _mm_set1_epi8(0x0f)); }
XTILE_X16_INLINE __m128i hi4(__m128i v) { return _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0f)); }
XTILE_X16_INLINE __m128i bits2(__m128i v, int shift) {
  return _mm_and_si128(_mm_srl_epi16(v, _mm_cvtsi32_si128(shift)), _mm_set1_epi8(3));
}
XTILE_X16_INLINE __m128i six(__m128i lo, __m128i hi2) { return _mm_or_si128(lo, _mm_slli_epi16(hi2, 4)); }

// 32 bits of a fifth-bit mask → 32 bytes of 16 where the bit is set.
XTILE_X16_INLINE __m256i mask_to_16s(uint32_t m) {
  const __m256i spread = _mm256_shuffle_epi8(
      _mm256_set1_epi32(static_cast<int>(m)),
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3,
                       3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  const __m256i set = _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
  return _mm256_and_si256(set, _mm256_set1_epi8(16));
}

// The nibble plane of block j, half h, 64-byte row jj.
template <const x16::Geometry& G>
XTILE_X16_INLINE __m256i plane(const uint8_t* p, int h, int j, int jj) {
  return load32(p + G.quants + j * G.quant_bytes + jj * 64 + 32 * h);
}

template <const x16::Geometry& Geo, int kMax>
struct Nibbles {
  static constexpr const x16::Geometry& G = Geo;
  static constexpr bool kSigned = false;
  static constexpr int kBias = -Geo.code_offset;
  // Steps summed in int16 before a VPMADDWD: at most 32767 / (4 · kMax · 127) (4 for 4-bit
  // codes), but 2 where that allows more: with 4, the GEMM ran 25-30 % slower (q4_0 / q4_K /
  // q4_1 M = 512 on 6144×2048: 30-31 ms against 23-25 ms with 2, and 24-26 ms with 1; the
  // GEMV the same), the longer int16 chains costing more than the VPMADDWD saved.
  static constexpr int kJjPerMadd = std::min(2, 32767 / (4 * kMax * 127));
  static constexpr bool kHalves = false;
  static constexpr bool kMin = false;
  static XTILE_X16_INLINE void pair(const uint8_t* p, int h, int j, int jj, __m256i* a, __m256i* b) {
    const __m256i v = plane<Geo>(p, h, j, jj);
    *a = nibbles_lo(v);
    *b = nibbles_hi(v);
  }
  static XTILE_X16_INLINE __m256 scale(const uint8_t* p, int h, int) { return fp16x8(p + 16 * h); }
  static XTILE_X16_INLINE __m256 min(const uint8_t*, int, int) { return _mm256_setzero_ps(); }
  static XTILE_X16_INLINE void sub(const uint8_t*, int, int, __m256i*, __m256i*) {}
  static constexpr int kPrep = 0;
  static XTILE_X16_INLINE void prep(const uint8_t*, uint8_t*) {}
};

struct Q8_0 {
  static constexpr const x16::Geometry& G = x16::kQ8_0;
  static constexpr bool kSigned = true;
  static constexpr int kBias = 0;
  static constexpr int kJjPerMadd = 1;
  static constexpr bool kHalves = false;
  static constexpr bool kMin = false;
  static XTILE_X16_INLINE void pair(const uint8_t* p, int h, int, int jj, __m256i* a, __m256i* b) {
    const __m256i flip = _mm256_set1_epi8(static_cast<char>(0x80));  // stored as w + 128
    *a = _mm256_xor_si256(load32(p + G.quants + jj * 64 + 32 * h), flip);
    *b = _mm256_xor_si256(load32(p + G.quants + (jj + 4) * 64 + 32 * h), flip);
  }
  static XTILE_X16_INLINE __m256 scale(const uint8_t* p, int h, int) { return fp16x8(p + 16 * h); }
  static XTILE_X16_INLINE __m256 min(const uint8_t*, int, int) { return _mm256_setzero_ps(); }
  static XTILE_X16_INLINE void sub(const uint8_t*, int, int, __m256i*, __m256i*) {}
  static constexpr int kPrep = 0;
  static XTILE_X16_INLINE void prep(const uint8_t*, uint8_t*) {}
};

using Q4_0 = Nibbles<x16::kQ4_0, 15>;

template <const x16::Geometry& Geo>
XTILE_X16_INLINE void add_fifth_bit(const uint8_t* p, int h, int j, int jj, __m256i* a, __m256i* b) {
  uint32_t m[2];
  const uint8_t* masks = p + Geo.high + j * Geo.high_bytes + jj * 16;
  std::memcpy(&m[0], masks + 4 * h, 4);      // mask 2jj (low nibbles), bits 32h..32h+31
  std::memcpy(&m[1], masks + 8 + 4 * h, 4);  // mask 2jj + 1 (high nibbles)
  *a = _mm256_or_si256(*a, mask_to_16s(m[0]));
  *b = _mm256_or_si256(*b, mask_to_16s(m[1]));
}

struct Q4_1 : Nibbles<x16::kQ4_1, 15> {
  static constexpr bool kMin = true;
  static XTILE_X16_INLINE __m256 min(const uint8_t* p, int h, int) { return fp16x8(p + G.dmin + 16 * h); }
};

struct Q5_0 : Nibbles<x16::kQ5_0, 31> {
  static XTILE_X16_INLINE void pair(const uint8_t* p, int h, int j, int jj, __m256i* a, __m256i* b) {
    Nibbles::pair(p, h, j, jj, a, b);
    add_fifth_bit<G>(p, h, j, jj, a, b);
  }
};

struct Q5_1 : Nibbles<x16::kQ5_1, 31> {
  static constexpr bool kMin = true;
  static XTILE_X16_INLINE void pair(const uint8_t* p, int h, int j, int jj, __m256i* a, __m256i* b) {
    Nibbles::pair(p, h, j, jj, a, b);
    add_fifth_bit<G>(p, h, j, jj, a, b);
  }
  static XTILE_X16_INLINE __m256 min(const uint8_t* p, int h, int) { return fp16x8(p + G.dmin + 16 * h); }
};

// IQ4: the signed codebook values through VPSHUFB (16 entries per 128-bit lane).
XTILE_X16_INLINE __m256i iq4_lut_s8() {
  alignas(16) int8_t t[16];
  for (int i = 0; i < 16; ++i) t[i] = kIq4Values[i];
  return _mm256_broadcastsi128_si256(_mm_load_si128(reinterpret_cast<const __m128i*>(t)));
}

template <const x16::Geometry& Geo>
struct Codebook : Nibbles<Geo, 15> {
  static constexpr bool kSigned = true;
  static constexpr int kBias = 0;
  static constexpr int kJjPerMadd = 1;
  static XTILE_X16_INLINE void pair(const uint8_t* p, int h, int j, int jj, __m256i* a, __m256i* b) {
    const __m256i lut = iq4_lut_s8();
    Nibbles<Geo, 15>::pair(p, h, j, jj, a, b);
    *a = _mm256_shuffle_epi8(lut, *a);
    *b = _mm256_shuffle_epi8(lut, *b);
  }
};

struct Iq4Nl : Codebook<x16::kIq4Nl> {};

// Q4_K / Q5_K scales and mins from pack6 (see the avx512 header): rows 8h..8h+7 are bytes 8h..
// of each 16-byte run.
template <const x16::Geometry& Geo, int kMax>
struct KQuant : Nibbles<Geo, kMax> {
  static constexpr int kBias = 0;
  static constexpr bool kMin = true;
  static XTILE_X16_INLINE __m256 scale(const uint8_t* p, int h, int j) {
    const __m128i lo = load8(p + Geo.six + 16 * j + 8 * h);
    const __m128i hi = load8(p + Geo.six + 128 + 16 * (j % 4) + 8 * h);
    return _mm256_mul_ps(fp16x8(p + 16 * h), u8x8_to_f32(six(lo4(lo), bits2(hi, 2 * (j / 4)))));
  }
  static XTILE_X16_INLINE __m256 min(const uint8_t* p, int h, int j) {
    const __m128i lo = load8(p + Geo.six + 16 * j + 8 * h);
    const __m128i hi = load8(p + Geo.six + 128 + 16 * (j % 4) + 8 * h);
    const __m256 m = u8x8_to_f32(six(hi4(lo), bits2(hi, 4 + 2 * (j / 4))));
    const __m256 prod = _mm256_mul_ps(fp16x8(p + Geo.dmin + 16 * h), m);
    return _mm256_xor_ps(prod, _mm256_set1_ps(-0.0f));  // −(dmin·m), as ref (also for zero)
  }
  // buf: sc of block j, row r at 16j + r, m at 128 + 16j + r (see the avx512 header).
  static constexpr int kPrep = 256;
  static XTILE_X16_INLINE void prep(const uint8_t* p, uint8_t* buf) {
    const __m256i three = _mm256_set1_epi8(3);
    for (int q = 0; q < 2; ++q) {  // high-bit bytes 32q..32q+31: rows of blocks 2q, 2q + 1 (+4)
      const __m256i hb = load32(p + Geo.six + 128 + 32 * q);
      auto hi = [&](int s) {
        return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * s), three), 4);
      };
      const __m256i lo03 = load32(p + Geo.six + 32 * q);       // blocks 2q, 2q + 1
      const __m256i lo47 = load32(p + Geo.six + 64 + 32 * q);  // blocks 4 + 2q, 5 + 2q
      store32(buf + 32 * q, _mm256_or_si256(nibbles_lo(lo03), hi(0)));
      store32(buf + 64 + 32 * q, _mm256_or_si256(nibbles_lo(lo47), hi(1)));
      store32(buf + 128 + 32 * q, _mm256_or_si256(nibbles_hi(lo03), hi(2)));
      store32(buf + 192 + 32 * q, _mm256_or_si256(nibbles_hi(lo47), hi(3)));
    }
  }
  static XTILE_X16_INLINE __m256 scale_prep(const uint8_t* p, int h, int j, const uint8_t* buf) {
    return _mm256_mul_ps(fp16x8(p + 16 * h), u8x8_to_f32(load8(buf + 16 * j + 8 * h)));
  }
  static XTILE_X16_INLINE __m256 min_prep(const uint8_t* p, int h, int j, const uint8_t* buf) {
    const __m256 m = u8x8_to_f32(load8(buf + 128 + 16 * j + 8 * h));
    const __m256 prod = _mm256_mul_ps(fp16x8(p + Geo.dmin + 16 * h), m);
    return _mm256_xor_ps(prod, _mm256_set1_ps(-0.0f));
  }
};

struct Q4_K : KQuant<x16::kQ4_K, 15> {};

struct Q5_K : KQuant<x16::kQ5_K, 31> {
  static XTILE_X16_INLINE void pair(const uint8_t* p, int h, int j, int jj, __m256i* a, __m256i* b) {
    KQuant::pair(p, h, j, jj, a, b);
    add_fifth_bit<G>(p, h, j, jj, a, b);
  }
};

// Q6_K: codes q + 32 (0..63); the two halves of a block carry their own sub-scale (kHalves): a
// (the first half) and b (the second) never share an int16 sum. Two steps of one half are summed
// in int16 (2 · 2·63·127 = 32004 per pair), then VPMADDWD multiplies them by the half's sub-scale.
struct Q6_K : Nibbles<x16::kQ6_K, 63> {
  static constexpr int kBias = 32;
  static constexpr bool kHalves = true;
  static constexpr int kJjPerMadd = 2;
  static XTILE_X16_INLINE void pair(const uint8_t* p, int h, int j, int jj, __m256i* a, __m256i* b) {
    Nibbles::pair(p, h, j, jj, a, b);
    const __m256i hb = load32(p + G.high + j * G.high_bytes + (jj / 2) * 64 + 32 * h);
    const __m256i two = _mm256_set1_epi8(0x30);
    // Each element's two bits to bits 4-5 of its byte (the AND drops what a 16-bit shift carries
    // in from the neighbouring byte); odd rows hold theirs at bits 4-7: one shift instead of three.
    const __m256i ha = jj % 2 ? hb : _mm256_slli_epi16(hb, 4);
    const __m256i hh = jj % 2 ? _mm256_srli_epi16(hb, 2) : _mm256_slli_epi16(hb, 2);
    *a = _mm256_or_si256(*a, _mm256_and_si256(ha, two));
    *b = _mm256_or_si256(*b, _mm256_and_si256(hh, two));
  }
  // The sub-scales of the 8 rows, halves 0 (lo) and 1 (hi), as int16 twice per 32-bit lane (the
  // VPMADDWD operand against the two int16 pair sums of a row's 4 bytes).
  static XTILE_X16_INLINE void sub(const uint8_t* p, int h, int j, __m256i* lo, __m256i* hi) {
    const __m128i l = load8(p + G.sub + (2 * j) * 16 + 8 * h);
    const __m128i u = load8(p + G.sub + (2 * j + 1) * 16 + 8 * h);
    *lo = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(l, l));
    *hi = _mm256_cvtepi8_epi16(_mm_unpacklo_epi8(u, u));
  }
};

struct Iq4Xs : Codebook<x16::kIq4Xs> {
  static XTILE_X16_INLINE __m256 scale(const uint8_t* p, int h, int j) {
    const __m128i lo = load8(p + G.six + 16 * (j % 4) + 8 * h);
    const __m128i hi = load8(p + G.six + 64 + 16 * (j % 2) + 8 * h);
    const __m128i l4 = j / 4 ? hi4(lo) : lo4(lo);
    const __m256 ls = u8x8_to_f32(six(l4, bits2(hi, 2 * (j / 2))));
    return _mm256_mul_ps(fp16x8(p + 16 * h), _mm256_sub_ps(ls, _mm256_set1_ps(32.0f)));
  }
  // buf: ls of block j, row r at 16j + r (see the avx512 header).
  static constexpr int kPrep = 128;
  static XTILE_X16_INLINE void prep(const uint8_t* p, uint8_t* buf) {
    const __m256i three = _mm256_set1_epi8(3);
    const __m256i hb = load32(p + G.six + 64);  // bits 2s: blocks 2s, 2s + 1
    auto hi = [&](int s) {
      return _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(hb, 2 * s), three), 4);
    };
    const __m256i lo01 = load32(p + G.six), lo23 = load32(p + G.six + 32);
    store32(buf, _mm256_or_si256(nibbles_lo(lo01), hi(0)));
    store32(buf + 32, _mm256_or_si256(nibbles_lo(lo23), hi(1)));
    store32(buf + 64, _mm256_or_si256(nibbles_hi(lo01), hi(2)));
    store32(buf + 96, _mm256_or_si256(nibbles_hi(lo23), hi(3)));
  }
  static XTILE_X16_INLINE __m256 scale_prep(const uint8_t* p, int h, int j, const uint8_t* buf) {
    const __m256 ls = u8x8_to_f32(load8(buf + 16 * j + 8 * h));
    return _mm256_mul_ps(fp16x8(p + 16 * h), _mm256_sub_ps(ls, _mm256_set1_ps(32.0f)));
  }
};

}  // namespace x16avx2

}  // namespace
}  // namespace xtile
