// GEMV and GEMM of every quantized weight type on the x16 layouts with AVX2: one int8 core
// (tile<> below) and, per type, the readers of x16_avx2.h.
//
// The contract per output (quant/weight_terms.h): per 32-block an exact int32 isum, then
// acc = fma((float)isum, scale · dx, acc) and, for types with mins, acc = fma(min, sd, acc),
// blocks in order from 0. AVX2 has no VPDPBUSD; the int8 dot is VPMADDUBSW (u8 × s8 → pairs
// summed into int16, *saturating*) then VPMADDWD with ones (int16 pairs → int32). Each step is
// kept below int16 saturation:
//   signed values (Q8_0, IQ4)  GEMV: VPMADDUBSW takes |w| (VPABSB: 0..128, exact as an unsigned
//          byte) and x·sign(w) (VPSIGNB: activations are within ±127, so the negation cannot
//          wrap). A pair is at most 2·128·127 = 32512 < 32767 and goes straight to VPMADDWD: the
//          signed isum, no correction. GEMM: the decoded panel holds int16 weight pairs and the
//          activations are widened to int16, so one VPMADDWD multiplies them exactly (Decoded16).
//   codes (the other types)  the unsigned codes 0..kMaxCode are the unsigned operand as they
//          are, x the signed one: a step of the two 4-byte groups is at most 4·kMaxCode·127, so
//          kJjPerMadd steps (2: ≤ 15240 for nibbles, which would allow 4 but measured 25-30 %
//          slower in the GEMM with 4) are summed in int16 before one VPMADDWD;
//          the bias (Q4_0: 8, Q5_0: 16) is removed exactly in int32 with −bias·s. Q6_K: two
//          steps of one half (≤ 32004) in int16, then VPMADDWD by that half's sub-scale (the
//          products of a block stay below 2^26); the bias is −32·(sub_0·s_0 + sub_1·s_1), one
//          VPMADDWD of the sub-scale pairs with the halves' activation sums (each < 2^11).
//   scale  the type's exact fp32 block scale, vmulps by the broadcast dx (the product rounded to
//          fp32 first), then vfmadd231ps; the min term one more vfmadd231ps with sd.
// One ymm covers 8 weight rows (half of an x16 group: bytes 32..63 of each 64-byte row are rows
// 8..15) for one activation row.
//
// Register blocking (16 ymm):
//   GEMM  4 activation rows × 8 weight rows: 4 int32 + 4 float accumulators, the weight vectors,
//         a broadcast and temporaries; signed types (int16) 4 rows × 16 weight rows over K
//         chunks of 1024, so that a broadcast feeds two VPMADDWD. Bound by vector ALU work, not
//         by memory (docs/KERNELS.md). Loop nest as the avx512 GEMM: K chunks of 2048 (the fold
//         resumes from y), M chunks of 256 KB of activations, weight panels of one (signed: two)
//         half-groups, register blocks innermost; a panel that more than two register blocks
//         will read is decoded once into a per-thread scratch (signed types as int16, with the M
//         chunk's activations widened beside it). Whatever reads a panel from the packed
//         weights (the decoder, or the first register block when the panel is read in place)
//         requests each group stream's lines ahead, to L2 and to L1 (prefetch_two_distances).
//   GEMV  1 row × 64 weight rows (1 row × 16 where gemv_streams() is 1: Zen 3/4, but Q8_0 on
//         Zen 3 × 64, gemv_q8_0_four_l1), 2 × 32, 3 × 16;
//         4-6 rows as two blocks over the same weight tile (the second finds it in L1/L2), so
//         the weights stream from memory once for up to 6 rows. One row reads 4 groups = 4
//         sequential streams at once: one stream does not keep enough misses in flight to reach the
//         memory bandwidth (the 256-element superblock types excepted: one group, kOneRowHalves,
//         measured faster in the model). Software prefetch: one row to L1 (L2 for 32-element blocks
//         on Zen 3/4), 1 or 2 KB ahead per stream (8 KB for one stream of 32-element blocks:
//         gemv_prefetch_bytes; Q8_0's one stream none: kOneStreamSpan); 2-3 rows (more arithmetic
//         per byte) to L2 32 KB and to L1 2 KB ahead (prefetch_two_distances).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>

#include "base/aligned_buffer.h"
#include "kernels/avx2/avx2_kernels.h"
#include "kernels/avx2/x16_avx2.h"
#include "kernels/gemv_prefetch.h"

