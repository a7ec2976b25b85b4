// Q8_0 / Q4_0 GEMV and GEMM on the x16 layouts with AVX-512 VNNI (layouts: kernel_api.h).
//
// The contract per output (DESIGN.md §3): isum exact in int32 per 32-block, then
// acc = fma((float)isum, dw * dx, acc) over the blocks in order from 0. Here:
//   isum   VPDPBUSD: the packed weights are the unsigned operand (q8_0 biased by +128, q4_0 the
//          raw nibbles 0..15), the activations the signed one, 4 bytes broadcast from memory
//          (VPBROADCASTD m32: a load-port uop, no shuffle). The bias is removed exactly by
//          starting the int32 accumulator at -128·s (q8_0) or -8·s (q4_0), s the activation
//          block sum, so the correction costs nothing inside the dot loop. VPDPBUSD wraps (never
//          the saturating VPDPBUSDS); the true sums are far inside int32 anyway.
//   scale  vcvtph2ps(dw) then vmulps by the broadcast dx: the product rounded to fp32 first, as
//          the contract says, and only then vfmadd231ps (never folded into one fma).
// One zmm accumulates 16 weight rows (one x16 group) for one activation row: lane r is row r.
//
// Register blocking (32 zmm):
//   GEMM  4 activation rows × 2 groups (32 weight rows): 8 int32 + 8 float accumulators, one
//         weight zmm live per group, 4 activation broadcasts, 2 fp16→fp32 scale vectors. Each
//         weight load feeds 4 VPDPBUSD, each activation broadcast 2. Per block the tile issues
//         64 VPDPBUSD and an epilogue of 8 cvtdq2ps + 8 vmulps + 8 vfmadd (+ 2 vcvtph2ps): the
//         contract's per-block scaling. On Zen 4 the multiplies and fmas share the two pipes
//         VPDPBUSD runs on, which bounds the kernel at 64 / (64 + 16) = 80 % of the VPDPBUSD
//         peak (a register-only loop of that mix measures 81 %); it reaches ~72 %
//         (docs/KERNELS.md), ~90 % with the epilogue removed.
//         Loop nest, blocked for the caches: K chunks of 2048 (the fold resumes from the
//         partial sums left in y), M chunks whose activations fit 256 KB (L2), weight panels of
//         2 groups × the K chunk (q8_0: 68 KB), 4-row register blocks innermost; the M loop runs
//         inside a weight panel, so each panel is read from memory once per M chunk. Q4_0
//         panels are unpacked to q8-style bytes once per panel into a per-thread scratch when
//         more than two register blocks of rows will read them; for fewer, splitting the
//         nibbles in registers costs about what the stores would.
//   GEMV  1-2 rows × 4 groups or 3-4 rows × 2 groups, all of K in one pass: each weight byte is
//         read once per 4 activation rows. Four group streams in flight (each group is a
//         sequential stream nb*block_bytes long) read ~25 % faster than two: one stream does
//         not keep enough misses outstanding to reach the memory bandwidth. Software prefetch
//         to L2, 1 KB ahead in each stream, gains a little more for q8_0 (a prefetch to L1 or
//         2 KB and more ahead lost 10-25 %).
// GCC 12's AVX-512 headers initialise _mm512_undefined_*() from themselves, which its own
// -Wmaybe-uninitialized then reports at every inlined intrinsic (GCC PR 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "base/aligned_buffer.h"
#include "kernels/avx512/avx512_kernels.h"

