// GEMV and GEMM of every quantized weight type on the x16 layouts with AVX-512 VNNI: one int8
// core (tile<> below) and, per type, the readers of x16_avx512.h (codes as VNNI bytes, block
// scale, min, sub-scales).
//
// The contract per output (quant/weight_terms.h): per 32-block an exact int32 isum, then
// acc = fma((float)isum, scale · dx, acc) and, for types with mins, acc = fma(min, sd, acc),
// blocks in order from 0. Here:
//   isum   VPDPBUSD: the weight codes are the unsigned operand (q + bias: 128 for Q8_0 and the
//          IQ4 codebook, 8 for Q4_0, 16 for Q5_0, 0 for the unsigned types), the activations
//          the signed one, 4 bytes broadcast from memory (VPBROADCASTD m32: a load-port uop). The
//          bias is removed exactly by *starting* the int32 accumulator at −bias·s, s the
//          activation block sum: nothing in the dot loop. Q6_K keeps the two 16-element halves
//          in two accumulators (started at −32·sl and −32·(s − sl)) and combines them with its
//          int8 sub-scales in fp32 (fold below): |half| ≤ 16·32·128, so every product and the
//          sum stay within 2^24 and exact. VPDPBUSD wraps (never VPDPBUSDS); the true sums fit.
//   scale  the type's exact fp32 block scale (x16_avx512.h), then vmulps by the broadcast dx:
//          rounded to fp32 before vfmadd231ps (never folded into one fma). The min term is one
//          more vfmadd231ps with the broadcast sd.
// One zmm accumulates 16 weight rows (one x16 group) for one activation row: lane r is row r.
//
// Register blocking (32 zmm):
//   GEMM  4 activation rows × 2 groups (32 weight rows): 8 int32 + 8 float accumulators (Q6_K
//         16 int32), one weight zmm pair live per group, the activation broadcasts, 2 scale
//         vectors. Each weight load feeds 4 VPDPBUSD. The per-block epilogue is fixed by the
//         contract (a zmm accumulator gets 8 VPDPBUSD per block, then one convert, one scale
//         product and one fma, plus one fma for a min): on Zen 4 the multiplies and fmas share
//         the two pipes VPDPBUSD runs on, which bounds the Q8_0/Q4_0 kernel at 64 / (64 + 16) =
//         80 % of the VPDPBUSD peak (measured ~72 %, docs/KERNELS.md).
//         Loop nest, blocked for the caches: K chunks of 2048 (the fold resumes from the
//         partial sums left in y), M chunks whose activations fit 256 KB (L2), weight panels of
//         2 groups × the K chunk, 4-row register blocks innermost; the M loop runs inside a
//         weight panel, so each panel is read from memory once per M chunk. When more than two
//         register blocks will read a panel, it is first decoded once into a per-thread scratch
//         (VNNI bytes + fp32 scale and min + sub-scales: 768 bytes per group-block), so the
//         core's loads are plain; Q8_0 is read in place (its bytes are already that).
//   GEMV  1-2 rows × 4 groups (1 group on Zen 4: gemv_streams(), gemv_prefetch.h) or 3-4 rows ×
//         2 groups, all of K in one pass: each weight byte is read once per 4 activation rows,
//         decoded in registers. Each group is a sequential stream of its superblocks; four in
//         flight read ~25 % faster than two on the first machines measured, one (the thread's
//         rows as one stream) fastest on Zen 4.
//         Software prefetch: up to 4 rows, 8 KB ahead over the tile's streams (2 KB each of
//         4; one stream: Q8_0 4 KB, the superblock types 6, the other 32-element types none),
//         to L1 or L2 by the core (gemv_prefetch.h); 5..8 rows, each
//         stream's lines to L2 32 KB ahead and to L1 2 KB ahead. 5..8 rows (a server's batch of
//         decoding sequences) first copy their activations interleaved (interleave_acts), so that
//         the tile reads every row from one pointer: row by row, its 8 quant pointers and 8 value
//         pointers did not fit the general registers (Q4_0 M = 8: 160-175 -> 137-148 µs on
//         6144×2048, 2 threads).
// GCC 12's AVX-512 headers initialise _mm512_undefined_*() from themselves, which its own
// -Wmaybe-uninitialized then reports at every inlined intrinsic (GCC PR 105593, fixed in 13).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "base/aligned_buffer.h"
#include "kernels/avx512/avx512_kernels.h"
#include "kernels/avx512/x16_avx512.h"
#include "kernels/gemv_prefetch.h"

