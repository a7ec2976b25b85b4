// Q8_0 / Q4_0 GEMV and GEMM on the x16 layouts with AVX2 (layouts: kernel_api.h).
//
// The contract per output (DESIGN.md §3): isum exact in int32 per 32-block, then
// acc = fma((float)isum, dw * dx, acc) over the blocks in order from 0. AVX2 has no VPDPBUSD;
// the int8 dot is VPMADDUBSW (u8 × s8 → pairs summed into int16, *saturating*) then VPMADDWD
// with ones (int16 pairs → int32). Each step is kept below int16 saturation:
//   q8_0   the packed bytes are w + 128; xor 0x80 gives the signed w back. VPMADDUBSW then takes
//          |w| (VPABSB: 0..128, exact as an unsigned byte) and x·sign(w) (VPSIGNB: activations
//          are within ±127, so the negation cannot wrap). A pair is at most 2·128·127 = 32512
//          < 32767, and it goes straight to VPMADDWD. The dot is the signed isum: no correction.
//   q4_0   the nibbles 0..15 are the unsigned operand as they are, x the signed one: a pair is at
//          most 2·15·127 = 3810, so the 8 VPMADDUBSW results of a block (4 low-nibble and 4
//          high-nibble vectors) are summed in int16 (<= 30480) before one VPMADDWD; the nibble
//          bias is removed exactly in int32 with -8·s, s the activation block sum.
//   scale  vcvtph2ps(dw) then vmulps by the broadcast dx: the product rounded to fp32 first, and
//          only then vfmadd231ps (never folded into one fma).
// One ymm covers 8 weight rows (half of an x16 group: bytes 32..63 of each 64-byte row j are
// rows 8..15) for one activation row.
//
// Register blocking (16 ymm):
//   GEMM  4 activation rows × 8 weight rows: 4 int32 + 4 float accumulators, the weight vector
//         (signed and absolute, or low and high nibbles), a broadcast and temporaries. It is
//         bound by vector ALU work, not by memory: q8_0 spends 4 instructions (VPSIGNB,
//         VPMADDUBSW, VPMADDWD, VPADDD) per 32 multiply-adds and row, plus 3 per weight vector;
//         3×16 and 2×32 blocks measured the same (docs/KERNELS.md). Loop nest as the avx512
//         GEMM: K chunks of 2048 (the fold resumes from y), M chunks of 256 KB of activations,
//         half-group weight panels (q8_0: 16 KB of quants, L1), register blocks innermost.
//   GEMV  1 row × 64 weight rows, 2 × 32, 3 × 16; 4-6 rows as two blocks over the same weight
//         tile (the second finds it in L1/L2), so the weights stream from memory once for up
//         to 6 rows. One row reads 4 groups = 4 sequential streams at once: one stream does not
//         keep enough misses in flight to reach the memory bandwidth. Software prefetch to L2,
//         1 KB ahead per stream.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "kernels/avx2/avx2_kernels.h"

namespace xtile::avx2 {

namespace {

constexpr int64_t kScaleBytes = 32;       // 16 fp16 scales at the start of each group-block
constexpr int64_t kQ8BlockBytes = 544;    // 32 + 512
constexpr int64_t kQ4BlockBytes = 288;    // 32 + 256
constexpr int kGemmRows = 4;              // GEMM register block: activation rows
constexpr int kGemmHalves = 1;            //                      half-groups (8 weight rows)
constexpr int64_t kKChunkBlocks = 64;     // GEMM K chunk: 2048 of K
constexpr int64_t kActChunkBytes = 256 << 10;  // GEMM M chunk: activation bytes kept in L2
constexpr int64_t kPrefetchBytes = 1024;  // GEMV software prefetch (to L2) distance per stream

enum class Src { q8, q4 };

inline __m256i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);  // a plain load, folded into VPBROADCASTD's memory operand
  return _mm256_set1_epi32(v);
}