namespace xtile::avx2 {

namespace {

namespace xa = x16avx2;

constexpr int kGemmRows = 4;              // GEMM register block: activation rows
constexpr int kGemmHalves = 1;            //                      half-groups (8 weight rows)
// Signed types (Decoded16, int16 records of 544 bytes): 2 half-groups per register block share
// each broadcast activation pair, and K chunks of 1024 keep the panel (2 × 32 records, 35 KB) in
// L1 (docs/KERNELS.md: 4 × 1 over 2048 → 4 × 2 over 1024, about +10 % at M = 512 on Zen 5).
constexpr int kGemmHalves16 = 2;
constexpr int64_t kKChunkBlocks16 = 32;
constexpr int64_t kKChunkBlocks = 64;     // GEMM K chunk: 2048 of K (a multiple of 256)
constexpr int64_t kActChunkBytes = 256 << 10;  // GEMM M chunk: activation bytes kept in L2
// GEMV software prefetch of one row's tile, PREFETCHT0: distance ahead per stream. Types whose
// tiles spend little work per byte (Q4_0, Q6_K) run ahead of a 1 KB prefetch and stall on
// memory: at 2 KB the 151936 × 2048 GEMV from memory took 10-26 % (Q4_0) and 9-30 % (Q6_K) less
// time on Zen 5; for the others 2 KB measured the same or 3-25 % slower (Q8_0, IQ4_NL, Q4_K,
// Q5_0, Q5_K: the prefetches then only add to the memory queue). docs/PERF.md, 2026-12-02
// tenth session. To L1 rather than L2: the kernel benchmark's lone GEMV reads the same either
// way, but in the model (each GEMV one of many per token, the MoE experts short streams of
// 768 rows) generation ran 15-20 % faster (qwen3-1.7b Q4_0, Q8_0, 0.6b Q4_0) and 45-90 % (the
// 30B-A3B cut) with T0; 4 KB or 1 KB to L1 were slower than 2 KB. docs/PERF.md, twentieth
// session.
// A one-row tile of one group (NH = 2) of a 32-element-block type, on a core that reads one
// stream per tile (gemv_streams() == 1, Zen 4): 8 KB ahead (Q8_0: none, kOneStreamSpan). The
// 151936 × 2048 head from memory, one thread of the Zen 4 VM, at 2 / 4 / 6 / 8 / 12 KB (ms, two
// alternated rounds): Q4_0 12.0-12.8 / 8.4-9.2 / 6.8-6.9 / 6.2-6.7 / 5.5-6.3, IQ4_NL 13.7-13.9 /
// 9.7-9.8 / 8.3-8.6 / 7.8-8.0 / 7.8; four streams 7.7-8.6 and 12.5-12.9 (twenty-ninth session).
template <typename T, int NH>
constexpr int64_t gemv_prefetch_bytes() {
  if constexpr (NH <= 2 && T::G.elems == 32) return 8192;
  if constexpr (std::is_same_v<T, xa::Q4_0> || std::is_same_v<T, xa::Q6_K>) return 2048;
  return 1024;
}
// Which level the one-row tile requests to: L1, except for the 32-element-block types (Q4_0,
// Q8_0, ...; Q8_0 read as one stream requests nothing, kOneStreamSpan) where gemv_prefetch.h
// picks L2 for the core (Zen 3/4). On a 2-vCPU Zen 4 VM the avx2 tier's generation with T1 for
// those: qwen3-0.6b/1.7b Q4_0 and Q8_0 tg64 5-55 % faster in 12 of 12 alternated pairs
// (docs/PERF.md, twenty-seventh session); the 256-element superblock types read one stream per
// row and keep T0 (the 30B-A3B cut's Q6_K head 20-40 % slower with T1, twenty-sixth).
// Q8_0's one-row tile on Zen 3 reads four streams to L1 whatever the family's settings say
// (gemv_prefetch.h, gemv_q8_0_four_l1).
template <typename T>
inline bool q8_0_four_streams_l1() {
  return std::is_same_v<T, xa::Q8_0> && gemv_q8_0_four_l1();
}
template <typename T>
inline bool gemv_prefetch_l2_on_avx2() {
  return T::G.elems == 32 && gemv_prefetch_to_l2() && !q8_0_four_streams_l1<T>();
}
// Reads of the packed weights that do more arithmetic per byte than one row's GEMV (the GEMV's
// tiles of 2-3 rows; the GEMM's first read of a panel: the decoder, or the first register block
// when the panel is read in place, M <= 8) request each group stream's lines to L2 32 KB ahead
// and to L1 2 KB ahead. The GEMM had no prefetch and waited on memory: 8 rows read the
// 151936 × 2048 head in 15.4-16.4 ms (Q4_0) and 26.4-27.6 (Q6_K), where the arithmetic alone
// takes ~9.5; now 10.0-10.5 and 15.6-16.1 ms; Q8_0's decoder at M = 16 44 -> 34 ms, and its
// M = 512 GEMM 4 % faster (6144 × 2048: it reads each panel again for every M chunk). The 2-3
// row GEMV tiles with gemv_prefetch_bytes to L2: M = 4 7.6-7.9 ms (Q4_0), 11.8-12.8 (Q6_K); with
// the two distances 6.2-6.4 and 9.7-10.7. Zen 5 VM, docs/PERF.md sixteenth session.
constexpr int64_t kNearBytes = 2048;  // PREFETCHT0
constexpr int64_t kFarBytes = 32768;  // PREFETCHT1

// Stream bytes per block of 32 (a group's superblocks one after the other).
template <typename T>
constexpr int64_t kStreamSpan = T::G.bytes / (T::G.elems / 32);

// The one-row tile of one group (NH = 2) that a core reading one stream per tile takes
// (gemv_streams() == 1, Zen 3/4) requests nothing for Q8_0: its group's blocks (544 bytes) lie
// one after the other, and the core's own stream prefetcher follows them to the bandwidth. The
// 151936 × 2048 head from memory, one thread of the Zen 4 VM: 13.4-13.6 ms at 8 KB ahead to L2
// (2-16 KB to L2 or L1: 13.0-22.5), 10.8-11.1 with none (the probe's 31 GB/s). In the model
// (`xtile bench -p 0 -n 64 -r 2 --kernels avx2`, alternated pairs in the same memory state):
// qwen3-1.7b Q8_0 17.7 -> 19.7-19.8 t/s in the slow state, 16.9-17.6 -> 28.5-28.8 in the fast
// one; qwen3-0.6b Q8_0 +6-17 %. The other 32-element types measured the same alone (Q4_0, Q4_1)
// or a few percent faster (Q5_0, IQ4_NL), and Q4_0 in the model 6 % slower in the fast state:
// they keep 8 KB (docs/PERF.md, thirty-first session). The superblock types need theirs (Q5_K,
// Q6_K 3× slower without).
template <typename T>
constexpr int64_t kOneStreamSpan = std::is_same_v<T, xa::Q8_0> ? 0 : kStreamSpan<T>;
// And how far ahead that tile requests the superblock types' lines (to L1, as on every core):
// 4 KB where the others take 1 KB (Q6_K 2 KB). The 151936 × 2048 head from memory, one thread
// of the Zen 4 VM, three alternated rounds at the old distance / 2 KB / 4 KB (ms): Q4_K
// 7.84-8.09 / 7.34-7.44 / 6.89-6.95, IQ4_XS 9.30-9.40 / 8.90-8.95 / 8.78-8.88, Q5_K
// 11.34-11.61 / 11.25-11.31 / 11.20-11.33, Q6_K 9.09-9.28 / — / 8.81-9.01; 8 KB between the
// two (Q4_K 7.17-7.25). In the model (`xtile bench -p 0 -n 64 -r 2 --kernels avx2`, pairs in
// the same memory state, old / new): qwen3-1.7b IQ4_XS 32.1 / 34.6 and 34.8 / 35.7, the
// 30B-A3B cut (its Q6_K head) 88.7 / 91.9 (docs/PERF.md, thirty-second session). Other cores
// keep the distances above, measured on Zen 5.
template <typename T>
constexpr int64_t kOneStreamAhead = T::G.elems == 256 ? 4096 : 0;

// Requests the lines ahead of one group stream whose current block starts at `at`.
template <int64_t kSpan>
inline void prefetch_two_distances(const char* at) {
#pragma GCC unroll 8
  for (int64_t l = 0; l < kSpan; l += 64) {
    _mm_prefetch(at + kFarBytes + l, _MM_HINT_T1);
    _mm_prefetch(at + kNearBytes + l, _MM_HINT_T0);
  }
}

// A decoded half-group block in the GEMM scratch: 8 rows of 32 bytes (a of jj 0..3, then b),
// then fp32 scale, fp32 min and the two halves' sub-scales (Q6_K), int16 twice per row's lane.
// Q6_K has no min: its slot holds the bias term's sub-scales instead (bias_subs).
constexpr int64_t kRecBytes = 384;
constexpr int kRecScale = 256, kRecMin = 288, kRecSubLo = 320, kRecSubHi = 352;
constexpr int kRecBiasSubs = kRecMin;

template <typename T>
struct Decoded {
  static constexpr const x16::Geometry& G = T::G;
  static constexpr bool kSigned = T::kSigned;
  static constexpr int kBias = T::kBias;
  static constexpr int kJjPerMadd = T::kJjPerMadd;
  static constexpr bool kHalves = T::kHalves;
  static constexpr bool kMin = T::kMin;
  static constexpr int kPrep = 0;
  static constexpr int64_t kRecSize = kRecBytes;
  static inline void prep(const uint8_t*, uint8_t*) {}
  static inline void pair(const uint8_t* p, int, int, int jj, __m256i* a, __m256i* b) {
    *a = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + jj * 32));
    *b = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + (jj + 4) * 32));
  }
  static inline __m256 scale(const uint8_t* p, int, int) {
    return _mm256_load_ps(reinterpret_cast<const float*>(p + kRecScale));
  }
  static inline __m256 min(const uint8_t* p, int, int) {
    return _mm256_load_ps(reinterpret_cast<const float*>(p + kRecMin));
  }
  static inline void sub(const uint8_t* p, int, int, __m256i* lo, __m256i* hi) {
    *lo = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + kRecSubLo));
    *hi = _mm256_load_si256(reinterpret_cast<const __m256i*>(p + kRecSubHi));
  }
  // Q6_K: the bias term's multipliers, stored by decode_panel (bias_subs).
  static inline __m256i bias_subs(const uint8_t* p) {
    static_assert(!kMin, "the min's slot holds the bias sub-scales");
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(p + kRecBiasSubs));
  }
};

template <typename T>
constexpr bool has_bias_subs() {
  return requires(const uint8_t* p) {
    T::bias_subs(p);
  };
}