namespace xtile::avx512 {

namespace {

namespace xa = x16avx512;

constexpr int kGemmRows = 4;               // GEMM register block: activation rows
constexpr int kGemmGroups = 2;             //                      x16 groups (32 weight rows)
// GEMV software prefetch: 8 KB ahead in all, shared by the tile's group streams (2 KB per stream
// when a tile reads 4 groups), to L1 (PREFETCHT0): on the Zen 5 VM, 2 threads, the 151936-row
// head GEMV from memory read Q6_K 53.5 -> 62.3 GB/s, Q4_0 64.0 -> 68.3, Q8_0 68.8 -> 72.7 with T0
// instead of T1 (medians of 4-5 alternated runs; no prefetch 42.7), and generation ran 7-16 %
// faster (docs/PERF.md, fourteenth session). The AVX2 GEMV's one-row tile gained as much from
// T0 once it was measured in the model (twentieth session; in the kernel benchmark it had not).
// A 1-group tile with 1 KB kept too few misses in flight:
// Q6_K at M = 8 read the output head at 19 GB/s of the 38 a 4 KB distance reaches. 8 KB over
// 4 KB on the Zen 5 VM (151936 × 2048 head, 2 threads, medians of 5 interleaved runs): M = 8
// Q4_K 18.5 -> 23.2 GB/s, Q6_K 33.6 -> 43.1; M = 1 within that VM's ±25 % noise; 16 KB lost
// Q4_K's gain. On the AMX VM (2026-12-01) the 1-group tile's share at 4, 16 or 32 KB left the
// Q6_K head at M = 8 where 8 KB has it (13.5-13.9 ms, noise): there it is the arithmetic, not
// the distance, that keeps the reads from overlapping.
constexpr int64_t kPrefetchBytes = 8192;
// A tile of one group on a core that reads one stream per tile (gemv_streams() == 1, Zen 4)
// requests Q8_0's stream 4 KB ahead and the other types' 6 KB (IQ4_XS, Q5_K: 12). The 151936 × 2048
// head from memory, one thread of the Zen 4 VM, two alternated rounds at 3 / 4 / 5 / 6 / 8 KB (ms):
// Q8_0 10.9 / 10.9 / 13.2 / 15.6-16.2 / 16.5-16.9; Q4_0 9.0-9.3 / 8.3-8.6 / 7.6 / 6.9-7.2 /
// 7.4-7.6; Q4_K 9.8 / 8.4-8.5 / 7.2-7.5 / 6.1-6.4 / 6.5-6.6; Q6_K 14.9-15.5 / 12.5-12.6 /
// 11.0-11.4 / 9.5-10.7 / 10.6-10.7. The sweep of qwen3-0.6b's GEMVs (two threads, the VM's
// slow memory state) read 89-97 % of the probe at 6 KB, 86-90 % at 8 KB (twenty-ninth session).
// The other 32-element-block types (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL: 16 rows' blocks of 288-384
// bytes one after the other) request nothing there (elsewhere a 1-group tile is only a range's
// last group): the core's own stream prefetcher follows them to the bandwidth, and the
// requests only cost. The same head, one thread, two alternated rounds (ms, 6 KB ahead / none):
// one row Q4_0 6.1-6.3 / 5.6, Q4_1 7.7-7.9 / 6.0-6.2, Q5_0 7.8 / 6.9-7.0, IQ4_NL 6.2-6.3 /
// 5.5-5.6; two rows Q4_0 6.5-6.8 / 6.0-6.1, Q4_1 7.1-7.3 / 6.5-6.7, Q5_0 8.0-8.3 / 8.2; Q8_0 at
// 4 KB / none 12.7-13.3 / 12.7-13.5 and, in the model, mixed: kept. The superblock types lose
// without (Q5_K 7.9 / 19 ms). In the model (`xtile bench -p 0 -n 64 -r 2`, pairs in the same
// memory state) qwen3-1.7b Q4_0 +6-10 %, qwen3-0.6b Q4_0 +7-9 % (docs/PERF.md, thirty-first
// session). IQ4_XS and Q5_K request 12 KB ahead instead of 6: the same head, one thread, two to
// five alternated rounds at 6 / 9 / 12 / 16 KB (ms): IQ4_XS 5.7-5.9 / 5.0-5.2 / 4.9-5.1 / 4.6-4.9,
// Q5_K 7.5-8.1 / 6.8-7.4 / 6.5-7.3 / 6.2-6.9, while Q6_K is slowest beyond 6 KB (9.4-9.6 /
// 9.8-10.5 / 10.2-11.4) and Q4_K moves within the noise (6.1 / 5.9-6.3 / 5.8-6.0 / 5.7-6.4). In
// the model, alternated pairs whose probes both read the fast state, tg64 old / new: qwen3-1.7b
// IQ4_XS 46.8 / 50.6, 47.1 / 47.8, 49.5 / 47.2, 46.8 / 47.1, 48.6 / 50.6; Q5_K_M 37.5 / 38.7,
// 38.1 / 40.1 (docs/PERF.md, thirty-second session).
template <typename T, int NG>
constexpr int64_t kPrefetchPerStream =
    NG > 1                                                        ? kPrefetchBytes / NG
    : std::is_same_v<T, xa::Q8_0>                                 ? 4096
    : T::G.elems == 32                                            ? 0
    : std::is_same_v<T, xa::Iq4Xs> || std::is_same_v<T, xa::Q5_K> ? 12288
                                                                  : 6144;
// Tiles of 5..8 rows (a server's batch of decoding sequences) do 5-8× one row's arithmetic per
// weight byte, and their interleaved activations (8 × K bytes: 16 KB at K = 2048) share L1 with
// the lines requested ahead: 8 KB to L1 left them reading the 151936 × 2048 Q4_0 head at M = 8
// in 5.5-6.3 ms, 16 KB to L1 in 7.2-7.3. Two distances instead: each stream's lines to L2 32 KB
// ahead (the misses to memory then start early enough to overlap the arithmetic) and to L1 2 KB
// ahead (from L2, in time for the loads): 3.95-4.4 ms, as fast as one row reads it; in the model
// 8 sequences decode 15-17 % faster (qwen3-1.7b Q4_0, `xtile bench -np 8`; Zen 5 VM, docs/PERF.md
// sixteenth session). Fewer rows keep the single distance: one row is bound by the stream alone
// (tg64 the same or 5 % slower with the two), and 2-4 rows measured within the VM's noise.
constexpr int64_t kRowsNearBytes = 2048;  // 5..8 rows: per stream, PREFETCHT0
constexpr int64_t kRowsFarBytes = 32768;  //            per stream, PREFETCHT1

// Requests one block's share (kSpan bytes) of a group stream whose block starts at `at`.
template <int MR, int NG, typename T, int64_t kSpan>
inline void prefetch_block(const char* at, bool to_l2) {
  // A name, not the variable template: clang's _mm_prefetch is a macro, and <T, NG>'s comma
  // splits its arguments.
  constexpr int64_t kAhead = kPrefetchPerStream<T, NG>;
  if constexpr (MR > 4) {
#pragma GCC unroll 8
    for (int64_t off = 0; off < kSpan; off += 64) {
      _mm_prefetch(at + kRowsFarBytes + off, _MM_HINT_T1);
      _mm_prefetch(at + kRowsNearBytes + off, _MM_HINT_T0);
    }
  } else if (kAhead == 0) {  // the core's stream prefetcher alone (kPrefetchPerStream)
  } else if (to_l2) {        // gemv_prefetch.h: the core decides which level is better
#pragma GCC unroll 8
    for (int64_t off = 0; off < kSpan; off += 64) _mm_prefetch(at + kAhead + off, _MM_HINT_T1);
  } else {
#pragma GCC unroll 8
    for (int64_t off = 0; off < kSpan; off += 64) _mm_prefetch(at + kAhead + off, _MM_HINT_T0);
  }
}
constexpr int64_t kKChunkBlocks = 64;      // GEMM K chunk: 2048 of K (a multiple of 256)
constexpr int64_t kGemvMaxRows = 64;       // the most rows the GEMV takes (registry's switch)
constexpr int64_t kActChunkBytes = 256 << 10;  // GEMM M chunk: activation bytes kept in L2

// A decoded group-block in the GEMM scratch: 8 VNNI rows of codes, fp32 scale, fp32 min, and the
// two halves' int32 sub-scales.
constexpr int64_t kRecBytes = 768;
constexpr int kRecScale = 512, kRecMin = 576, kRecSubLo = 640, kRecSubHi = 704;

// Reads a decoded record (see kRecBytes) with the bias, halves and min of the source type T.
template <typename T>
struct Decoded {
  static constexpr const x16::Geometry& G = T::G;
  static constexpr int kBias = T::kBias;
  static constexpr bool kHalves = T::kHalves;
  static constexpr bool kMin = T::kMin;
  static constexpr int kPrep = 0;
  static inline void prep(const uint8_t*, uint8_t*) {}
  static inline void pair(const uint8_t* p, int, int jj, __m512i* a, __m512i* b) {
    *a = _mm512_load_si512(p + jj * 64);
    *b = _mm512_load_si512(p + (jj + 4) * 64);
  }
  static inline __m512 scale(const uint8_t* p, int) {
    return _mm512_load_ps(reinterpret_cast<const float*>(p + kRecScale));
  }
  static inline __m512 min(const uint8_t* p, int) {
    return _mm512_load_ps(reinterpret_cast<const float*>(p + kRecMin));
  }
  static inline void sub(const uint8_t* p, int, __m512i* lo, __m512i* hi) {
    *lo = _mm512_load_si512(p + kRecSubLo);
    *hi = _mm512_load_si512(p + kRecSubHi);
  }
};

// Where a tile finds group gi's data for block b (counted from the tile's first block):
// packed: the group-superblock at base + gi·group_stride + (b / bpsb)·sb_stride, block b % bpsb;
// decoded: the record at base + (b·groups + gi)·kRecBytes.
struct TileWeights {
  const uint8_t* base;
  int64_t group_stride;
  int64_t sb_stride;
  int bpsb;    // blocks per superblock (1 or 8)
  int groups;  // decoded: groups per record row
};

// Blocks of 32 per superblock of T's packed type (1 or 8) are a constant: as a run-time divisor
// they cost an IDIV per block in every tile, on the path to the block's weight loads.
template <typename T, bool kDecoded>
inline const uint8_t* weights_at(const TileWeights& w, int gi, int64_t b, int* j) {
  constexpr uint64_t kBpsb = T::G.elems / 32;
  if constexpr (kDecoded) {
    *j = 0;
    return w.base + (b * w.groups + gi) * kRecBytes;
  } else {
    const uint64_t ub = static_cast<uint64_t>(b);  // >= 0: the split is a shift and a mask
    *j = static_cast<int>(ub % kBpsb);
    return w.base + gi * w.group_stride + static_cast<int64_t>(ub / kBpsb) * w.sb_stride;
  }
}

// A register block's activation rows, from block b0 of a K chunk: row r's quants at
// q + r * q_stride, its per-block values at d/s/sd/sl + r * ds_stride; `blocks` blocks of 32.
// resume: the fold continues from the partial sums in y (a K chunk after the first).
// Interleaved (the GEMV's 5..8-row chunks, interleave_acts): the same values reordered for one
// chunk of IL rows so that a tile addresses every row from one pointer with constant offsets,
// and the isums' starting values −bias·s computed once (start).
struct Acts {
  const int8_t* q;
  const float* d;
  const int32_t* s;
  const float* sd;
  const int32_t* sl;
  int64_t q_stride, ds_stride, blocks;
  bool resume;
  const int32_t* start = nullptr;
};

// Where a tile finds row r's values of block b: kIl = 0, row-major (QuantizedActs); kIl = IL,
// interleaved for IL rows: per block, the rows' values side by side (index b·IL + r), and the
// 32 quants as eight 4-byte words, word-major: word w of row r at ((b·8 + w)·IL + r)·4. With 8
// rows row-major the tile kept 8 quant pointers and 8 per-block value pointers live, more than
// the 16 general registers: a third of the 8-row tile's instructions were pointer spills.
template <int kIl>
inline int64_t act_index(const Acts& a, int r, int64_t b) {
  if constexpr (kIl > 0)
    return b * kIl + r;
  else
    return r * a.ds_stride + b;
}
template <int kIl>
inline const int8_t* act_word(const Acts& a, int r, int64_t b, int w) {
  if constexpr (kIl > 0)
    return a.q + ((b * 8 + w) * kIl + r) * 4;
  else
    return a.q + r * a.q_stride + b * 32 + 4 * w;
}

inline __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);  // a plain load, folded into VPBROADCASTD's memory operand
  return _mm512_set1_epi32(v);
}