namespace xtile::avx512 {

namespace {

constexpr int64_t kScaleBytes = 32;        // 16 fp16 scales at the start of each group-block
constexpr int64_t kQ8BlockBytes = 544;     // 32 + 512
constexpr int64_t kQ4BlockBytes = 288;     // 32 + 256
constexpr int64_t kUnpackedBytes = 512;    // one group-block of q4_0 unpacked to q8 VNNI order
constexpr int kGemmRows = 4;               // GEMM register block: activation rows
constexpr int kGemmGroups = 2;             //                      x16 groups (32 weight rows)
constexpr int64_t kPrefetchBytes = 1024;   // GEMV software prefetch (to L2) distance per stream
constexpr int64_t kKChunkBlocks = 64;      // GEMM K chunk: 2048 of K
constexpr int64_t kActChunkBytes = 256 << 10;  // GEMM M chunk: activation bytes kept in L2

// How a tile reads its weight quants.
enum class Src {
  q8,         // packed q8_0: 8 zmm per group-block, straight into VPDPBUSD
  q4,         // packed q4_0: 4 zmm per group-block, nibbles split in registers
  unpacked,   // q4_0 already split into 8 zmm per group-block (per-thread scratch)
};

// Byte addresses of a tile's weights: group g (0..NG-1 within the tile), block b.
struct TileWeights {
  const uint8_t* quants;
  int64_t q_group_stride, q_block_stride;
  const uint8_t* scales;
  int64_t s_group_stride, s_block_stride;
};

// A register block's activation rows, from block b0 of a K chunk: row r's quants at
// q + r * q_stride, its scales and sums at d/s + r * ds_stride; `blocks` blocks of 32.
// resume: the fold continues from the partial sums in y (a K chunk after the first).
struct Acts {
  const int8_t* q;
  const float* d;
  const int32_t* s;
  int64_t q_stride, ds_stride, blocks;
  bool resume;
};

inline __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);  // a plain load, folded into VPBROADCASTD's memory operand
  return _mm512_set1_epi32(v);
}

// One register block: MR activation rows × NG groups over the blocks of `a` (a K chunk). y points
// at (first row, column 16 * first group); the tile's last group has `last_valid` (1..16) rows
// to read and write: the padding rows of a matrix's last group are never touched in y.
template <int MR, int NG, Src S, bool kPrefetch>
inline void tile(const TileWeights& w, const Acts& a, float* y, int64_t ldy, int last_valid) {
  // q8_0: weights are w + 128, so the dot is isum + 128·s; q4_0 nibbles are w + 8.
  constexpr int kBiasShift = S == Src::q8 ? 7 : 3;
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  const __mmask16 last_mask = static_cast<__mmask16>((1u << last_valid) - 1);
  const int8_t* xq = a.q;
  const int64_t k = a.q_stride, nb = a.ds_stride;
  const float* xd = a.d;
  const int32_t* xs = a.s;
  __m512 facc[MR][NG];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int g = 0; g < NG; ++g) {
      // A K chunk after the first resumes the fold from the partial sums it left in y: a float
      // stored and reloaded is the same float, so the chain of fmas is unchanged.
      const float* in = y + r * ldy + g * 16;
      if (!a.resume) facc[r][g] = _mm512_setzero_ps();
      else if (g == NG - 1 && last_valid < 16) facc[r][g] = _mm512_maskz_loadu_ps(last_mask, in);
      else facc[r][g] = _mm512_loadu_ps(in);
    }

  for (int64_t b = 0; b < a.blocks; ++b) {
    const uint8_t* qb = w.quants + b * w.q_block_stride;
    if constexpr (kPrefetch) {
      // Every line of this block's span kPrefetchBytes ahead (scales and quants both).
      constexpr int64_t span = S == Src::q8 ? kQ8BlockBytes : kQ4BlockBytes;
#pragma GCC unroll 4
      for (int g = 0; g < NG; ++g) {
        const char* p = reinterpret_cast<const char*>(w.scales + g * w.s_group_stride +
                                                      b * w.s_block_stride) + kPrefetchBytes;
#pragma GCC unroll 9
        for (int64_t off = 0; off < span; off += 64) _mm_prefetch(p + off, _MM_HINT_T1);
      }
    }
    __m512i iacc[MR][NG];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m512i corr = _mm512_set1_epi32(-(xs[r * nb + b] * (1 << kBiasShift)));
#pragma GCC unroll 4
      for (int g = 0; g < NG; ++g) iacc[r][g] = corr;
    }
    const int8_t* xb = xq + b * 32;
    if constexpr (S == Src::q4) {
      // Byte (j*16 + r)*4 + i holds k = 4j+i (low nibble) and k = 16+4j+i (high nibble).
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j)
#pragma GCC unroll 4
        for (int g = 0; g < NG; ++g) {
          const __m512i v = _mm512_loadu_si512(qb + g * w.q_group_stride + j * 64);
          const __m512i lo = _mm512_and_si512(v, low_nibbles);
          const __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low_nibbles);