// Q6_K's (sub_0, sub_1) int16 pair per row's lane, from T::sub's lo and hi.
inline __m256i sub_pairs(__m256i lo, __m256i hi) {
  return _mm256_blend_epi16(lo, hi, 0xAA);
}

// Q6_K's bias multipliers (−32·sub_0, −32·sub_1) per row's lane (|32·sub| ≤ 4096: exact in
// int16).
inline __m256i bias_subs(__m256i lo, __m256i hi) {
  return _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(sub_pairs(lo, hi), 5));
}

// A signed type's block decoded to int16 for VPMADDWD (Decoded16 below): 16 vectors of 32 bytes,
// vector 4·jj + u holds for each of the 8 rows the int16 pair of K = 16·(u / 2) + 4·jj + 2·(u % 2)
// and the next K; then the fp32 scale.
constexpr int64_t kRec16Bytes = 544;
constexpr int kRec16Scale = 512;

// Signed values (Q8_0, IQ4) in the GEMM: VPMADDUBSW needs an unsigned operand, so the int8 path
// spends a VPSIGNB per row and vector on top of VPMADDUBSW + VPMADDWD + VPADDD, three of the four
// on the two vector-multiply ports. With the weights and activations widened to int16 once per
// panel, VPMADDWD multiplies the pairs directly (|w·x + w'·x'| ≤ 2·128·128, exact in int32): per
// 32 products two VPMADDWD + two VPADDD, the adds free to go to a third port. Same isum.
template <typename T>
struct Decoded16 {
  static constexpr const x16::Geometry& G = T::G;
  static constexpr bool kI16 = true;
  static constexpr int64_t kRecSize = kRec16Bytes;
  static constexpr bool kMin = false;
  static constexpr int kPrep = 0;
  static inline void prep(const uint8_t*, uint8_t*) {}
  static inline __m256i vec(const uint8_t* p, int v) {
    return _mm256_load_si256(reinterpret_cast<const __m256i*>(p + v * 32));
  }
  static inline __m256 scale(const uint8_t* p, int, int) {
    return _mm256_load_ps(reinterpret_cast<const float*>(p + kRec16Scale));
  }
  static inline __m256 min(const uint8_t*, int, int) { return _mm256_setzero_ps(); }
};

template <typename T>
constexpr bool is_i16() {
  if constexpr (requires { T::kI16; }) return T::kI16;
  return false;
}

// Where a tile finds half hi's data for block b (from the tile's first block): packed, the
// group-superblock of half h0 + hi and the half within the group; decoded, its record.
struct TileWeights {
  const uint8_t* base;  // packed: the matrix; decoded: the scratch
  int64_t group_stride;
  int64_t sb_stride;
  int64_t sb0;     // packed: the tile's first superblock
  int64_t h0;      // packed: the tile's first half-group
  int bpsb;        // blocks per superblock (1 or 8)
  int halves;      // decoded: halves per record row
};

// Blocks of 32 per superblock of T's packed type (1 or 8) are a constant: as a run-time divisor
// they cost an IDIV per block in every tile, on the path to the block's weight loads.
template <typename T, bool kDecoded>
inline const uint8_t* weights_at(const TileWeights& w, int hi, int64_t b, int* half, int* j) {
  constexpr uint64_t kBpsb = T::G.elems / 32;
  if constexpr (kDecoded) {
    *half = 0;
    *j = 0;
    return w.base + (b * w.halves + hi) * T::kRecSize;
  } else {
    const int64_t h = w.h0 + hi;
    *half = static_cast<int>(h & 1);
    const uint64_t ub = static_cast<uint64_t>(b);  // >= 0: the split is a shift and a mask
    *j = static_cast<int>(ub % kBpsb);
    return w.base + (h >> 1) * w.group_stride +
           (w.sb0 + static_cast<int64_t>(ub / kBpsb)) * w.sb_stride;
  }
}

// Where the packed stream of half hi's group stands at block b (kSpan bytes per block: the
// prefetches' reference point), or null when half hi shares its group, and so its cache lines,
// with half hi − 1 of the same tile: each group is requested once.
template <int64_t kSpan>
inline const char* group_stream_at(const TileWeights& w, int hi, int64_t b) {
  if (hi > 0 && ((w.h0 + hi) & 1)) return nullptr;
  return reinterpret_cast<const char*>(w.base + ((w.h0 + hi) >> 1) * w.group_stride) +
         (w.sb0 * w.bpsb + b) * kSpan;
}

inline __m256i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);  // a plain load, folded into VPBROADCASTD's memory operand
  return _mm256_set1_epi32(v);
}

// Two jj steps of one row over the unsigned codes (va0/vb0 at jj, va1/vb1 at jj + 1; x the row's
// quants of the block), summed in int16 per half: sa over K 4jj..4jj+7, sb over 16 + the same.
// Each is at most 2 · 2 · kMaxCode · 127 (Q6_K: 32004), their sum half that again.
inline void two_steps(__m256i va0, __m256i vb0, __m256i va1, __m256i vb1, const int8_t* x, int jj,
                      __m256i* sa, __m256i* sb) {
  *sa = _mm256_add_epi16(_mm256_maddubs_epi16(va0, broadcast4(x + 4 * jj)),
                         _mm256_maddubs_epi16(va1, broadcast4(x + 4 * jj + 4)));
  *sb = _mm256_add_epi16(_mm256_maddubs_epi16(vb0, broadcast4(x + 16 + 4 * jj)),
                         _mm256_maddubs_epi16(vb1, broadcast4(x + 20 + 4 * jj)));
}

// Q6_K's (s_0, s_1) int16 pair of an activation block from its first-half sum sl and block sum s.
inline int32_t half_sums(int32_t sl, int32_t s) {
  const uint32_t first = static_cast<uint32_t>(sl) & 0xffff;
  const uint32_t second = static_cast<uint32_t>(s - sl) << 16;
  return static_cast<int32_t>(first | second);
}

// Types whose codes carry a bias (Q4_0: q + 8, Q5_0: q + 16; Q6_K's goes through its halves):
// a row's isum starts at −kBias · s, s the activation block's sum.
template <typename T>
constexpr bool has_bias_terms() {
  return !T::kSigned && !T::kHalves && T::kBias != 0;
}

// Per-thread scratch: 0 the decoded weight panel, 1 the widened activations or a per-row int32
// of each block (Q6_K's half sums, the bias terms).
uint8_t* decode_scratch(size_t bytes, int which = 0) {
  thread_local AlignedBuffer buf[2];
  if (buf[which].size() < bytes) buf[which] = AlignedBuffer(bytes);
  return buf[which].data();
}

// Rows [m0, m1) × blocks [b0, b0 + blocks) of the activations' bias terms −kBias · s, row stride
// blocks: a tile then starts each row's sum with one broadcast from memory, where the product
// took a scalar multiply, VMOVD and VPBROADCASTD per row and block (two of the ~26 vector
// instructions a row spends per block in the Q4_0 register block).
template <typename T>
void pack_bias_terms(const QuantizedActs& x, int64_t m0, int64_t m1, int64_t b0, int64_t blocks,
                     int32_t* out) {
  const int64_t nb = x.k / 32;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t b = 0; b < blocks; ++b)
      out[(m - m0) * blocks + b] = -T::kBias * x.s[m * nb + b0 + b];
}