// A group's terms for one block: the fp32 scale and min (T::prep's codes when the type has them)
// and Q6_K's sub-scales, as floats (exact: int8 values), converted once for all the rows.
struct BlockTerms {
  __m512 ws, wm;
  __m512 sub_lo, sub_hi;
};
template <typename T>
XTILE_X16_INLINE BlockTerms block_terms(const uint8_t* p, int j, const uint8_t* prep) {
  BlockTerms t{_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps()};
  if constexpr (T::kPrep > 0) {
    t.ws = T::scale_prep(p, j, prep);
    if constexpr (T::kMin) t.wm = T::min_prep(p, j, prep);
  } else {
    t.ws = T::scale(p, j);
    if constexpr (T::kMin) t.wm = T::min(p, j);
  }
  if constexpr (T::kHalves) {
    __m512i lo, hi;
    T::sub(p, j, &lo, &hi);
    t.sub_lo = _mm512_cvtepi32_ps(lo);
    t.sub_hi = _mm512_cvtepi32_ps(hi);
  }
  return t;
}

// The start of row r's exact isum for block b: −bias·s (Q6_K: each half's, from sl and s − sl;
// the other types use ia alone and ib stays 0).
template <typename T, int kIl>
XTILE_X16_INLINE void start_isum(const Acts& a, int r, int64_t b, __m512i* ia, __m512i* ib) {
  const int64_t i = act_index<kIl>(a, r, b);
  if constexpr (kIl > 0) {
    static_assert(!T::kHalves, "interleaved activations are for types without halves");
    *ia = _mm512_set1_epi32(a.start[i]);
    *ib = _mm512_setzero_si512();
  } else if constexpr (T::kHalves) {
    *ia = _mm512_set1_epi32(-T::kBias * a.sl[i]);
    *ib = _mm512_set1_epi32(-T::kBias * (a.s[i] - a.sl[i]));
  } else {
    *ia = _mm512_set1_epi32(-T::kBias * a.s[i]);
    *ib = _mm512_setzero_si512();
  }
}