// Bytes of half-group h's block 0: scales at +0 (8 fp16), quants of row j at +32 + 64*j.
// Half h is rows 8h..8h+7 of the matrix: group h/2, byte offset 32*(h%2) within each 64-byte row
// of quants and 16*(h%2) within the scales.
struct HalfPtr {
  const uint8_t* quants;
  const uint8_t* scales;
};
inline HalfPtr half_ptr(const uint8_t* data, int64_t nb, int64_t block_bytes, int64_t h) {
  const uint8_t* g = data + (h >> 1) * nb * block_bytes;
  return {g + kScaleBytes + (h & 1) * 32, g + (h & 1) * 16};
}

// One half-group, one block: the exact int32 dot for each of MR activation rows (row r's 32
// quants at xb + r * q_stride, its block sum at xs[r * s_stride]).
template <int MR, Src S>
inline void half_block_dot(const uint8_t* q, const int8_t* xb, int64_t q_stride,
                           const int32_t* xs, int64_t s_stride, __m256i (&iacc)[MR]) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (S == Src::q8) {
    const __m256i bias = _mm256_set1_epi8(static_cast<char>(0x80));
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + j * 64));
      const __m256i ws = _mm256_xor_si256(v, bias);  // signed weights
      const __m256i wa = _mm256_abs_epi8(ws);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const __m256i sx = _mm256_sign_epi8(broadcast4(xb + r * q_stride + 4 * j), ws);
        const __m256i p = _mm256_madd_epi16(_mm256_maddubs_epi16(wa, sx), ones);
        iacc[r] = j == 0 ? p : _mm256_add_epi32(iacc[r], p);
      }
    }
  } else {
    const __m256i low_nibbles = _mm256_set1_epi8(0x0f);
    __m256i s16[MR];
    // Byte (j*16 + r)*4 + i holds k = 4j+i (low nibble) and k = 16+4j+i (high nibble).
#pragma GCC unroll 4
    for (int j = 0; j < 4; ++j) {
      const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q + j * 64));
      const __m256i lo = _mm256_and_si256(v, low_nibbles);
      const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low_nibbles);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const __m256i t =
            _mm256_add_epi16(_mm256_maddubs_epi16(lo, broadcast4(xb + r * q_stride + 4 * j)),
                             _mm256_maddubs_epi16(hi, broadcast4(xb + r * q_stride + 16 + 4 * j)));
        s16[r] = j == 0 ? t : _mm256_add_epi16(s16[r], t);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m256i corr = _mm256_set1_epi32(-(xs[r * s_stride] * 8));  // nibbles are w + 8
      iacc[r] = _mm256_add_epi32(_mm256_madd_epi16(s16[r], ones), corr);
    }
  }
}

// A register block's activation rows from block b0 of a K chunk: row r's quants at
// q + r * q_stride, its scales and sums at d/s + r * ds_stride; `blocks` blocks of 32.
// resume: the fold continues from the partial sums in y (a K chunk after the first).
struct Acts {
  const int8_t* q;
  const float* d;
  const int32_t* s;
  int64_t q_stride, ds_stride, blocks;
  bool resume;
};

inline Acts acts_at(const QuantizedActs& x, int64_t m, int64_t b0, int64_t blocks, bool resume) {
  const int64_t nb = x.k / 32;
  return {x.q + m * x.k + b0 * 32, x.d + m * nb + b0, x.s + m * nb + b0, x.k, nb, blocks, resume};
}