// Rows [m0, m1) × blocks [b0, b0 + blocks) of the activations' Q6_K half sums (half_sums), row
// stride blocks: one broadcast per row and block in the tile instead of the scalar pairing.
void pack_half_sums(const QuantizedActs& x, int64_t m0, int64_t m1, int64_t b0, int64_t blocks,
                    int32_t* out) {
  const int64_t nb = x.k / 32;
  for (int64_t m = m0; m < m1; ++m)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t o = m * nb + b0 + b;
      out[(m - m0) * blocks + b] = half_sums(x.sl[o], x.s[o]);
    }
}

// One half-group, one block: the exact int32 isum of each of MR activation rows (row r's 32
// quants at xb + r * q_stride; Q6_K: the two halves' sums as int16 pairs at s01[r * term_stride]
// (pack_half_sums); Q4_0 / Q5_0 (has_bias_terms): the row's −kBias · s at
// bias[r * term_stride], pack_bias_terms).
template <int MR, typename T>
inline void half_block_isum(const uint8_t* p, int half, int j, const int8_t* xb, int64_t q_stride,
                            const int32_t* s01, const int32_t* bias, int64_t term_stride,
                            __m256i (&isum)[MR]) {
  const __m256i ones = _mm256_set1_epi16(1);
  if constexpr (T::kSigned) {
#pragma GCC unroll 4
    for (int jj = 0; jj < 4; ++jj) {
      __m256i va, vb;
      T::pair(p, half, j, jj, &va, &vb);
      const __m256i aa = _mm256_abs_epi8(va), ab = _mm256_abs_epi8(vb);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const int8_t* x = xb + r * q_stride;
        const __m256i pa = _mm256_madd_epi16(
            _mm256_maddubs_epi16(aa, _mm256_sign_epi8(broadcast4(x + 4 * jj), va)), ones);
        const __m256i pb = _mm256_madd_epi16(
            _mm256_maddubs_epi16(ab, _mm256_sign_epi8(broadcast4(x + 16 + 4 * jj), vb)), ones);
        const __m256i s = _mm256_add_epi32(pa, pb);
        isum[r] = jj == 0 ? s : _mm256_add_epi32(isum[r], s);
      }
    }
  } else if constexpr (T::kJjPerMadd == 2) {
    // Two jj steps per row at a time (two_steps), summed in int16: no per-row int16 partial lives
    // across rows (with 4 rows an array of them pushed the float accumulators out of the 16 ymm).
    //   Q6_K (kHalves): isum = Σ_h sub_h · Σ_h (code − 32)·x
    //          = Σ_h sub_h · Σ_h code·x − 32 · (sub_0·s_0 + sub_1·s_1), s_0 / s_1 the activation
    //          sums of the halves (|s_h| ≤ 16·127, an int16): each half's sum goes through
    //          VPMADDWD by its sub-scale (no VPMULLD, half the VPMADDWD). The bias: one VPMADDWD
    //          per row of the block's (−32·sub_0, −32·sub_1) (bias_subs: a decoded record holds
    //          them, read in place they are 3 instructions per block) by the row's (s_0, s_1)
    //          pair, prepared once per call or M chunk (pack_half_sums). The GEMV paired the sums
    //          itself per row and block until 2026-12-08: one form now, the same or up to a few
    //          percent faster (docs/KERNELS.md).
    //   the others: both halves' sums (≤ 4 · 2 · kMaxCode · 127) into one VPMADDWD by ones,
    //          after −bias·s.
    __m256i lo = ones, hi = ones;
    if constexpr (T::kHalves) {
      static_assert(T::kBias == 32, "Q6_K's bias");
      T::sub(p, half, j, &lo, &hi);
      __m256i bsubs;
      if constexpr (has_bias_subs<T>())
        bsubs = T::bias_subs(p);
      else
        bsubs = bias_subs(lo, hi);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r)
        isum[r] = _mm256_madd_epi16(bsubs, _mm256_set1_epi32(s01[r * term_stride]));
    } else if constexpr (has_bias_terms<T>()) {
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) isum[r] = _mm256_set1_epi32(bias[r * term_stride]);
    } else {
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) isum[r] = _mm256_setzero_si256();
    }
#pragma GCC unroll 2
    for (int jj = 0; jj < 4; jj += 2) {
      __m256i va0, vb0, va1, vb1;
      T::pair(p, half, j, jj, &va0, &vb0);
      T::pair(p, half, j, jj + 1, &va1, &vb1);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        __m256i sa, sb;
        two_steps(va0, vb0, va1, vb1, xb + r * q_stride, jj, &sa, &sb);
        const __m256i part =
            T::kHalves ? _mm256_add_epi32(_mm256_madd_epi16(sa, lo), _mm256_madd_epi16(sb, hi))
                       : _mm256_madd_epi16(_mm256_add_epi16(sa, sb), ones);
        isum[r] = _mm256_add_epi32(isum[r], part);
      }
    }
  } else {
    static_assert(T::kJjPerMadd == 1 && !T::kHalves, "int16 budget of one jj step");
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r)
      isum[r] =
          has_bias_terms<T>() ? _mm256_set1_epi32(bias[r * term_stride]) : _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int jj = 0; jj < 4; ++jj) {
      __m256i va, vb;
      T::pair(p, half, j, jj, &va, &vb);
#pragma GCC unroll 4
      for (int r = 0; r < MR; ++r) {
        const int8_t* x = xb + r * q_stride;
        const __m256i t = _mm256_add_epi16(_mm256_maddubs_epi16(va, broadcast4(x + 4 * jj)),
                                           _mm256_maddubs_epi16(vb, broadcast4(x + 16 + 4 * jj)));
        isum[r] = _mm256_add_epi32(isum[r], _mm256_madd_epi16(t, ones));
      }
    }
  }
}

// A register block's activation rows from block b0 of a K chunk (see the avx512 kernel).
struct Acts {
  const int8_t* q;
  const float* d;
  const float* sd;
  int64_t q_stride, ds_stride, blocks;
  bool resume;
  const int32_t* s01 = nullptr;   // Q6_K: half_sums of each block, row stride blocks
  const int32_t* bias = nullptr;  // has_bias_terms: −kBias · s of each block, row stride blocks
};

inline Acts acts_at(const QuantizedActs& x, int64_t m, int64_t b0, int64_t blocks, bool resume) {
  const int64_t nb = x.k / 32, o = m * nb + b0;
  return {x.q + m * x.k + b0 * 32, x.d + o, x.sd + o, x.k, nb, blocks, resume};
}

// Signed types in the GEMM (Decoded16): one block of MR rows × NH halves at once, so each
// broadcast activation pair feeds NH VPMADDWD and each weight vector MR: per 32 products and
// row 2·(1/MR + 1/NH) loads beside the 4 ALU instructions (4 × 1: 2.5; 4 × 2: 1.5). The int32
// sums of all MR × NH live in registers (≤ 8 of 16 ymm); p[h] is half h's record.
template <int MR, int NH>
inline void block_isum16(const uint8_t* const (&p)[NH], const int8_t* xb, int64_t q_stride,
                         __m256i (&isum)[MR][NH]) {
  const int16_t* xr[MR];  // row pointers once: the pairs are then constant displacements
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) xr[r] = reinterpret_cast<const int16_t*>(xb + r * q_stride);
#pragma GCC unroll 16
  for (int v = 0; v < 16; ++v) {
    __m256i w[NH];
#pragma GCC unroll 4
    for (int h = 0; h < NH; ++h)
      w[h] = _mm256_load_si256(reinterpret_cast<const __m256i*>(p[h] + v * 32));
    const int k = 16 * ((v & 3) >> 1) + 4 * (v >> 2) + 2 * (v & 1);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) {
      int32_t pair;
      std::memcpy(&pair, xr[r] + k, 4);
      const __m256i x = _mm256_set1_epi32(pair);
#pragma GCC unroll 4
      for (int h = 0; h < NH; ++h) {
        const __m256i s = _mm256_madd_epi16(w[h], x);
        isum[r][h] = v == 0 ? s : _mm256_add_epi32(isum[r][h], s);
        // Integer adds reassociate: without this GCC computes all 16 × MR × NH products first
        // and sums them as a tree, spilling most of them. The empty asm pins the chain's order.
        asm("" : "+x"(isum[r][h]));
      }
    }
  }
}