// The contract's fold of one row and block i (quant/weight_terms.h): isum (Q6_K: its halves
// times their sub-scales), then acc = fma(isum, fl(scale · dx), acc) and, with mins,
// acc = fma(min, sd, acc).
template <typename T>
XTILE_X16_INLINE __m512 fold(__m512 acc, __m512i ia, __m512i ib, const BlockTerms& t, const Acts& a,
                             int64_t i) {
  __m512 isum;
  if constexpr (T::kHalves) {
    // Σ_h sub_h · isum_h in fp32, exactly: |isum_h| ≤ 16 · 32 · 128 = 2^16 and |sub_h| ≤ 128,
    // so each product is an integer of magnitude ≤ 2^23 and their sum ≤ 2^24, all representable:
    // the fma's one rounding changes nothing and isum is the integer of the contract. Two
    // conversions, a multiply and an fma instead of two VPMULLD (two uops each on Intel), an
    // add and a conversion.
    isum = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ia), t.sub_lo,
                           _mm512_mul_ps(_mm512_cvtepi32_ps(ib), t.sub_hi));
  } else {
    isum = _mm512_cvtepi32_ps(ia);
  }
  const __m512 scale = _mm512_mul_ps(t.ws, _mm512_set1_ps(a.d[i]));  // rounded
  acc = _mm512_fmadd_ps(isum, scale, acc);
  if constexpr (T::kMin) acc = _mm512_fmadd_ps(t.wm, _mm512_set1_ps(a.sd[i]), acc);
  return acc;
}

// One register block: MR activation rows × NG groups over the blocks of `a` (a K chunk). y points
// at (first row, column 16 * first group); the tile's last group has `last_valid` (1..16) rows
// to read and write: the padding rows of a matrix's last group are never touched in y.
template <int MR, int NG, typename T, bool kDecoded, int64_t kPrefetchSpan, int kIl = 0>
inline void tile(const TileWeights& w, const Acts& a, float* y, int64_t ldy, int last_valid) {
  static_assert(kIl == 0 || kIl == MR, "an interleaved chunk is one tile's rows");
  const __mmask16 last_mask = static_cast<__mmask16>((1u << last_valid) - 1);
  const bool prefetch_l2 = kPrefetchSpan > 0 && gemv_prefetch_to_l2();
  __m512 facc[MR][NG];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int g = 0; g < NG; ++g) {
      // A K chunk after the first resumes the fold from the partial sums it left in y: a float
      // stored and reloaded is the same float, so the chain of fmas is unchanged.
      const float* in = y + r * ldy + g * 16;
      if (!a.resume) facc[r][g] = _mm512_setzero_ps();
      else if (g == NG - 1 && last_valid < 16) facc[r][g] = _mm512_maskz_loadu_ps(last_mask, in);
      else facc[r][g] = _mm512_loadu_ps(in);
    }

  // Types with 6-bit block scales: each group's superblock codes unpacked once (T::prep).
  alignas(64) uint8_t prep[NG][T::kPrep > 0 ? T::kPrep : 1];
  for (int64_t b = 0; b < a.blocks; ++b) {
    const uint8_t* p[NG];
    int j = 0;
#pragma GCC unroll 8
    for (int g = 0; g < NG; ++g) p[g] = weights_at<T, kDecoded>(w, g, b, &j);
    if constexpr (T::kPrep > 0) {
      if (j == 0)
#pragma GCC unroll 8
        for (int g = 0; g < NG; ++g) T::prep(p[g], prep[g]);
    }
    if constexpr (kPrefetchSpan > 0) {
      // This block's share of each group's stream, ahead (the stream of a group is its
      // superblocks one after the other, kPrefetchSpan bytes per block on average).
#pragma GCC unroll 8
      for (int g = 0; g < NG; ++g)
        prefetch_block<MR, NG, T, kPrefetchSpan>(
            reinterpret_cast<const char*>(w.base + g * w.group_stride) + b * kPrefetchSpan,
            prefetch_l2);
    }
    __m512i ia[MR][NG], ib[MR][NG];
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      __m512i lo, hi;
      start_isum<T, kIl>(a, r, b, &lo, &hi);
#pragma GCC unroll 8
      for (int g = 0; g < NG; ++g) ia[r][g] = lo, ib[r][g] = hi;
    }
#pragma GCC unroll 8
    for (int jj = 0; jj < 4; ++jj)