// One register block: MR activation rows × NH half-groups (8 weight rows each) starting at half
// h0, blocks [b0, b0 + a.blocks). y points at (row m, column 8 * h0); the last half writes only
// its first `last_valid` (1..8) columns. Within a block the halves are done one after the other
// (int32 sums of one half live at a time), so MR × NH float accumulators + MR int32 sums + ~6
// temporaries fit 16 ymm.
template <int MR, int NH, Src S, bool kPrefetch>
inline void tile(const PackedMatrix& w, int64_t h0, int64_t b0, const Acts& a, float* y,
                 int64_t ldy, int last_valid) {
  constexpr int64_t kBlockBytes = S == Src::q8 ? kQ8BlockBytes : kQ4BlockBytes;
  const int64_t nb = w.k / 32;
  // Lanes below last_valid are read and written; the padding rows of a matrix's last group never.
  const __m256i last_mask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(last_valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  HalfPtr hp[NH];
#pragma GCC unroll 8
  for (int h = 0; h < NH; ++h) {
    hp[h] = half_ptr(w.data, nb, kBlockBytes, h0 + h);
    hp[h].quants += b0 * kBlockBytes;
    hp[h].scales += b0 * kBlockBytes;
  }
  __m256 facc[MR][NH];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int h = 0; h < NH; ++h) {
      // A K chunk after the first resumes the fold from the partial sums it left in y: a float
      // stored and reloaded is the same float, so the chain of fmas is unchanged.
      const float* in = y + r * ldy + h * 8;
      if (!a.resume) facc[r][h] = _mm256_setzero_ps();
      else if (h == NH - 1 && last_valid < 8) facc[r][h] = _mm256_maskload_ps(in, last_mask);
      else facc[r][h] = _mm256_loadu_ps(in);
    }

  for (int64_t b = 0; b < a.blocks; ++b) {
    const int64_t off = b * kBlockBytes;
    if constexpr (kPrefetch) {
      // Every line of the block's span kPrefetchBytes ahead, once per group (the two halves of
      // a group share cache lines).
#pragma GCC unroll 8
      for (int h = 0; h < NH; ++h) {
        if (((h0 + h) & 1) && h > 0) continue;
        const char* p = reinterpret_cast<const char*>(hp[h].scales + off) + kPrefetchBytes;
#pragma GCC unroll 9
        for (int64_t l = 0; l < kBlockBytes; l += 64) _mm_prefetch(p + l, _MM_HINT_T1);
      }
    }
#pragma GCC unroll 8
    for (int h = 0; h < NH; ++h) {
      __m256i iacc[MR];
      half_block_dot<MR, S>(hp[h].quants + off, a.q + b * 32, a.q_stride, a.s + b, a.ds_stride,
                            iacc);
      const __m256 dw =
          _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(hp[h].scales + off)));
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const __m256 dx = _mm256_set1_ps(a.d[r * a.ds_stride + b]);
        const __m256 scale = _mm256_mul_ps(dw, dx);  // rounded to fp32 before the fma
        facc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(iacc[r]), scale, facc[r][h]);
      }
    }
  }

#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int h = 0; h < NH; ++h) {
      float* out = y + r * ldy + h * 8;
      if (h == NH - 1 && last_valid < 8) _mm256_maskstore_ps(out, last_mask, facc[r][h]);
      else _mm256_storeu_ps(out, facc[r][h]);
    }
}

// Columns of the half starting at column n that lie below n1 (1..8).
inline int valid_cols(int64_t n, int64_t n1) {
  return static_cast<int>(std::min<int64_t>(8, n1 - n));
}

// tile<MR, nh> for a run-time nh in 1..NH.
template <int MR, int NH, Src S, bool kPrefetch>
inline void tile_halves(int nh, const PackedMatrix& w, int64_t h0, int64_t b0, const Acts& a,
                        float* y, int64_t ldy, int last_valid) {
  if constexpr (NH > 1) {
    if (nh < NH) return tile_halves<MR, NH - 1, S, kPrefetch>(nh, w, h0, b0, a, y, ldy, last_valid);
  }
  tile<MR, NH, S, kPrefetch>(w, h0, b0, a, y, ldy, last_valid);
}

// GEMV: weight tiles of several halves outside, the activation rows inside in register blocks
// of at most 3 rows (a fourth row's accumulators would not fit 16 ymm next to enough halves), so
// the weights stream from memory once for up to 6 rows and the second block of rows finds the
// tile in L1/L2. Halves per tile: 8 for one row (4 group streams in flight: the memory system
// needs several to reach its read bandwidth), 4 for two, 2 for three (float accumulators <= 8).
template <Src S>
void gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
          int64_t m1, int64_t n0, int64_t n1) {
  const int64_t nb = w.k / 32;
  const int64_t h0 = n0 / 8, h1 = (n1 + 7) / 8;
  for (int64_t mc = m0; mc < m1; mc += 6) {
    const int64_t mc1 = std::min(m1, mc + 6);
    // Rows per register block: 4 rows as 2 + 2, 5 as 3 + 2, 6 as 3 + 3.
    const int64_t rows = mc1 - mc;
    const int64_t mr_first = rows <= 3 ? rows : (rows + 1) / 2;
    const int64_t step = mr_first == 1 ? 8 : mr_first == 2 ? 4 : 2;
    for (int64_t h = h0; h < h1; h += step) {
      const int nh = static_cast<int>(std::min(step, h1 - h));
      const int lv = valid_cols((h + nh - 1) * 8, n1);
      for (int64_t m = mc; m < mc1;) {
        const int64_t mr = m == mc ? mr_first : mc1 - m;
        const Acts a = acts_at(x, m, 0, nb, false);
        float* yt = y + m * ldy + h * 8;
        switch (mr) {
          case 1: tile_halves<1, 8, S, true>(nh, w, h, 0, a, yt, ldy, lv); break;
          case 2: tile_halves<2, 4, S, true>(nh, w, h, 0, a, yt, ldy, lv); break;
          default: tile_halves<3, 2, S, true>(nh, w, h, 0, a, yt, ldy, lv); break;
        }
        m += mr;
      }
    }
  }
}