// One register block: MR activation rows × NH half-groups (8 weight rows each), the blocks of
// `a`. y points at (row m, column 8 · first half); the last half writes only its first
// `last_valid` (1..8) columns. Within a block the halves are done one after the other (int32
// sums of one half live at a time), so MR × NH float accumulators + MR int32 sums + ~6
// temporaries fit 16 ymm. Decoded16 (4 × 2) keeps all MR × NH int32 sums instead
// (block_isum16); the compiler keeps the 8 float accumulators on the stack, one load and store
// per block each.
template <int MR, int NH, typename T, bool kDecoded, int64_t kPrefetchSpan,
          bool kTwoDistances = false, int64_t kAheadBytes = 0>
inline void tile(const TileWeights& w, const Acts& a, float* y, int64_t ldy, int last_valid) {
  // Lanes below last_valid are read and written; the padding rows of a matrix's last group never.
  const __m256i last_mask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(last_valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
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

  alignas(32) uint8_t prep[NH][T::kPrep > 0 ? T::kPrep : 1];  // per half: its group's codes
  // !kTwoDistances first: those tiles never read the level, and without the short-circuit GCC
  // emits gemv_prefetch() out of line, weak code TierSymbolsTest refuses in an ISA object.
  const bool prefetch_l2 = kPrefetchSpan > 0 && !kTwoDistances && gemv_prefetch_l2_on_avx2<T>();
  // A name, not the call: clang's _mm_prefetch is a macro, and the template's comma splits it.
  // kAheadBytes > 0: the one-stream tile's own distance (kOneStreamAhead).
  constexpr int64_t kAhead = kAheadBytes > 0 ? kAheadBytes : gemv_prefetch_bytes<T, NH>();
  for (int64_t b = 0; b < a.blocks; ++b) {
    if constexpr (kPrefetchSpan > 0) {
      // Each group's share of the stream for this block, once per group (the two halves of a
      // group share cache lines): gemv_prefetch_bytes ahead, or the two distances.
#pragma GCC unroll 8
      for (int h = 0; h < NH; ++h) {
        const char* at = group_stream_at<kPrefetchSpan>(w, h, b);
        if (at == nullptr) continue;
        if constexpr (kTwoDistances) {
          prefetch_two_distances<kPrefetchSpan>(at);
        } else if (prefetch_l2) {
#pragma GCC unroll 8
          for (int64_t l = 0; l < kPrefetchSpan; l += 64)
            _mm_prefetch(at + kAhead + l, _MM_HINT_T1);
        } else {
#pragma GCC unroll 8
          for (int64_t l = 0; l < kPrefetchSpan; l += 64)
            _mm_prefetch(at + kAhead + l, _MM_HINT_T0);
        }
      }
    }
    if constexpr (is_i16<T>()) {  // int16 records: every half's sums at once
      const uint8_t* p[NH];
      int half, j;
#pragma GCC unroll 8
      for (int h = 0; h < NH; ++h) p[h] = weights_at<T, kDecoded>(w, h, b, &half, &j);
      __m256i isum[MR][NH];
      block_isum16<MR, NH>(p, a.q + b * 64, a.q_stride, isum);
#pragma GCC unroll 8
      for (int h = 0; h < NH; ++h) {
        const __m256 ws = T::scale(p[h], 0, 0);
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) {
          const __m256 scale = _mm256_mul_ps(ws, _mm256_set1_ps(a.d[r * a.ds_stride + b]));
          facc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r][h]), scale, facc[r][h]);
        }
      }
    } else {
#pragma GCC unroll 8
      for (int h = 0; h < NH; ++h) {
        int half, j;
        const uint8_t* p = weights_at<T, kDecoded>(w, h, b, &half, &j);
        __m256i isum[MR];
        half_block_isum<MR, T>(p, half, j, a.q + b * 32, a.q_stride,
                               T::kHalves ? a.s01 + b : nullptr,
                               has_bias_terms<T>() ? a.bias + b : nullptr, a.blocks, isum);
        __m256 ws, wm = _mm256_setzero_ps();
        if constexpr (T::kPrep > 0) {
          if (j == 0) T::prep(p, prep[h]);  // the superblock's 6-bit codes, once
          ws = T::scale_prep(p, half, j, prep[h]);
          if constexpr (T::kMin) wm = T::min_prep(p, half, j, prep[h]);
        } else {
          ws = T::scale(p, half, j);
          if constexpr (T::kMin) wm = T::min(p, half, j);
        }
#pragma GCC unroll 4
        for (int r = 0; r < MR; ++r) {
          const __m256 scale = _mm256_mul_ps(ws, _mm256_set1_ps(a.d[r * a.ds_stride + b]));
          facc[r][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum[r]), scale, facc[r][h]);
          if constexpr (T::kMin)
            facc[r][h] = _mm256_fmadd_ps(wm, _mm256_set1_ps(a.sd[r * a.ds_stride + b]), facc[r][h]);
        }
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
// kAheadBytes: the one-row tile's distance ahead (0: gemv_prefetch_bytes of the tile's halves).
template <int MR, int NH, typename T, bool kDecoded, int64_t kSpan, bool kTwoDistances = false,
          int64_t kAheadBytes = 0>
inline void tile_halves(int nh, const TileWeights& w, const Acts& a, float* y, int64_t ldy,
                        int last_valid) {
  if constexpr (NH > 1) {
    if (nh < NH)
      return tile_halves<MR, NH - 1, T, kDecoded, kSpan, kTwoDistances, kAheadBytes>(
          nh, w, a, y, ldy, last_valid);
  }
  tile<MR, NH, T, kDecoded, kSpan, kTwoDistances, kAheadBytes>(w, a, y, ldy, last_valid);
}

// TileWeights of the packed matrix for halves from h0, blocks from b0 (a superblock boundary).
template <typename T>
TileWeights packed_weights(const PackedMatrix& w, int64_t h0, int64_t b0) {
  constexpr int bpsb = T::G.elems / 32;
  const int64_t nsb = w.k / T::G.elems;
  return {w.data, nsb * T::G.bytes, T::G.bytes, b0 / bpsb, h0, bpsb, 0};
}

// Halves per one-row GEMV tile: 8 (4 group streams), but 2 (one group) for the types of
// 256-element superblocks (Q4_K, Q5_K, Q6_K, IQ4_XS), whose group-superblocks are read in two
// to four regions each (scales, high bits, nibbles): one group per tile makes each thread walk
// the matrix as one sequential stream. In the model, alternated with the 8-half tile (Zen 5 VM,
// docs/PERF.md twenty-first session): the 30B-A3B cut's generation (60 % its Q6_K head) 10-25 %
// faster, qwen3-0.6b Q4_0 14-18 %, Q5_K_M 9-15 %, IQ4_XS 9-17 %, Q4_K_M 0-5 %; the Q6_K head
// alone from memory 7.4-8.7 ms instead of 10.1-10.5, the same from L3. The 32-element types keep
// 4 streams there: Q4_0 with 2 or 4 halves was 5-10 % slower, Q8_0 with 2 halves 10-30 %. The
// avx512 one-row Q6_K tile with one group instead of four was 3-9 % slower. On Zen 4 one stream
// wins for them too (gemv_streams() == 1, gemv_prefetch.h): the gemv below then takes 2 halves
// for every type; alternated in the model there, tg64 on the avx2 tier 20-32 % faster in the
// VM's fast memory state, -7 to +6 % in its slow one (twenty-ninth session).
template <typename T>
constexpr int64_t kOneRowHalves = T::G.elems == 256 ? 2 : 8;

// GEMV: weight tiles of several halves outside, the activation rows inside in register blocks
// of at most 3 rows (a fourth row's accumulators would not fit 16 ymm next to enough halves), so
// the weights stream from memory once for up to 6 rows and the second block of rows finds the
// tile in L1/L2. Halves per tile: 8 for one row (4 group streams in flight: the memory system
// needs several to reach its read bandwidth; K-quants and IQ4_XS 2, kOneRowHalves), 4 for two, 2
// for three (float accumulators <= 8).
template <typename T>
void gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
          int64_t m1, int64_t n0, int64_t n1) {
  constexpr int64_t kSpan = kStreamSpan<T>;
  const int64_t nb = w.k / 32;
  const int64_t h0 = n0 / 8, h1 = (n1 + 7) / 8;
  int32_t* biases = nullptr;
  if constexpr (has_bias_terms<T>()) {
    biases = reinterpret_cast<int32_t*>(
        decode_scratch(static_cast<size_t>((m1 - m0) * nb) * sizeof(int32_t), 1));
    pack_bias_terms<T>(x, m0, m1, 0, nb, biases);
  }
  int32_t* sums01 = nullptr;
  if constexpr (T::kHalves) {
    sums01 = reinterpret_cast<int32_t*>(
        decode_scratch(static_cast<size_t>((m1 - m0) * nb) * sizeof(int32_t), 1));
    pack_half_sums(x, m0, m1, 0, nb, sums01);
  }
  for (int64_t mc = m0; mc < m1; mc += 6) {
    const int64_t mc1 = std::min(m1, mc + 6);
    // Rows per register block: 4 rows as 2 + 2, 5 as 3 + 2, 6 as 3 + 3.
    const int64_t rows = mc1 - mc;
    const int64_t mr_first = rows <= 3 ? rows : (rows + 1) / 2;
    const bool one_stream = gemv_streams() == 1 && !q8_0_four_streams_l1<T>();
    const int64_t step = mr_first == 1   ? (one_stream ? 2 : kOneRowHalves<T>)
                         : mr_first == 2 ? 4
                                         : 2;
    for (int64_t h = h0; h < h1; h += step) {
      const int nh = static_cast<int>(std::min(step, h1 - h));
      const int lv = valid_cols((h + nh - 1) * 8, n1);
      const TileWeights tw = packed_weights<T>(w, h, 0);
      for (int64_t m = mc; m < mc1;) {
        const int64_t mr = m == mc ? mr_first : mc1 - m;
        Acts a = acts_at(x, m, 0, nb, false);
        if constexpr (has_bias_terms<T>()) a.bias = biases + (m - m0) * nb;
        if constexpr (T::kHalves) a.s01 = sums01 + (m - m0) * nb;
        float* yt = y + m * ldy + h * 8;
        switch (mr) {
          case 1:
            if (one_stream)
              tile_halves<1, 2, T, false, kOneStreamSpan<T>, false, kOneStreamAhead<T>>(
                  nh, tw, a, yt, ldy, lv);
            else
              tile_halves<1, kOneRowHalves<T>, T, false, kSpan>(nh, tw, a, yt, ldy, lv);
            break;
          case 2:
            tile_halves<2, 4, T, false, kSpan, true>(nh, tw, a, yt, ldy, lv);
            break;
          default:
            tile_halves<3, 2, T, false, kSpan, true>(nh, tw, a, yt, ldy, lv);
            break;
        }
        m += mr;
      }
    }
  }
}