#pragma GCC unroll 8
      for (int g = 0; g < NG; ++g) {
        __m512i va, vb;
        T::pair(p[g], j, jj, &va, &vb);
#pragma GCC unroll 8
        for (int r = 0; r < MR; ++r) {
          const __m512i xa = broadcast4(act_word<kIl>(a, r, b, jj));
          const __m512i xb = broadcast4(act_word<kIl>(a, r, b, 4 + jj));
          ia[r][g] = _mm512_dpbusd_epi32(ia[r][g], va, xa);
          if constexpr (T::kHalves)
            ib[r][g] = _mm512_dpbusd_epi32(ib[r][g], vb, xb);
          else
            ia[r][g] = _mm512_dpbusd_epi32(ia[r][g], vb, xb);
        }
      }
#pragma GCC unroll 8
    for (int g = 0; g < NG; ++g) {
      const BlockTerms t = block_terms<T>(p[g], j, prep[g]);
#pragma GCC unroll 8
      for (int r = 0; r < MR; ++r)
        facc[r][g] = fold<T>(facc[r][g], ia[r][g], ib[r][g], t, a, act_index<kIl>(a, r, b));
    }
  }

#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 8
    for (int g = 0; g < NG; ++g) {
      float* out = y + r * ldy + g * 16;
      if (g == NG - 1 && last_valid < 16) _mm512_mask_storeu_ps(out, last_mask, facc[r][g]);
      else _mm512_storeu_ps(out, facc[r][g]);
    }
}

// A GEMV register block of 5..8 activation rows × one group (a server's batch of decoding
// sequences). Per block the group's 4 steps of weights are decoded once into 8 zmm, then the
// rows run in sub-blocks of 4: the int32 sums of 4 rows (8 zmm for Q6_K's halves) live at a time
// next to the 8 weight vectors and the MR float sums, where tile<MR, 1> keeps every row's int32
// sums live through the steps and spills. Per row and block the arithmetic is tile's: the same
// exact isum, then the same fmas in the same order.
template <int MR, typename T, int64_t kPrefetchSpan, int kIl = 0>
inline void tile_rows(const TileWeights& w, const Acts& a, float* y, int64_t ldy, int last_valid) {
  static_assert(MR > 4 && MR <= 8, "5..8 rows: two sub-blocks of up to 4");
  static_assert(kIl == 0 || kIl == MR, "an interleaved chunk is one tile's rows");
  const __mmask16 last_mask = static_cast<__mmask16>((1u << last_valid) - 1);
  const bool prefetch_l2 = kPrefetchSpan > 0 && gemv_prefetch_to_l2();
  __m512 facc[MR];
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    const float* in = y + r * ldy;
    if (!a.resume)
      facc[r] = _mm512_setzero_ps();
    else if (last_valid < 16)
      facc[r] = _mm512_maskz_loadu_ps(last_mask, in);
    else
      facc[r] = _mm512_loadu_ps(in);
  }
  alignas(64) uint8_t prep[T::kPrep > 0 ? T::kPrep : 1];
  for (int64_t b = 0; b < a.blocks; ++b) {
    int j = 0;
    const uint8_t* p = weights_at<T, false>(w, 0, b, &j);
    if constexpr (T::kPrep > 0) {
      if (j == 0) T::prep(p, prep);
    }
    if constexpr (kPrefetchSpan > 0)
      prefetch_block<MR, 1, T, kPrefetchSpan>(
          reinterpret_cast<const char*>(w.base) + b * kPrefetchSpan, prefetch_l2);
    __m512i va[4], vb[4];
#pragma GCC unroll 4
    for (int jj = 0; jj < 4; ++jj) T::pair(p, j, jj, &va[jj], &vb[jj]);
    const BlockTerms t = block_terms<T>(p, j, prep);
    // Rows [r0, r0 + n): n = 4, then MR - 4.
    auto rows = [&](auto r0c, auto nc) __attribute__((always_inline)) {
      constexpr int r0 = decltype(r0c)::value, n = decltype(nc)::value;
      __m512i ia[n], ib[n];
#pragma GCC unroll 4
      for (int r = 0; r < n; ++r) start_isum<T, kIl>(a, r0 + r, b, &ia[r], &ib[r]);
#pragma GCC unroll 4
      for (int jj = 0; jj < 4; ++jj)
#pragma GCC unroll 4
        for (int r = 0; r < n; ++r) {
          const __m512i xa = broadcast4(act_word<kIl>(a, r0 + r, b, jj));
          const __m512i xb = broadcast4(act_word<kIl>(a, r0 + r, b, 4 + jj));
          ia[r] = _mm512_dpbusd_epi32(ia[r], va[jj], xa);
          if constexpr (T::kHalves)
            ib[r] = _mm512_dpbusd_epi32(ib[r], vb[jj], xb);
          else
            ia[r] = _mm512_dpbusd_epi32(ia[r], vb[jj], xb);
        }
#pragma GCC unroll 4
      for (int r = 0; r < n; ++r)
        facc[r0 + r] = fold<T>(facc[r0 + r], ia[r], ib[r], t, a, act_index<kIl>(a, r0 + r, b));
    };
    rows(std::integral_constant<int, 0>{}, std::integral_constant<int, 4>{});
    rows(std::integral_constant<int, 4>{}, std::integral_constant<int, MR - 4>{});
  }
#pragma GCC unroll 8
  for (int r = 0; r < MR; ++r) {
    float* out = y + r * ldy;
    if (last_valid < 16)
      _mm512_mask_storeu_ps(out, last_mask, facc[r]);
    else
      _mm512_storeu_ps(out, facc[r]);
  }
}

// A GEMV tile over MR interleaved rows (the chunk's): ng groups, 1 or 2.
template <int MR, typename T, int64_t kPrefetchSpan>
inline void interleaved_tile(int ng, const TileWeights& w, const Acts& a, float* y, int64_t ldy,
                             int last_valid) {
  if (ng == 1) return tile_rows<MR, T, kPrefetchSpan, MR>(w, a, y, ldy, last_valid);
  tile<MR, 2, T, false, kPrefetchSpan, MR>(w, a, y, ldy, last_valid);
}