#pragma GCC unroll 4
          for (int r = 0; r < MR; ++r) {
            iacc[r][g] = _mm512_dpbusd_epi32(iacc[r][g], lo, broadcast4(xb + r * k + 4 * j));
            iacc[r][g] = _mm512_dpbusd_epi32(iacc[r][g], hi, broadcast4(xb + r * k + 16 + 4 * j));
          }
        }
    } else {
      // zmm j holds k = 4j..4j+3 of each of the 16 rows.
#pragma GCC unroll 8
      for (int j = 0; j < 8; ++j)
#pragma GCC unroll 4
        for (int g = 0; g < NG; ++g) {
          const __m512i v = _mm512_loadu_si512(qb + g * w.q_group_stride + j * 64);
#pragma GCC unroll 4
          for (int r = 0; r < MR; ++r)
            iacc[r][g] = _mm512_dpbusd_epi32(iacc[r][g], v, broadcast4(xb + r * k + 4 * j));
        }
    }
    __m512 dw[NG];
#pragma GCC unroll 4
    for (int g = 0; g < NG; ++g)
      dw[g] = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(
          w.scales + g * w.s_group_stride + b * w.s_block_stride)));
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      const __m512 dx = _mm512_set1_ps(xd[r * nb + b]);
#pragma GCC unroll 4
      for (int g = 0; g < NG; ++g) {
        const __m512 scale = _mm512_mul_ps(dw[g], dx);  // rounded to fp32 before the fma
        facc[r][g] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(iacc[r][g]), scale, facc[r][g]);
      }
    }
  }

#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int g = 0; g < NG; ++g) {
      float* out = y + r * ldy + g * 16;
      if (g == NG - 1 && last_valid < 16) _mm512_mask_storeu_ps(out, last_mask, facc[r][g]);
      else _mm512_storeu_ps(out, facc[r][g]);
    }
}

// The tile shapes a run-time (mr, ng) needs, each a compile-time instantiation: GEMV asks for up
// to 4 groups when mr <= 2, else 2 (16 accumulators at most); GEMM (kMaxGroups = 2) for 2.
template <Src S, bool kPrefetch, int kMaxGroups>
inline void tile_shape(int mr, int ng, const TileWeights& w, const Acts& a, float* y, int64_t ldy,
                       int last_valid) {
#define XTILE_TILE(MR, NG) tile<MR, NG, S, kPrefetch>(w, a, y, ldy, last_valid)
  if constexpr (kMaxGroups > 2) {
    switch (mr * 8 + ng) {
      case 1 * 8 + 3: XTILE_TILE(1, 3); return;
      case 1 * 8 + 4: XTILE_TILE(1, 4); return;
      case 2 * 8 + 3: XTILE_TILE(2, 3); return;
      case 2 * 8 + 4: XTILE_TILE(2, 4); return;
      default: break;
    }
  }
  switch (mr * 8 + ng) {
    case 1 * 8 + 1: XTILE_TILE(1, 1); break;
    case 1 * 8 + 2: XTILE_TILE(1, 2); break;
    case 2 * 8 + 1: XTILE_TILE(2, 1); break;
    case 2 * 8 + 2: XTILE_TILE(2, 2); break;
    case 3 * 8 + 1: XTILE_TILE(3, 1); break;
    case 3 * 8 + 2: XTILE_TILE(3, 2); break;
    case 4 * 8 + 1: XTILE_TILE(4, 1); break;
    default: XTILE_TILE(4, 2); break;
  }
#undef XTILE_TILE
}