// Calls f(packed block, half, j, record) for the records (b·nh + hi)·rec_bytes of halves
// [h, h + nh) × blocks [b0, b0 + blocks), blocks outer.
template <typename T, typename F>
void for_each_record(const PackedMatrix& w, int64_t h, int nh, int64_t b0, int64_t blocks,
                     uint8_t* scratch, int64_t rec_bytes, F&& f) {
  const TileWeights tw = packed_weights<T>(w, h, b0);
  constexpr int64_t kSpan = kStreamSpan<T>;
  for (int64_t b = 0; b < blocks; ++b)
    for (int hi = 0; hi < nh; ++hi) {
      if (const char* at = group_stream_at<kSpan>(tw, hi, b)) prefetch_two_distances<kSpan>(at);
      int half, j;
      const uint8_t* p = weights_at<T, false>(tw, hi, b, &half, &j);
      f(p, half, j, scratch + (b * nh + hi) * rec_bytes);
    }
}

// Decodes signed halves [h, h + nh) × blocks [b0, b0 + blocks) into int16 records
// (b·nh + hi)·kRec16Bytes. A vector of T::pair holds per row (dword lane) 4 signed bytes k..k+3;
// its even / odd int16 words are (k, k+1) / (k+2, k+3): the bytes sign-extended in place
// (shift left 8 then arithmetic right 8, or arithmetic right 8) and re-paired by word blends.
template <typename T>
void decode_panel16(const PackedMatrix& w, int64_t h, int nh, int64_t b0, int64_t blocks,
                    uint8_t* scratch) {
  for_each_record<T>(
      w, h, nh, b0, blocks, scratch, kRec16Bytes,
      [](const uint8_t* p, int half, int j, uint8_t* rec) {
        for (int jj = 0; jj < 4; ++jj) {
          __m256i v[2];
          T::pair(p, half, j, jj, &v[0], &v[1]);
          for (int u = 0; u < 2; ++u) {
            const __m256i even = _mm256_srai_epi16(_mm256_slli_epi16(v[u], 8), 8);  // k, k+2
            const __m256i odd = _mm256_srai_epi16(v[u], 8);                         // k+1, k+3
            const __m256i lo = _mm256_blend_epi16(even, _mm256_slli_epi32(odd, 16), 0xAA);
            const __m256i hi2 = _mm256_blend_epi16(_mm256_srli_epi32(even, 16), odd, 0xAA);
            _mm256_store_si256(reinterpret_cast<__m256i*>(rec + (4 * jj + 2 * u) * 32), lo);
            _mm256_store_si256(reinterpret_cast<__m256i*>(rec + (4 * jj + 2 * u + 1) * 32), hi2);
          }
        }
        _mm256_store_ps(reinterpret_cast<float*>(rec + kRec16Scale), T::scale(p, half, j));
      });
}

// Rows [m0, m1) × blocks [b0, b0 + blocks) of the int8 activations, widened to int16, row
// stride blocks·32.
void widen_acts(const QuantizedActs& x, int64_t m0, int64_t m1, int64_t b0, int64_t blocks,
                int16_t* out) {
  const int64_t n = blocks * 32;
  for (int64_t m = m0; m < m1; ++m) {
    const int8_t* src = x.q + m * x.k + b0 * 32;
    int16_t* dst = out + (m - m0) * n;
    for (int64_t k = 0; k < n; k += 16)
      _mm256_store_si256(
          reinterpret_cast<__m256i*>(dst + k),
          _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + k))));
  }
}