// GEMM, blocked for the caches like the avx512 one:
//   K chunks of kKChunkBlocks blocks (outermost; the fold resumes from y between chunks),
//   M chunks whose activations (rows × chunk bytes) fit kActChunkBytes, so they stay in L2 while
//     every weight panel passes over them,
//   weight panels of kGemmHalves half-groups × the K chunk (q8_0: 16 KB of quants, L1),
//   register blocks of kGemmRows rows innermost.
template <Src S>
void gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
          int64_t m1, int64_t n0, int64_t n1) {
  const int64_t nb = w.k / 32;
  if (nb == 0) return gemv<S>(w, x, y, ldy, m0, m1, n0, n1);  // K = 0: every output is 0
  const int64_t h0 = n0 / 8, h1 = (n1 + 7) / 8;
  const int64_t kc_max = std::min<int64_t>(nb, kKChunkBlocks);
  const int64_t mc_max = std::max<int64_t>(
      kGemmRows, kActChunkBytes / (kc_max * 32) / kGemmRows * kGemmRows);
  for (int64_t b0 = 0; b0 < nb; b0 += kc_max) {
    const int64_t kc = std::min(kc_max, nb - b0);
    for (int64_t mc0 = m0; mc0 < m1; mc0 += mc_max) {
      const int64_t mc1 = std::min(m1, mc0 + mc_max);
      for (int64_t h = h0; h < h1; h += kGemmHalves) {
        const int nh = static_cast<int>(std::min<int64_t>(kGemmHalves, h1 - h));
        const int lv = valid_cols((h + nh - 1) * 8, n1);
        for (int64_t m = mc0; m < mc1; m += kGemmRows) {
          const Acts a = acts_at(x, m, b0, kc, b0 > 0);
          float* yt = y + m * ldy + h * 8;
          switch (std::min<int64_t>(kGemmRows, mc1 - m)) {
            case 1: tile_halves<1, kGemmHalves, S, false>(nh, w, h, b0, a, yt, ldy, lv); break;
            case 2: tile_halves<2, kGemmHalves, S, false>(nh, w, h, b0, a, yt, ldy, lv); break;
            case 3: tile_halves<3, kGemmHalves, S, false>(nh, w, h, b0, a, yt, ldy, lv); break;
            default: tile_halves<4, kGemmHalves, S, false>(nh, w, h, b0, a, yt, ldy, lv); break;
          }
        }
      }
    }
  }
}

}  // namespace

void q8_0_gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, Layout::q8_0_x16, "q8_0_gemv_1x64__avx2");
  gemv<Src::q8>(w, x, y, ldy, m0, m1, n0, n1);
}

void q8_0_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, Layout::q8_0_x16, "q8_0_gemm_4x8__avx2");
  gemm<Src::q8>(w, x, y, ldy, m0, m1, n0, n1);
}

void q4_0_gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, Layout::q4_0_x16, "q4_0_gemv_1x64__avx2");
  gemv<Src::q4>(w, x, y, ldy, m0, m1, n0, n1);
}

void q4_0_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, Layout::q4_0_x16, "q4_0_gemm_4x8__avx2");
  gemm<Src::q4>(w, x, y, ldy, m0, m1, n0, n1);
}

}  // namespace xtile::avx2