// The tile shapes a run-time (mr, ng) needs, each a compile-time instantiation: GEMV asks for up
// to 4 groups when mr <= 2, 2 when mr <= 4 (16 accumulators at most), and for 5..8 rows 2
// (32 accumulators: GCC keeps the int32 sums of the inner loop in registers and moves the float
// sums, updated once per block, through the stack) or 1 for Q6_K (its second set of int32 sums
// would spill in the inner loop: 13.4 ms instead of 11.9 on the output head at M = 8); GEMM
// (kMaxGroups = 2) for 2. The last group of a range may leave a 1-group tile at any mr.
// kIl: the GEMV's interleaved activations (5..8 rows, interleave_acts), where the tile's rows
// are the interleaved chunk's.
template <typename T, bool kDecoded, int64_t kPrefetchSpan, int kMaxGroups, bool kIl = false>
inline void tile_shape(int mr, int ng, const TileWeights& w, const Acts& a, float* y, int64_t ldy,
                       int last_valid) {
  if constexpr (kIl) {
    static_assert(!kDecoded && kMaxGroups > 2 && !T::kHalves,
                  "interleaved activations are the GEMV's, for types without halves");
    // mr is 5..8 here and ng 1 or 2: gemv's chunks and tiles for a type without halves.
    switch (mr) {
      case 5:
        return interleaved_tile<5, T, kPrefetchSpan>(ng, w, a, y, ldy, last_valid);
      case 6:
        return interleaved_tile<6, T, kPrefetchSpan>(ng, w, a, y, ldy, last_valid);
      case 7:
        return interleaved_tile<7, T, kPrefetchSpan>(ng, w, a, y, ldy, last_valid);
      default:
        return interleaved_tile<8, T, kPrefetchSpan>(ng, w, a, y, ldy, last_valid);
    }
  } else {
#define XTILE_TILE(MR, NG) tile<MR, NG, T, kDecoded, kPrefetchSpan>(w, a, y, ldy, last_valid)
#define XTILE_ROWS(MR) tile_rows<MR, T, kPrefetchSpan>(w, a, y, ldy, last_valid)
  if constexpr (kMaxGroups > 2) {
    static_assert(!kDecoded, "the GEMV's tiles read the packed weights");
    switch (mr * 8 + ng) {
      case 1 * 8 + 3: XTILE_TILE(1, 3); return;
      case 1 * 8 + 4: XTILE_TILE(1, 4); return;
      case 2 * 8 + 3: XTILE_TILE(2, 3); return;
      case 2 * 8 + 4: XTILE_TILE(2, 4); return;
      case 5 * 8 + 1:
        XTILE_ROWS(5);
        return;
      case 6 * 8 + 1:
        XTILE_ROWS(6);
        return;
      case 7 * 8 + 1:
        XTILE_ROWS(7);
        return;
      case 8 * 8 + 1:
        XTILE_ROWS(8);
        return;
      default: break;
    }
    if constexpr (!T::kHalves) {
      switch (mr * 8 + ng) {
        case 5 * 8 + 2: XTILE_TILE(5, 2); return;
        case 6 * 8 + 2: XTILE_TILE(6, 2); return;
        case 7 * 8 + 2: XTILE_TILE(7, 2); return;
        case 8 * 8 + 2: XTILE_TILE(8, 2); return;
        default: break;
      }
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
#undef XTILE_ROWS
  }
}

// Activation rows from m (a register block's), from block b0, `blocks` blocks.
inline Acts acts_at(const QuantizedActs& x, int64_t m, int64_t b0, int64_t blocks, bool resume) {
  const int64_t nb = x.k / 32, o = m * nb + b0;
  return {x.q + m * x.k + b0 * 32, x.d + o, x.s + o, x.sd + o, x.sl + o, x.k, nb, blocks, resume};
}

// Rows of the group starting at column n that lie below n1 (1..16).
inline int valid_rows(int64_t n, int64_t n1) {
  return static_cast<int>(std::min<int64_t>(16, n1 - n));
}

// TileWeights for groups starting at `group`, from block b0 (a superblock boundary), read
// straight from the packed matrix.
template <typename T>
TileWeights packed_weights(const PackedMatrix& w, int64_t group, int64_t b0) {
  constexpr int bpsb = T::G.elems / 32;
  const int64_t nsb = w.k / T::G.elems;
  const uint8_t* base = w.data + (group * nsb + b0 / bpsb) * T::G.bytes;
  return {base, nsb * T::G.bytes, T::G.bytes, bpsb, 0};
}

// Rows [m, m + mr) of x (5..8 rows, all blocks) reordered as Acts' interleaved layout in the
// thread's scratch, with the isums' starting value −bias·s of type T, the integer start_isum
// computes from the row-major values. A copy of 8 · K bytes once per GEMV call, against the
// weights the call streams (K · 9/16 bytes per output for Q4_0, at least a thread's share of a
// 2048-row matrix). Not for Q6_K: its 5..8-row tile (tile_rows, rows in sub-blocks of 4) keeps
// few enough pointers, and measured 3-5 % slower interleaved.
template <typename T>
Acts interleave_acts(const QuantizedActs& x, int64_t m, int mr, uint8_t* buf) {
  static_assert(!T::kHalves, "interleaved activations are for types without halves");
  const int64_t nb = x.k / 32, n = nb * mr;
  const size_t q_bytes = static_cast<size_t>(x.k * mr + 63) / 64 * 64;
  int8_t* q = reinterpret_cast<int8_t*>(buf);
  auto* start = reinterpret_cast<int32_t*>(buf + q_bytes);
  auto* d = reinterpret_cast<float*>(start + n);
  float* sd = d + n;
  for (int r = 0; r < mr; ++r) {
    const int8_t* src = x.q + (m + r) * x.k;
    const int64_t o = (m + r) * nb;
    for (int64_t b = 0; b < nb; ++b) {
      for (int w = 0; w < 8; ++w)
        std::memcpy(q + ((b * 8 + w) * mr + r) * 4, src + b * 32 + 4 * w, 4);
      const int64_t i = b * mr + r;
      start[i] = -T::kBias * x.s[o + b];
      d[i] = x.d[o + b];
      sd[i] = x.sd[o + b];
    }
  }
  Acts a{q, d, nullptr, sd, nullptr, 0, 0, nb, false};
  a.start = start;
  return a;
}

// Scratch bytes of one interleaved chunk of 8 rows (a multiple of 64).
inline size_t interleaved_bytes(int64_t k) {
  return static_cast<size_t>(k * 8 + 63) / 64 * 64 +
         static_cast<size_t>(k / 32 * 8 * 12 + 63) / 64 * 64;
}

// The thread's scratch for interleaved chunks (interleaved_bytes each; grows, never shrinks).
uint8_t* interleave_scratch(size_t bytes) {
  thread_local AlignedBuffer buf;
  if (buf.size() < bytes) buf = AlignedBuffer(bytes);
  return buf.data();
}

// A chunk of mr rows from m: its activations as a tile reads them (interleaved for 5..8 rows of
// a type without halves, into `buf`; row-major otherwise).
template <typename T>
Acts chunk_acts(const QuantizedActs& x, int64_t m, int64_t mr, uint8_t* buf) {
  if constexpr (!T::kHalves) {
    if (mr > 4) return interleave_acts<T>(x, m, static_cast<int>(mr), buf);
  }
  return acts_at(x, m, 0, x.k / 32, false);
}

// One tile of chunk (m, mr) over groups [g, g + ng).
template <typename T, int64_t kSpan>
void chunk_tile(const PackedMatrix& w, const Acts& a, int64_t mr, int64_t g, int ng, float* y,
                int64_t ldy, int64_t n1) {
  const TileWeights tw = packed_weights<T>(w, g, 0);
  const int last_valid = valid_rows((g + ng - 1) * 16, n1);
  if constexpr (!T::kHalves) {
    if (mr > 4) {
      tile_shape<T, false, kSpan, 4, true>(static_cast<int>(mr), ng, tw, a, y, ldy, last_valid);
      return;
    }
  }
  tile_shape<T, false, kSpan, 4>(static_cast<int>(mr), ng, tw, a, y, ldy, last_valid);
}

// GEMV: the activation rows in chunks, each chunk streaming the weights once, all of K in one
// pass. Chunks of up to 4 rows, or of 5..8 rows while more than 4 remain: a few decoding
// sequences (a server's batch) then read the weights once per 8 rows, where the GEMM would
// decode them into panels for too few rows to pay; those chunks' activations are interleaved
// first (interleave_acts). More than 8 rows (up to the GEMM's switch point): chunks of 8, the
// weight tiles outermost (2 groups × K: 36 KB of Q4_0 at K = 2048, L2), every chunk inside, so
// that each tile comes from memory once and from L2 for the other chunks.
template <typename T>
void gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
          int64_t m1, int64_t n0, int64_t n1) {
  constexpr int64_t kSpan = T::G.bytes / (T::G.elems / 32);  // stream bytes per block
  const int64_t g0 = n0 / 16, g1 = (n1 + 15) / 16;
  if (m1 - m0 > 8) {
    // Blocks of up to kGemvMaxRows rows (more only when the GEMM hands over K = 0).
    constexpr int64_t kMaxChunks = kGemvMaxRows / 8;
    const size_t chunk_bytes = interleaved_bytes(x.k);
    uint8_t* scratch = interleave_scratch(static_cast<size_t>(kMaxChunks) * chunk_bytes);
    for (int64_t mb = m0; mb < m1; mb += kGemvMaxRows) {
      const int64_t mb1 = std::min(m1, mb + kGemvMaxRows), chunks = (mb1 - mb + 7) / 8;
      Acts acts[kMaxChunks];
      for (int64_t c = 0; c < chunks; ++c) {
        const int64_t m = mb + 8 * c;
        acts[c] = chunk_acts<T>(x, m, std::min<int64_t>(8, mb1 - m), scratch + c * chunk_bytes);
      }
      for (int64_t g = g0; g < g1; g += 2) {
        const int ng = static_cast<int>(std::min<int64_t>(2, g1 - g));
        for (int64_t c = 0; c < chunks; ++c) {
          const int64_t m = mb + 8 * c, mr = std::min<int64_t>(8, mb1 - m);
          float* yt = y + m * ldy + g * 16;
          if (T::kHalves && mr > 4) {  // Q6_K's 5..8-row tile takes one group
            for (int gi = 0; gi < ng; ++gi)
              chunk_tile<T, kSpan>(w, acts[c], mr, g + gi, 1, yt + gi * 16, ldy, n1);
          } else {
            chunk_tile<T, kSpan>(w, acts[c], mr, g, ng, yt, ldy, n1);
          }
        }
      }
    }
    return;
  }
  for (int64_t m = m0, mr = 0; m < m1; m += mr) {
    mr = std::min<int64_t>(m1 - m > 4 ? 8 : 4, m1 - m);
    const int64_t groups_per_tile = mr <= 2 ? gemv_streams() : mr <= 4 || !T::kHalves ? 2 : 1;
    const Acts a = chunk_acts<T>(x, m, mr, interleave_scratch(interleaved_bytes(x.k)));
    for (int64_t g = g0; g < g1; g += groups_per_tile) {
      const int ng = static_cast<int>(std::min(groups_per_tile, g1 - g));
      chunk_tile<T, kSpan>(w, a, mr, g, ng, y + m * ldy + g * 16, ldy, n1);
    }
  }
}

// Per-thread scratch for decoded panels (grows, never shrinks; kept across calls so that a
// forward pass allocates it once per thread).
uint8_t* decode_scratch(size_t bytes) {
  thread_local AlignedBuffer buf;
  if (buf.size() < bytes) buf = AlignedBuffer(bytes);
  return buf.data();
}

// Decodes groups [g, g+ng) × blocks [b0, b0+blocks) into records (b·ng + gi)·kRecBytes.
template <typename T>
void decode_panel(const PackedMatrix& w, int64_t g, int ng, int64_t b0, int64_t blocks,
                  uint8_t* scratch) {
  const TileWeights tw = packed_weights<T>(w, g, b0);
  for (int64_t b = 0; b < blocks; ++b)
    for (int gi = 0; gi < ng; ++gi) {
      int j;
      const uint8_t* p = weights_at<T, false>(tw, gi, b, &j);
      uint8_t* rec = scratch + (b * ng + gi) * kRecBytes;
#pragma GCC unroll 4
      for (int jj = 0; jj < 4; ++jj) {
        __m512i va, vb;
        T::pair(p, j, jj, &va, &vb);
        _mm512_store_si512(rec + jj * 64, va);
        _mm512_store_si512(rec + (jj + 4) * 64, vb);
      }
      _mm512_store_ps(reinterpret_cast<float*>(rec + kRecScale), T::scale(p, j));
      if constexpr (T::kMin) _mm512_store_ps(reinterpret_cast<float*>(rec + kRecMin), T::min(p, j));
      if constexpr (T::kHalves) {
        __m512i lo, hi;
        T::sub(p, j, &lo, &hi);
        _mm512_store_si512(rec + kRecSubLo, lo);
        _mm512_store_si512(rec + kRecSubHi, hi);
      }
    }
}

// GEMM, blocked for the caches:
//   K chunks of kKChunkBlocks blocks (outermost; the fold resumes from y between chunks),
//   M chunks whose activations (rows × chunk bytes) fit kActChunkBytes: they stay in L2 while
//     every weight panel of the range passes over them (without this, large M·K streams the
//     activations from L3 once per panel and the kernel runs 2-4× slower),
//   weight panels of 2 groups × the K chunk (decoded: 96 KB, L2),
//   register blocks of 4 rows innermost.
template <typename T>
void gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
          int64_t m1, int64_t n0, int64_t n1) {
  const int64_t nb = w.k / 32;
  if (nb == 0) return gemv<T>(w, x, y, ldy, m0, m1, n0, n1);  // K = 0: zeros
  constexpr bool kInPlace = std::is_same_v<T, xa::Q8_0>;  // its bytes are already VNNI codes
  const int64_t g0 = n0 / 16, g1 = (n1 + 15) / 16;
  const int64_t kc_max = std::min<int64_t>(nb, kKChunkBlocks);
  const int64_t mc_max = std::max<int64_t>(
      kGemmRows, kActChunkBytes / (kc_max * 32) / kGemmRows * kGemmRows);
  uint8_t* scratch = nullptr;
  if (!kInPlace) scratch = decode_scratch(static_cast<size_t>(kc_max * kGemmGroups * kRecBytes));
  for (int64_t b0 = 0; b0 < nb; b0 += kc_max) {
    const int64_t kc = std::min(kc_max, nb - b0);
    for (int64_t mc0 = m0; mc0 < m1; mc0 += mc_max) {
      const int64_t mc1 = std::min(m1, mc0 + mc_max);
      // Decoding a panel costs about what one register block's in-register decode costs.
      const bool decode = !kInPlace && mc1 - mc0 > 2 * kGemmRows;
      for (int64_t g = g0; g < g1; g += kGemmGroups) {
        const int ng = static_cast<int>(std::min<int64_t>(kGemmGroups, g1 - g));
        const int last_valid = valid_rows((g + ng - 1) * 16, n1);
        TileWeights tw = packed_weights<T>(w, g, b0);
        if (decode) {
          decode_panel<T>(w, g, ng, b0, kc, scratch);
          tw = {scratch, 0, 0, 1, ng};
        }
        for (int64_t m = mc0; m < mc1; m += kGemmRows) {
          const int mr = static_cast<int>(std::min<int64_t>(kGemmRows, mc1 - m));
          const Acts a = acts_at(x, m, b0, kc, b0 > 0);
          float* yt = y + m * ldy + g * 16;
          if (decode)
            tile_shape<Decoded<T>, true, 0, kGemmGroups>(mr, ng, tw, a, yt, ldy, last_valid);
          else
            tile_shape<T, false, 0, kGemmGroups>(mr, ng, tw, a, yt, ldy, last_valid);
        }
      }
    }
  }
}

}  // namespace