// Decodes halves [h, h + nh) × blocks [b0, b0 + blocks) into records (b·nh + hi)·kRecBytes.
template <typename T>
void decode_panel(const PackedMatrix& w, int64_t h, int nh, int64_t b0, int64_t blocks,
                  uint8_t* scratch) {
  for_each_record<T>(
      w, h, nh, b0, blocks, scratch, kRecBytes,
      [](const uint8_t* p, int half, int j, uint8_t* rec) {
#pragma GCC unroll 4
        for (int jj = 0; jj < 4; ++jj) {
          __m256i va, vb;
          T::pair(p, half, j, jj, &va, &vb);
          _mm256_store_si256(reinterpret_cast<__m256i*>(rec + jj * 32), va);
          _mm256_store_si256(reinterpret_cast<__m256i*>(rec + (jj + 4) * 32), vb);
        }
        _mm256_store_ps(reinterpret_cast<float*>(rec + kRecScale), T::scale(p, half, j));
        if constexpr (T::kMin)
          _mm256_store_ps(reinterpret_cast<float*>(rec + kRecMin), T::min(p, half, j));
        if constexpr (T::kHalves) {
          __m256i lo, hi2;
          T::sub(p, half, j, &lo, &hi2);
          _mm256_store_si256(reinterpret_cast<__m256i*>(rec + kRecSubLo), lo);
          _mm256_store_si256(reinterpret_cast<__m256i*>(rec + kRecSubHi), hi2);
          _mm256_store_si256(reinterpret_cast<__m256i*>(rec + kRecBiasSubs), bias_subs(lo, hi2));
        }
      });
}

// tile_halves<mr, kPanelHalves> for a run-time mr in 1..kGemmRows.
template <typename T, bool kDecoded, int kPanelHalves, int64_t kSpan = 0,
          bool kTwoDistances = false>
inline void tile_rows(int mr, int nh, const TileWeights& w, const Acts& a, float* y, int64_t ldy,
                      int last_valid) {
  static_assert(kGemmRows == 4, "one case per row count");
  switch (mr) {
    case 1:
      return tile_halves<1, kPanelHalves, T, kDecoded, kSpan, kTwoDistances>(nh, w, a, y, ldy,
                                                                             last_valid);
    case 2:
      return tile_halves<2, kPanelHalves, T, kDecoded, kSpan, kTwoDistances>(nh, w, a, y, ldy,
                                                                             last_valid);
    case 3:
      return tile_halves<3, kPanelHalves, T, kDecoded, kSpan, kTwoDistances>(nh, w, a, y, ldy,
                                                                             last_valid);
    default:
      return tile_halves<4, kPanelHalves, T, kDecoded, kSpan, kTwoDistances>(nh, w, a, y, ldy,
                                                                             last_valid);
  }
}

// Five to eight activation rows over one half-group read in place (a server's step of that many
// decoding sequences; the GEMM takes M >= 6), in one pass instead of two register blocks of 4
// rows that would each unpack the panel's codes (Q6_K: 9 ALU instructions per jj step, as many
// as the products of two rows). A block's 8 code vectors are unpacked once and stay in registers
// while the rows pass over them, one row's int32 sum live at a time; the rows' float accumulators
// live in memory (a load and a store per row and block). Per row the same isum and fold as
// tile<>; Q6_K's bias from pack_half_sums, as a decoded panel's. Only for codes with bits above
// the nibble: in-process alternation on a Zen 3 VM (2 threads, 6144 × 2048, M = 6..8), Q6_K
// 12-19 % faster (a further ~10 % with the packed half sums; the 151936 × 2048 head at M = 8
// 30.7 → 24.8 ms), Q5_K 11-15 %, Q5_0 9-12 %, Q5_1 3 %; the nibble types, whose unpack is 3
// instructions per jj step, lost to the stores (Q4_0 4 %, Q4_1 11 %; Q4_K ± 2 %).
// docs/PERF.md, forty-eighth session.
constexpr int kWideRows = 8;

template <typename T>
constexpr bool takes_wide_tile() {
  return !T::kSigned && T::kJjPerMadd == 2 && T::G.high >= 0;
}

template <typename T, int64_t kSpan>
void tile_wide(int mr, const TileWeights& w, const Acts& a, float* y, int64_t ldy, int last_valid) {
  static_assert(takes_wide_tile<T>(), "unsigned codes, two jj steps per VPMADDWD");
  static_assert(kWideRows == 2 * kGemmRows, "every row of an M chunk the GEMM does not decode");
  const __m256i last_mask =
      _mm256_cmpgt_epi32(_mm256_set1_epi32(last_valid), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  alignas(32) float acc[kWideRows][8];
  for (int r = 0; r < mr; ++r) {
    const float* in = y + r * ldy;
    __m256 v = _mm256_setzero_ps();
    if (a.resume) v = last_valid < 8 ? _mm256_maskload_ps(in, last_mask) : _mm256_loadu_ps(in);
    _mm256_store_ps(acc[r], v);
  }
  alignas(32) uint8_t prep[T::kPrep > 0 ? T::kPrep : 1];
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < a.blocks; ++b) {
    prefetch_two_distances<kSpan>(group_stream_at<kSpan>(w, 0, b));
    int half, j;
    const uint8_t* p = weights_at<T, false>(w, 0, b, &half, &j);
    __m256i va[4], vb[4];
#pragma GCC unroll 4
    for (int jj = 0; jj < 4; ++jj) T::pair(p, half, j, jj, &va[jj], &vb[jj]);
    __m256i lo = ones, hi = ones, bsubs = ones;
    if constexpr (T::kHalves) {
      T::sub(p, half, j, &lo, &hi);
      bsubs = bias_subs(lo, hi);
    }
    __m256 ws, wm = _mm256_setzero_ps();
    if constexpr (T::kPrep > 0) {
      if (j == 0) T::prep(p, prep);  // the superblock's 6-bit codes, once
      ws = T::scale_prep(p, half, j, prep);
      if constexpr (T::kMin) wm = T::min_prep(p, half, j, prep);
    } else {
      ws = T::scale(p, half, j);
      if constexpr (T::kMin) wm = T::min(p, half, j);
    }
    const int8_t* xb = a.q + b * 32;
    for (int r = 0; r < mr; ++r) {
      const int64_t o = r * a.ds_stride + b;
      __m256i isum;              // the bias term first, as half_block_isum
      if constexpr (T::kHalves)  // the (s_0, s_1) pairs by pack_half_sums, as a decoded panel's
        isum = _mm256_madd_epi16(bsubs, _mm256_set1_epi32(a.s01[r * a.blocks + b]));
      else if constexpr (has_bias_terms<T>())
        isum = _mm256_set1_epi32(a.bias[r * a.blocks + b]);
      else
        isum = _mm256_setzero_si256();
#pragma GCC unroll 2
      for (int jj = 0; jj < 4; jj += 2) {
        __m256i sa, sb;
        two_steps(va[jj], vb[jj], va[jj + 1], vb[jj + 1], xb + r * a.q_stride, jj, &sa, &sb);
        const __m256i part =
            T::kHalves ? _mm256_add_epi32(_mm256_madd_epi16(sa, lo), _mm256_madd_epi16(sb, hi))
                       : _mm256_madd_epi16(_mm256_add_epi16(sa, sb), ones);
        isum = _mm256_add_epi32(isum, part);
      }
      const __m256 scale = _mm256_mul_ps(ws, _mm256_set1_ps(a.d[o]));
      __m256 f = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), scale, _mm256_load_ps(acc[r]));
      if constexpr (T::kMin) f = _mm256_fmadd_ps(wm, _mm256_set1_ps(a.sd[o]), f);
      _mm256_store_ps(acc[r], f);
    }
  }
  for (int r = 0; r < mr; ++r) {
    float* out = y + r * ldy;
    const __m256 v = _mm256_load_ps(acc[r]);
    if (last_valid < 8)
      _mm256_maskstore_ps(out, last_mask, v);
    else
      _mm256_storeu_ps(out, v);
  }
}