// Activation rows [m, m + 4) from block b0, `blocks` blocks.
inline Acts acts_at(const QuantizedActs& x, int64_t m, int64_t b0, int64_t blocks, bool resume) {
  const int64_t nb = x.k / 32;
  return {x.q + m * x.k + b0 * 32, x.d + m * nb + b0, x.s + m * nb + b0, x.k, nb, blocks, resume};
}

// Rows of the group starting at column n that lie below n1 (1..16).
inline int valid_rows(int64_t n, int64_t n1) {
  return static_cast<int>(std::min<int64_t>(16, n1 - n));
}

// TileWeights for groups starting at `group`, block b0, read straight from the packed matrix.
TileWeights packed_weights(const PackedMatrix& w, int64_t group, int64_t b0, int64_t block_bytes) {
  const int64_t nb = w.k / 32;
  const uint8_t* base = w.data + (group * nb + b0) * block_bytes;
  return {base + kScaleBytes, nb * block_bytes, block_bytes, base, nb * block_bytes, block_bytes};
}

// GEMV: the activation rows in chunks of up to 4, each chunk streaming the weights once, all of K
// in one pass (the accumulators never leave registers).
template <Src S>
void gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
          int64_t m1, int64_t n0, int64_t n1, int64_t block_bytes) {
  const int64_t nb = w.k / 32;
  const int64_t g0 = n0 / 16, g1 = (n1 + 15) / 16;
  for (int64_t m = m0; m < m1; m += 4) {
    const int mr = static_cast<int>(std::min<int64_t>(4, m1 - m));
    const int64_t groups_per_tile = mr <= 2 ? 4 : 2;
    const Acts a = acts_at(x, m, 0, nb, false);
    for (int64_t g = g0; g < g1; g += groups_per_tile) {
      const int ng = static_cast<int>(std::min(groups_per_tile, g1 - g));
      tile_shape<S, true, 4>(mr, ng, packed_weights(w, g, 0, block_bytes), a, y + m * ldy + g * 16,
                             ldy, valid_rows((g + ng - 1) * 16, n1));
    }
  }
}

// Per-thread scratch for unpacked q4_0 panels (grows, never shrinks; kept across calls so that
// a forward pass allocates it once per thread).
uint8_t* unpack_scratch(size_t bytes) {
  thread_local AlignedBuffer buf;
  if (buf.size() < bytes) buf = AlignedBuffer(bytes);
  return buf.data();
}

// Splits the q4_0 nibbles of groups [g, g+ng) × blocks [b0, b0+blocks) into q8 VNNI order:
// scratch[(b*ng + gi)*512 + j*64] (b from 0), j 0..3 from the low nibbles, 4..7 from the high.
void unpack_q4_panel(const PackedMatrix& w, int64_t g, int ng, int64_t b0, int64_t blocks,
                     uint8_t* scratch) {
  const int64_t nb = w.k / 32;
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  for (int gi = 0; gi < ng; ++gi) {
    const uint8_t* src = w.data + ((g + gi) * nb + b0) * kQ4BlockBytes + kScaleBytes;
    for (int64_t b = 0; b < blocks; ++b) {
      uint8_t* dst = scratch + (b * ng + gi) * kUnpackedBytes;
      const uint8_t* q = src + b * kQ4BlockBytes;
#pragma GCC unroll 4
      for (int j = 0; j < 4; ++j) {
        const __m512i v = _mm512_loadu_si512(q + j * 64);
        _mm512_store_si512(dst + j * 64, _mm512_and_si512(v, low_nibbles));
        _mm512_store_si512(dst + (j + 4) * 64,
                           _mm512_and_si512(_mm512_srli_epi16(v, 4), low_nibbles));
      }
    }
  }
}