#define XTILE_AVX512_TYPE(fn, name, Traits, layout)                                              \
  void fn##_gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                 int64_t m1, int64_t n0, int64_t n1) {                                             \
    check_layout(w, Layout::layout, name "_gemv_1x64__avx512vnni");                                \
    gemv<xa::Traits>(w, x, y, ldy, m0, m1, n0, n1);                                                \
  }                                                                                                \
  void fn##_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                 int64_t m1, int64_t n0, int64_t n1) {                                             \
    check_layout(w, Layout::layout, name "_gemm_4x32__avx512vnni");                                \
    gemm<xa::Traits>(w, x, y, ldy, m0, m1, n0, n1);                                                \
  }
XTILE_AVX512_TYPE(q8_0, "q8_0", Q8_0, q8_0_x16)
XTILE_AVX512_TYPE(q4_0, "q4_0", Q4_0, q4_0_x16)
XTILE_AVX512_TYPE(q4_1, "q4_1", Q4_1, q4_1_x16)
XTILE_AVX512_TYPE(q5_0, "q5_0", Q5_0, q5_0_x16)
XTILE_AVX512_TYPE(q5_1, "q5_1", Q5_1, q5_1_x16)
XTILE_AVX512_TYPE(iq4_nl, "iq4_nl", Iq4Nl, iq4_nl_x16)
XTILE_AVX512_TYPE(q4_k, "q4_K", Q4_K, q4_k_x16)
XTILE_AVX512_TYPE(q5_k, "q5_K", Q5_K, q5_k_x16)
XTILE_AVX512_TYPE(q6_k, "q6_K", Q6_K, q6_k_x16)
XTILE_AVX512_TYPE(iq4_xs, "iq4_xs", Iq4Xs, iq4_xs_x16)
#undef XTILE_AVX512_TYPE

}  // namespace xtile::avx512