// GEMM, blocked for the caches like the avx512 one:
//   K chunks of kKChunkBlocks blocks (outermost; the fold resumes from y between chunks),
//   M chunks whose activations (rows × chunk bytes) fit kActChunkBytes, so they stay in L2 while
//     every weight panel passes over them,
//   weight panels of kGemmHalves half-groups × the K chunk (decoded: 24 KB, L1/L2),
//   register blocks of kGemmRows rows innermost.
template <typename T>
void gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0,
          int64_t m1, int64_t n0, int64_t n1) {
  const int64_t nb = w.k / 32;
  if (nb == 0) return gemv<T>(w, x, y, ldy, m0, m1, n0, n1);  // K = 0: every output is 0
  // Signed values go through int16 (Decoded16) wherever a panel is decoded.
  constexpr bool kI16 = T::kSigned;
  constexpr int kPanelHalves = kI16 ? kGemmHalves16 : kGemmHalves;
  const int64_t h0 = n0 / 8, h1 = (n1 + 7) / 8;
  const int64_t kc_max = std::min<int64_t>(nb, kI16 ? kKChunkBlocks16 : kKChunkBlocks);
  // int16 activations take twice the bytes: half the rows per M chunk keeps them in L2.
  const int64_t act_bytes = kc_max * 32 * (kI16 ? 2 : 1);
  const int64_t mc_max =
      std::max<int64_t>(kGemmRows, kActChunkBytes / act_bytes / kGemmRows * kGemmRows);
  uint8_t* scratch =
      decode_scratch(static_cast<size_t>(kc_max * kPanelHalves * (kI16 ? kRec16Bytes : kRecBytes)));
  int16_t* wide =
      kI16 ? reinterpret_cast<int16_t*>(decode_scratch(static_cast<size_t>(mc_max * act_bytes), 1))
           : nullptr;
  int32_t* sums01 = T::kHalves || has_bias_terms<T>()
                        ? reinterpret_cast<int32_t*>(decode_scratch(
                              static_cast<size_t>(mc_max * kc_max) * sizeof(int32_t), 1))
                        : nullptr;  // Q6_K's half sums, or the bias terms
  for (int64_t b0 = 0; b0 < nb; b0 += kc_max) {
    const int64_t kc = std::min(kc_max, nb - b0);
    for (int64_t mc0 = m0; mc0 < m1; mc0 += mc_max) {
      const int64_t mc1 = std::min(m1, mc0 + mc_max);
      // Decoded once when more than two register blocks read the panel. (Q6_K decoded from
      // two as well was faster from L3 at M = 8 but 2 % slower in the model, where the 8 rows'
      // output head comes from memory: docs/KERNELS.md.)
      const bool decode = mc1 - mc0 > 2 * kGemmRows;
      // Two register blocks' worth of rows (M = 6..8 here, the GEMV taking fewer) of a type
      // whose codes carry bits above the nibble: one pass over the panel (tile_wide).
      const bool one_pass = takes_wide_tile<T>() && !decode && mc1 - mc0 > kGemmRows;
      if (kI16 && decode) widen_acts(x, mc0, mc1, b0, kc, wide);
      if constexpr (T::kHalves) pack_half_sums(x, mc0, mc1, b0, kc, sums01);
      if constexpr (has_bias_terms<T>()) pack_bias_terms<T>(x, mc0, mc1, b0, kc, sums01);
      for (int64_t h = h0; h < h1; h += kPanelHalves) {
        const int nh = static_cast<int>(std::min<int64_t>(kPanelHalves, h1 - h));
        const int lv = valid_cols((h + nh - 1) * 8, n1);
        TileWeights tw = packed_weights<T>(w, h, b0);
        if (decode) {
          if constexpr (kI16)
            decode_panel16<T>(w, h, nh, b0, kc, scratch);
          else
            decode_panel<T>(w, h, nh, b0, kc, scratch);
          tw = {scratch, 0, 0, 0, 0, 1, nh};
        }
        for (int64_t m = mc0; m < mc1; m += kGemmRows) {
          Acts a = acts_at(x, m, b0, kc, b0 > 0);
          if constexpr (has_bias_terms<T>()) a.bias = sums01 + (m - mc0) * kc;
          if constexpr (T::kHalves) a.s01 = sums01 + (m - mc0) * kc;
          float* yt = y + m * ldy + h * 8;
          const int mr = static_cast<int>(std::min<int64_t>(kGemmRows, mc1 - m));
          if (decode) {
            if constexpr (kI16) {
              a.q = reinterpret_cast<const int8_t*>(wide + (m - mc0) * kc * 32);
              a.q_stride = kc * 32 * 2;
              tile_rows<Decoded16<T>, true, kPanelHalves>(mr, nh, tw, a, yt, ldy, lv);
            } else {
              tile_rows<Decoded<T>, true, kPanelHalves>(mr, nh, tw, a, yt, ldy, lv);
            }
          } else if (one_pass) {  // every row of the M chunk at once
            if constexpr (takes_wide_tile<T>()) {
              tile_wide<T, kStreamSpan<T>>(static_cast<int>(mc1 - mc0), tw, a, yt, ldy, lv);
            }
            break;
          } else if (m == mc0) {  // the panel's first read, from memory: prefetched
            tile_rows<T, false, kPanelHalves, kStreamSpan<T>, true>(mr, nh, tw, a, yt, ldy, lv);
          } else {
            tile_rows<T, false, kPanelHalves>(mr, nh, tw, a, yt, ldy, lv);
          }
        }
      }
    }
  }
}

}  // namespace

#define XTILE_AVX2_TYPE(fn, name, Traits, layout)                                                \
  void fn##_gemv(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                 int64_t m1, int64_t n0, int64_t n1) {                                             \
    check_layout(w, Layout::layout, name "_gemv_1x64__avx2");                                      \
    gemv<xa::Traits>(w, x, y, ldy, m0, m1, n0, n1);                                                \
  }                                                                                                \
  void fn##_gemm(const PackedMatrix& w, const QuantizedActs& x, float* y, int64_t ldy, int64_t m0, \
                 int64_t m1, int64_t n0, int64_t n1) {                                             \
    check_layout(w, Layout::layout, name "_gemm_4x8__avx2");                                       \
    gemm<xa::Traits>(w, x, y, ldy, m0, m1, n0, n1);                                                \
  }
XTILE_AVX2_TYPE(q8_0, "q8_0", Q8_0, q8_0_x16)
XTILE_AVX2_TYPE(q4_0, "q4_0", Q4_0, q4_0_x16)
XTILE_AVX2_TYPE(q4_1, "q4_1", Q4_1, q4_1_x16)
XTILE_AVX2_TYPE(q5_0, "q5_0", Q5_0, q5_0_x16)
XTILE_AVX2_TYPE(q5_1, "q5_1", Q5_1, q5_1_x16)
XTILE_AVX2_TYPE(iq4_nl, "iq4_nl", Iq4Nl, iq4_nl_x16)
XTILE_AVX2_TYPE(q4_k, "q4_K", Q4_K, q4_k_x16)
XTILE_AVX2_TYPE(q5_k, "q5_K", Q5_K, q5_k_x16)
XTILE_AVX2_TYPE(q6_k, "q6_K", Q6_K, q6_k_x16)
XTILE_AVX2_TYPE(iq4_xs, "iq4_xs", Iq4Xs, iq4_xs_x16)
#undef XTILE_AVX2_TYPE

}  // namespace xtile::avx2