// GEMM, blocked for the caches:
//   K chunks of kKChunkBlocks blocks (outermost; the fold resumes from y between chunks),
//   M chunks whose activations (rows × chunk bytes) fit kActChunkBytes: they stay in L2 while
//     every weight panel of the range passes over them (without this, large M·K streams the
//     activations from L3 once per panel and the kernel runs 2-4× slower),
//   weight panels of 2 groups × the K chunk (q8_0: 68 KB, L2),
//   register blocks of 4 rows innermost.
template <Src S>
void gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
          int64_t m1, int64_t n0, int64_t n1, int64_t block_bytes) {
  const int64_t nb = w.k / 32;
  if (nb == 0) return gemv<S>(w, x, y, ldy, m0, m1, n0, n1, block_bytes);  // K = 0: zeros
  const int64_t g0 = n0 / 16, g1 = (n1 + 15) / 16;
  const int64_t kc_max = std::min<int64_t>(nb, kKChunkBlocks);
  const int64_t mc_max = std::max<int64_t>(
      kGemmRows, kActChunkBytes / (kc_max * 32) / kGemmRows * kGemmRows);
  uint8_t* scratch = nullptr;
  if (S == Src::q4)
    scratch = unpack_scratch(static_cast<size_t>(kc_max * kGemmGroups * kUnpackedBytes));
  for (int64_t b0 = 0; b0 < nb; b0 += kc_max) {
    const int64_t kc = std::min(kc_max, nb - b0);
    for (int64_t mc0 = m0; mc0 < m1; mc0 += mc_max) {
      const int64_t mc1 = std::min(m1, mc0 + mc_max);
      // Unpacking a q4_0 panel costs about what one register block's in-register split costs.
      const bool unpack = S == Src::q4 && mc1 - mc0 > 2 * kGemmRows;
      for (int64_t g = g0; g < g1; g += kGemmGroups) {
        const int ng = static_cast<int>(std::min<int64_t>(kGemmGroups, g1 - g));
        const int last_valid = valid_rows((g + ng - 1) * 16, n1);
        TileWeights tw = packed_weights(w, g, b0, block_bytes);
        if (unpack) {
          unpack_q4_panel(w, g, ng, b0, kc, scratch);
          tw.quants = scratch;
          tw.q_group_stride = kUnpackedBytes;
          tw.q_block_stride = ng * kUnpackedBytes;
        }
        for (int64_t m = mc0; m < mc1; m += kGemmRows) {
          const int mr = static_cast<int>(std::min<int64_t>(kGemmRows, mc1 - m));
          const Acts a = acts_at(x, m, b0, kc, b0 > 0);
          float* yt = y + m * ldy + g * 16;
          if (unpack)
            tile_shape<Src::unpacked, false, kGemmGroups>(mr, ng, tw, a, yt, ldy, last_valid);
          else
            tile_shape<S, false, kGemmGroups>(mr, ng, tw, a, yt, ldy, last_valid);
        }
      }
    }
  }
}

}  // namespace

void q8_0_gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, Layout::q8_0_x16, "q8_0_gemv_1x64__avx512vnni");
  gemv<Src::q8>(w, x, y, ldy, m0, m1, n0, n1, kQ8BlockBytes);
}

void q8_0_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, Layout::q8_0_x16, "q8_0_gemm_4x32__avx512vnni");
  gemm<Src::q8>(w, x, y, ldy, m0, m1, n0, n1, kQ8BlockBytes);
}

void q4_0_gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, Layout::q4_0_x16, "q4_0_gemv_1x64__avx512vnni");
  gemv<Src::q4>(w, x, y, ldy, m0, m1, n0, n1, kQ4BlockBytes);
}

void q4_0_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
               int64_t m1, int64_t n0, int64_t n1) {
  check_layout(w, Layout::q4_0_x16, "q4_0_gemm_4x32__avx512vnni");
  gemm<Src::q4>(w, x, y, ldy, m0, m1, n0, n1, kQ4BlockBytes);
}

}  // namespace xtile::avx512
