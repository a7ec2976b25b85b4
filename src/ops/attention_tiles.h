// The vectorized attention of attention.h, as templates on the vector width W (lanes16.h), the
// head size (C pieces of 16) and the cache element read in place (float, or uint16_t: fp16
// converted as it is loaded). attention.cpp instantiates them at every width for the
// tests and at 4 wide for a CPU without AVX2 (the fallback), and the ISA objects compile them with
// their flags (F16C loads, integer scores, splat_load's broadcast:
// src/kernels/avx512/attention_avx512.cpp, src/kernels/avx2/attention_avx2.cpp,
// kernels/attention_isa.h). Every instantiation follows attention.h's arithmetic, so all give the
// same bits.
//
// The code is in an unnamed namespace: each translation unit compiles its own copy for its own
// ISA, and no out-of-line copy can be shared (and picked by the linker) across ISAs.
//
// A tile is up to R query vectors (rows × heads of one kv head) that share every K and V load.
// Per block: the scores of all of them (R 16-lane accumulators, one K chunk load feeding R
// products: 16 positions per step), the softmax per vector, then the weighted sum of V (H
// vectors at a time sharing each V load), combined into the running state.
// Register budget: scores R + 2 (AVX-512: R = 8; a 16-lane value is 2 ymm on AVX2, R = 6 there:
// 12 ymm of sums, 12 chains of dependent fmas in flight where 8 left the two FMA pipes waiting on
// the latency; 4 xmm below, R = 4); weighted sum H·CP + 2 (H vectors × CP 16-dimension pieces;
// weighted_sums).

#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "base/fp16.h"
#include "ops/attention.h"
#include "ops/lanes16.h"
#if defined(__F16C__)
#include "kernels/f16c_lanes.h"
#endif
#if defined(__AVX2__)
#include "kernels/kv_lanes.h"
#endif

namespace xtile::ops::attention_tiles {

// Namespace-scope constexpr, not inline: internal linkage, so an ISA object that odr-uses one
// (std::min takes a reference) defines no symbol the linker could share across ISAs.
constexpr int64_t kB = kAttentionBlock;
constexpr int64_t kChunk = kKChunk;

// The running state of one query vector over blocks (M, L, O of attention.h).
struct Running {
  float m = 0, l = 0;
  bool started = false;
};

// The cache lines of the next piece of a converted cache (BlockSource), requested a few per step
// of the arithmetic on the current piece. The conversion itself reads at the memory's speed, but
// without this nothing is read while the scores and sums of a piece are computed: perf at depth
// 4096 showed the conversion and the arithmetic one after the other, never overlapped. Into L2
// (the next piece, 16 KiB of fp16 K for a 128-wide head, would evict the current one from L1).
struct PrefetchLines {
  const char* next = nullptr;
  const char* end = nullptr;
  int per_step = 0;
  // A line past the end is requested as the last one (a select, not a loop exit: the request
  // repeats, which costs nothing). The select is off the cursor's chain: `next` moves once per
  // step by an add. Where each line's select fed the next line's address, a block's requests
  // (2048 lines: 64 KiB each of fp16 K and V) made one chain of ~3 cycles each, about as long
  // as the block's arithmetic: one fp16 block alone in L2 took ~7200 cycles with it and ~6500
  // without; two threads over 30 layers at depth 4096 from memory 306-333 → 286-308 µs per
  // layer in six alternated rounds, even (276-293 both) in three later ones (docs/PERF.md,
  // twenty-third session). Loops step a local copy and store it back after: with the struct
  // itself behind a reference GCC kept `next` in memory, a store and a reload per step of the
  // score loop (attention alone in L3, 16 wide: 3-5 % faster this way).
  XTILE_LANES_INLINE void step() {
    const char* n = next;
    for (int k = 0; k < per_step; ++k) {
      const char* line = n + 64 * k;
      __builtin_prefetch(line < end ? line : end - 64, 0, 2);
    }
    next = n + 64 * per_step;
  }
};

// A query vector quantized for a q8_0 K (attention.h): per 32 dimensions b, quantize_row_q8_0's
// int8 q[32 b ..] and fp32 scale d[b], and bias[b] = −128 · Σ q over the block (exact in a float:
// |.| ≤ 520192), the term that turns the sum over K's stored q_k + 128 into Σ q · q_k.
struct QueryQ8 {
  const int8_t* q = nullptr;
  const float* d = nullptr;
  const float* bias = nullptr;
};

// Scores of nq query vectors against `chunks` 16-position chunks of a q8_0 K from kc (each chunk
// `blocks` blocks of kKq8BlockBytes): s[v · kB + p] = s_p of attention.h. Requests pf's lines
// spread over its steps (split mode: the next piece of the cache).
using ScoreQ8Fn = void (*)(int nq, const QueryQ8* qq, const uint8_t* kc, int64_t chunks,
                           int64_t blocks, float scale, float* s, PrefetchLines& pf);

// Where a block's K and V come from: f32 in the cache layout (k: its first K chunk, v: its first
// V row); a cache read in place by block<..., E, EV> with E / EV not float (fp16, bf16, a q8_0 V:
// k_raw / v_raw, the conversion part of each load); or, when k / v is null, a cache of another
// type read kPiece positions at a time into the thread's buffers kbuf / vbuf (kPiece · head_dim
// floats each) by convert_k / convert_v (attention.cpp), so that the converted values are used
// while they are in L1. k_raw / v_raw: the cache bytes of the block's first K chunk / V row,
// k_chunk_bytes / v_row_bytes their strides (also for PrefetchLines; null k_raw / v_raw:
// nothing to request).
struct BlockSource {
  const float* k = nullptr;
  const float* v = nullptr;
  // Floats from one V row to the next (0: hd) and from one 16-dimension piece of a row to the
  // next: 0, 16 for rows as the cache holds them (and for convert_v's pieces, fp16 in place);
  // prompt mode's converted V is stored piece by piece instead (F32Kv).
  int64_t v_row_floats = 0;
  int64_t v_piece_floats = 16;
  const KvLayerView* kv = nullptr;
  int64_t g = 0;   // kv head
  int64_t p0 = 0;  // the block's first position
  float* kbuf = nullptr;
  float* vbuf = nullptr;
  // Each converts positions from p (chunks K chunks / n V rows) into its buffer, returns it.
  const float* (*convert_k)(const BlockSource&, int64_t p, int64_t chunks) = nullptr;
  const float* (*convert_v)(const BlockSource&, int64_t p, int64_t n) = nullptr;
  const char* k_raw = nullptr;
  const char* v_raw = nullptr;
  int64_t k_chunk_bytes = 0;
  int64_t v_row_bytes = 0;
  // A q8_0 K, read in place: the block's first chunk, the tile's quantized query vectors and
  // the integer scorer (kq8 null: K is one of the above).
  const uint8_t* kq8 = nullptr;
  const QueryQ8* qq = nullptr;
  ScoreQ8Fn score_q8 = nullptr;
  // Lines to request while the block's last V piece is summed (split mode: the first K piece of
  // the item this thread takes next, claimed one ahead). Without them each item's K stream
  // started cold, every piece after it requested ahead but the first one waiting on memory.
  const char* next_raw = nullptr;
  int64_t next_bytes = 0;
};
constexpr int64_t kPiece = 64;  // positions per piece (4 K chunks)

// The f32 K/V of kv head g, block c: its first K chunk and its first V row.
// A q8_0 K instead stays as the cache holds it (kq8, of capacity kq8_capacity), scored by score_q8.
// V's rows: v_pieces false, each row's hd floats together (a f32 cache read in place); true, the
// converted V of prompt mode, stored piece by piece: per kv head, 16 dimensions of every position,
// then the next 16 (each pass of the weighted sums, over 1 or 2 pieces of the block's rows, then
// reads 1 or 2 sequential streams instead of one line of each row 512 bytes apart).
struct F32Kv {
  const float* k;
  const float* v;
  int64_t capacity;
  int64_t hd;
  bool v_pieces = false;
  const uint8_t* kq8 = nullptr;
  int64_t kq8_capacity = 0;
  ScoreQ8Fn score_q8 = nullptr;
  const float* k_block(int64_t g, int64_t c) const {
    return k + (g * (capacity / kChunk) + c * (kB / kChunk)) * hd * kChunk;
  }
  const float* v_block(int64_t g, int64_t c) const {
    return v + g * capacity * hd + c * kB * v_row_floats();
  }
  int64_t v_row_floats() const { return v_pieces ? 16 : hd; }
  int64_t v_piece_floats() const { return v_pieces ? capacity * 16 : 16; }
  const uint8_t* kq8_block(int64_t g, int64_t c) const {
    return kq8 + (g * (kq8_capacity / kChunk) + c * (kB / kChunk)) * (hd / 32) * kKq8BlockBytes;
  }
};

// A tile's query vectors: vector v is (row rows[v], head heads[v]).
struct TileVectors {
  int n = 0;
  const float* q[8];
  int64_t row[8];
  int64_t head[8];
  QueryQ8 qq[8];  // the vectors quantized, where K is q8_0
};

// One tile step of split mode (generation): one block for the tile's vectors, (m, l, o) of each
// vector into its slot (tile_one_block).
using OneBlockFn = void (*)(const AttentionShape&, const TileVectors&, const int64_t*,
                            const BlockSource&, int64_t, float* const*, float*);
// Prompt mode: every block of a group of tiles (tiles_all_blocks).
using AllBlocksFn = void (*)(const AttentionShape&, const TileVectors*, int, const int64_t*,
                             const F32Kv&, int64_t, float*, int64_t, float*);
// Query vectors of the tiles of one prompt-mode group (tiles_all_blocks), and the floats of work
// space it takes: a tile's scores and block sums, the group's running sums.
constexpr int kGroupVectors = 64;
constexpr int64_t prompt_work_floats(int64_t hd) {
  return 8 * kAttentionBlock + (8 + kGroupVectors) * hd;
}

namespace {

// e^x of one float, the bits of lanes::exp (the same at every width).
XTILE_LANES_INLINE float exp1(float x) {
  return lanes::lane(lanes::exp<4>(lanes::splat<4>(x)), 0);
}

// The element type of a bf16 cache read in place (block<..., KvBf16>): its bits, a type of its
// own so that the loads below tell it from fp16's uint16_t.
struct KvBf16 {
  uint16_t bits;
};

// One 16-lane value of K or V: f32 as stored, or fp16 / bf16 converted (exact) as it is loaded.
template <int W>
XTILE_LANES_INLINE lanes::F16<W> load_kv(const float* p) {
  return lanes::load<W>(p);
}
#if defined(__F16C__)
template <int W>
XTILE_LANES_INLINE lanes::F16<W> load_kv(const uint16_t* p) {
  lanes::F16<W> r;
  f16c_lanes::load<W>(p, r.part);
  return r;
}
#endif
#if defined(__AVX2__)
template <int W>
XTILE_LANES_INLINE lanes::F16<W> load_kv(const KvBf16* p) {
  lanes::F16<W> r;
  kv_lanes::bf16<W>(&p->bits, r.part);
  return r;
}
#endif

template <int W>
constexpr int kTileVectors = W == 16  ? 8
                             : W == 8 ? 6
                                      : 4;
// Split mode's tiles (generation): 8 vectors from width 8 up, so that a kv head shared by 8
// query heads (Qwen3-30B-A3B) is one tile and each block's K and V are read from memory once;
// at width 8 its scores run as 6 vectors and then 2 over the same piece, in L1 (scores_any).
template <int W>
constexpr int kSplitTileVectors = W >= 8 ? 8 : kTileVectors<W>;

// Chunks scored together (CH) for NQ query vectors at width W. Each lane's sum is a chain of
// dependent adds over the head's dimensions, so NQ·CH accumulators is the number of chains in
// flight: generation (NQ = the group, often 1 or 2) would otherwise wait on the add latency, and
// every broadcast of q[v][i] would feed a single product. Register budget: NQ·CH accumulators
// + CH K values + 1 broadcast (a 16-lane value is 1 zmm, 2 ymm, 4 xmm): a prompt tile of 8
// vectors takes 3 chunks on AVX-512 (28 of 32 zmm; each broadcast feeds 3 products instead of
// 2: pp4096 +2 %), 3-4 vectors 4 chunks; on AVX2 a tile of 5-6 vectors 1 chunk (12 ymm).
constexpr int score_chunks_for(int w, int nq) {
  if (w == 16) return nq <= 2 ? 4 : nq <= 4 ? 4 : 3;
  if (w == 8) return nq == 1 ? 3 : nq == 2 ? 2 : 1;
  return 1;
}

// Scores of NQ query vectors for CH chunks of 16 positions from k (the first chunk's K):
// s[v · kB + 16 · ch + lane] = (Σ_i q_v[i] · k_p[i]) · scale. Lanes past the valid positions
// hold whatever the cache held (masked later).
template <int W, int C, int NQ, int CH, typename E>
XTILE_LANES_INLINE void score_chunks(const float* const* q, const E* k, float scale, float* s,
                                     PrefetchLines& pf) {
  using V = lanes::F16<W>;
  constexpr int hd = 16 * C;
  V acc[NQ][CH];
  for (int v = 0; v < NQ; ++v)
    for (int c = 0; c < CH; ++c) acc[v][c] = lanes::zero<W>();
  PrefetchLines stepping = pf;
#pragma GCC unroll 2
  for (int i = 0; i < hd; ++i) {
    stepping.step();
    V kv[CH];
    for (int c = 0; c < CH; ++c) kv[c] = load_kv<W>(k + (c * hd + i) * kChunk);
    for (int v = 0; v < NQ; ++v) {
      const V qv = lanes::splat_load<W>(q[v] + i);
      for (int c = 0; c < CH; ++c) acc[v][c] = lanes::fma(qv, kv[c], acc[v][c]);
    }
  }
  pf = stepping;
  const V vscale = lanes::splat<W>(scale);
  for (int v = 0; v < NQ; ++v)
    for (int c = 0; c < CH; ++c) lanes::store(s + v * kB + c * kChunk, acc[v][c] * vscale);
}

// Scores of NQ query vectors for `chunks` chunks of 16 positions from kc (the block's first K
// chunk), CH chunks at a time, then one at a time.
template <int W, int C, int NQ, typename E>
XTILE_LANES_INLINE void scores(const float* const* q, const E* kc, int64_t chunks, float scale,
                               float* s, PrefetchLines& pf) {
  constexpr int hd = 16 * C;
  constexpr int CH = score_chunks_for(W, NQ);
  int64_t ch = 0;
  // 3 at a time would leave one chunk of a whole block (16 = 5 · 3 + 1) to the one-chunk step,
  // each K load feeding a third of the products (perf: 14 % of the scores' time for 6 % of
  // their work); 4 · 3 + 2 · 2 instead.
  const int64_t by_ch = CH == 3 && chunks % 3 == 1 && chunks >= 4 ? chunks - 4 : chunks;
  for (; ch + CH <= by_ch; ch += CH)
    score_chunks<W, C, NQ, CH>(q, kc + ch * hd * kChunk, scale, s + ch * kChunk, pf);
  if constexpr (CH == 3)
    for (; ch + 2 <= chunks; ch += 2)
      score_chunks<W, C, NQ, 2>(q, kc + ch * hd * kChunk, scale, s + ch * kChunk, pf);
  for (; ch < chunks; ++ch)
    score_chunks<W, C, NQ, 1>(q, kc + ch * hd * kChunk, scale, s + ch * kChunk, pf);
}

template <int W, int C, typename E>
XTILE_LANES_INLINE void scores_any(int nq, const float* const* q, const E* kc, int64_t chunks,
                                   float scale, float* s, PrefetchLines& pf) {
  switch (nq) {
    case 1:
      return scores<W, C, 1>(q, kc, chunks, scale, s, pf);
    case 2:
      return scores<W, C, 2>(q, kc, chunks, scale, s, pf);
    case 3:
      return scores<W, C, 3>(q, kc, chunks, scale, s, pf);
    case 4:
      return scores<W, C, 4>(q, kc, chunks, scale, s, pf);
    default:
      break;
  }
  if constexpr ((kTileVectors<W>) == 6) {  // W = 8
    if (nq == 5) return scores<W, C, 5>(q, kc, chunks, scale, s, pf);
    scores<W, C, 6>(q, kc, chunks, scale, s, pf);
    // A split-mode tile of 7-8 vectors (kSplitTileVectors): the rest over the same piece, which
    // the first 6 brought into L1 (its lines already requested: nothing more to request).
    PrefetchLines none;
    if (nq == 7) scores<W, C, 1>(q + 6, kc, chunks, scale, s + 6 * kB, none);
    if (nq == 8) scores<W, C, 2>(q + 6, kc, chunks, scale, s + 6 * kB, none);
    return;
  }
  if constexpr ((kTileVectors<W>) == 8) {  // W = 16
    switch (nq) {
      case 5:
        return scores<W, C, 5>(q, kc, chunks, scale, s, pf);
      case 6:
        return scores<W, C, 6>(q, kc, chunks, scale, s, pf);
      case 7:
        return scores<W, C, 7>(q, kc, chunks, scale, s, pf);
      default:
        return scores<W, C, 8>(q, kc, chunks, scale, s, pf);
    }
  }
}

// Softmax of one vector's block scores over its first `ext` positions: s[p] = e_p (0 past ext),
// m = the max, l = the 16-lane fold of the e's.
template <int W>
XTILE_LANES_INLINE void block_softmax(float* s, int64_t ext, float* m_out, float* l_out) {
  using V = lanes::F16<W>;
  const int64_t chunks = (ext + kChunk - 1) / kChunk;
  const V neg_inf = lanes::splat<W>(-__builtin_inff());
  V mx = neg_inf;
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int valid = static_cast<int>(std::min<int64_t>(kChunk, ext - ch * kChunk));
    mx = lanes::max(mx, lanes::first_lanes(lanes::load<W>(s + ch * kChunk), neg_inf, valid));
  }
  const float m = lanes::max_lane(mx);
  const V vm = lanes::splat<W>(m);
  V sum = lanes::zero<W>();
  for (int64_t ch = 0; ch < chunks; ++ch) {
    const int valid = static_cast<int>(std::min<int64_t>(kChunk, ext - ch * kChunk));
    const V e = lanes::first_lanes(lanes::exp(lanes::load<W>(s + ch * kChunk) - vm),
                                   lanes::zero<W>(), valid);
    lanes::store(s + ch * kChunk, e);
    sum = sum + e;
  }
  *m_out = m;
  *l_out = lanes::fold(sum);
}

// The 16 values of K or V at p as 16 / W native vectors (lanes16.h's parts), for loops whose
// accumulators are native vectors.
template <int W>
XTILE_LANES_INLINE void load_kv_parts(const float* p, lanes::Native<W>* parts) {
#pragma GCC unroll 4
  for (int i = 0; i < 16 / W; ++i) std::memcpy(&parts[i], p + i * W, sizeof parts[i]);
}
#if defined(__F16C__)
template <int W>
XTILE_LANES_INLINE void load_kv_parts(const uint16_t* p, lanes::Native<W>* parts) {
  f16c_lanes::load<W>(p, parts);
}
#endif
#if defined(__AVX2__)
template <int W>
XTILE_LANES_INLINE void load_kv_parts(const KvBf16* p, lanes::Native<W>* parts) {
  kv_lanes::bf16<W>(&p->bits, parts);
}
#endif

// The element type of a q8_0 V read in place (block<..., EV = KvQ8>): a pointer to it is a byte
// address, rows of kv_row_bytes(q8_0, hd) bytes, each the head's blocks of 34 (fp16 d, 32 q).
using KvQ8 = int8_t;
constexpr int64_t kQ8BlockBytes = 34;

// Position p's 16-dimension pieces c0 .. c0 + CP − 1 of V as 16 / W native vectors each: rows
// of E (rs elements apart, a piece ps after the one before), or a q8_0 V's row of blocks (piece
// c: 16 values of block c / 2, scaled by its d; rs bytes apart).
template <int W, int CP, typename E>
XTILE_LANES_INLINE void load_v_pieces(const E* vb, int64_t p, int64_t rs, int64_t ps, int c0,
                                      lanes::Native<W>* vv) {
  if constexpr (std::is_same_v<E, KvQ8>) {
#if defined(__AVX2__)
    const KvQ8* row = vb + p * rs;
    float d = 0;
#pragma GCC unroll 16
    for (int c = 0; c < CP; ++c) {
      const KvQ8* blk = row + (c0 + c) / 2 * kQ8BlockBytes;
      if (c == 0 || (c0 + c) % 2 == 0) d = kv_lanes::q8_scale(blk);
      kv_lanes::q8<W>(blk + 2 + 16 * ((c0 + c) % 2), d, vv + 16 / W * c);
    }
#else
    static_assert(!std::is_same_v<E, KvQ8>, "a q8_0 V is read in place by the ISA objects");
#endif
  } else {
    const E* v = vb + p * rs + c0 * ps;
#pragma GCC unroll 16
    for (int c = 0; c < CP; ++c) load_kv_parts<W>(v + c * ps, vv + 16 / W * c);
  }
}

// o[h · hd + ...] = Σ_{p < n} w[h · kB + p] · v_p for H vectors (weights past a vector's own
// extent are 0), CP 16-dimension pieces of the head at a time (C / CP passes over the rows).
// resume: the sums continue from o (the positions before these, already summed in order:
// storing and reloading an f32 is exact, so pieces of positions give the bits of one pass).
// The accumulators are an array of native vectors, not of 16-lane values: GCC 12 kept the
// latter (4 vectors × 1 piece at W = 8) in memory, storing all 8 to the stack on every position
// (perf: the AVX2 pass at half the FMA rate); these stay in registers.
template <int W, int C, int H, int CP, typename E>
XTILE_LANES_INLINE void weighted_sum(const float* w, int64_t n, const E* vb, int64_t rs, int64_t ps,
                                     float* o, bool resume, PrefetchLines& pf) {
  using N = lanes::Native<W>;
  constexpr int hd = 16 * C;
  constexpr int P = 16 / W * CP;  // native vectors per query vector and pass
  for (int c0 = 0; c0 < C; c0 += CP) {
    float* oc = o + 16 * c0;
    N acc[H][P];
#pragma GCC unroll 16
    for (int h = 0; h < H; ++h)
#pragma GCC unroll 16
      for (int j = 0; j < P; ++j) {
        if (resume)
          std::memcpy(&acc[h][j], oc + h * hd + W * j, sizeof acc[h][j]);
        else
          acc[h][j] = N{};
      }
    PrefetchLines stepping = pf;
    for (int64_t p = 0; p < n; ++p) {
      stepping.step();
      N vv[P];
      load_v_pieces<W, CP>(vb, p, rs, ps, c0, vv);
#pragma GCC unroll 16
      for (int h = 0; h < H; ++h) {
        const N wh = lanes::splat_load_native<W>(w + h * kB + p);
#pragma GCC unroll 16
        for (int j = 0; j < P; ++j) acc[h][j] = lanes::fma_native<W>(wh, vv[j], acc[h][j]);
      }
    }
    pf = stepping;
#pragma GCC unroll 16
    for (int h = 0; h < H; ++h)
#pragma GCC unroll 16
      for (int j = 0; j < P; ++j) std::memcpy(oc + h * hd + W * j, &acc[h][j], sizeof acc[h][j]);
  }
}

// The cache lines of K chunks / V rows from position p (per_step left 0).
XTILE_LANES_INLINE PrefetchLines k_piece_lines(const BlockSource& src, int64_t p, int64_t chunks) {
  PrefetchLines pf;
  if (!src.k_raw) return pf;
  pf.next = src.k_raw + (p - src.p0) / kChunk * src.k_chunk_bytes;
  pf.end = pf.next + chunks * src.k_chunk_bytes;
  return pf;
}
XTILE_LANES_INLINE PrefetchLines v_piece_lines(const BlockSource& src, int64_t p, int64_t n) {
  PrefetchLines pf;
  if (!src.v_raw) return pf;
  pf.next = src.v_raw + (p - src.p0) * src.v_row_bytes;
  pf.end = pf.next + n * src.v_row_bytes;
  return pf;
}

// Spreads pf's lines over `steps` steps of the arithmetic.
XTILE_LANES_INLINE void spread(PrefetchLines& pf, int64_t steps) {
  const int64_t lines = (pf.end - pf.next + 63) / 64;
  if (steps < 1) steps = 1;
  pf.per_step = lines > 0 ? static_cast<int>((lines + steps - 1) / steps) : 0;
}

// A q8_0 K's scores by plain loops, for any CPU (the ISA objects' VPDPBUSD / VPMADDUBSW kernels
// give the same bits: the integer sums are exact, the float steps the same per position).
inline void score_q8_portable(int nq, const QueryQ8* qq, const uint8_t* kc, int64_t chunks,
                              int64_t blocks, float scale, float* s, PrefetchLines& pf) {
  spread(pf, chunks * blocks);
  for (int64_t c = 0; c < chunks; ++c) {
    for (int64_t b = 0; b < blocks; ++b) {
      pf.step();
      const uint8_t* blk = kc + (c * blocks + b) * kKq8BlockBytes;
      for (int64_t p = 0; p < kChunk; ++p) {
        uint16_t d16;
        std::memcpy(&d16, blk + kv_kq8_scale_index(p), 2);
        const float dk = fp16_to_fp32(d16);
        for (int v = 0; v < nq; ++v) {
          int32_t isum = 0;
          for (int64_t i = 0; i < 32; ++i)
            isum += qq[v].q[32 * b + i] * (static_cast<int32_t>(blk[kv_kq8_index(p, i)]) - 128);
          float& acc = s[v * kB + c * kChunk + p];
          acc = std::fma(static_cast<float>(isum), dk * qq[v].d[b], b == 0 ? 0.0f : acc);
        }
      }
    }
  }
  for (int v = 0; v < nq; ++v)
    for (int64_t p = 0; p < chunks * kChunk; ++p) s[v * kB + p] = s[v * kB + p] * scale;
}

// The weighted sums of positions [a, b) of the block for nq vectors, vb holding row a. AVX-512:
// 16 accumulators, as 8 vectors × 2 pieces (a prompt tile's 8 vectors read each V row once, in
// 4 passes of 2 pieces, with 8 broadcast weights per position: pp4096 +2 % over 4 × 4, which
// read each row twice), 4 × 4, 2 × 8 or 1 × 16 for fewer vectors. AVX2 (16 ymm, a 16-lane value
// is 2): 6 sums of 16 lanes (12 ymm, plus 2 of V and a broadcast), as a prompt tile's 6 vectors
// × 1 piece (each V load feeds 6 products), 4 × 1 (pp2048 +5 % over 2 × 2, which reads the
// block's V rows twice as often), 2 × 2 or 1 × 4. Width 4 (the fallback without AVX2) one vector
// at a time. Pieces per pass are a power of two, so that they divide the head's C pieces. Every
// grouping gives the same bits: each output element is one chain of fmas over the positions in
// order, whatever else shares its pass.
template <int W, int C>
constexpr int sum_pieces(int vectors) {
  static_assert(C > 0 && (C & (C - 1)) == 0, "head sizes of 16 · 2^k (64, 128, 256)");
  const int budget = W == 16 ? 16 : W == 8 ? 6 : C;  // 16-lane sums per pass
  int cp = 1;
  while (2 * cp <= budget / vectors && 2 * cp <= C) cp *= 2;
  return cp;
}
template <int W, int C, typename E>
XTILE_LANES_INLINE void weighted_sums(int nq, const float* s, int64_t a, int64_t b, const E* vb,
                                      int64_t rs, int64_t ps, float* o, PrefetchLines& pf) {
  constexpr int hd = 16 * C;
  int v = 0;
  if constexpr (W == 16)
    for (; v + 8 <= nq; v += 8)
      weighted_sum<W, C, 8, sum_pieces<W, C>(8)>(s + v * kB + a, b - a, vb, rs, ps, o + v * hd,
                                                 a > 0, pf);
  if constexpr (W == 8)
    for (; v + 6 <= nq; v += 6)
      weighted_sum<W, C, 6, sum_pieces<W, C>(6)>(s + v * kB + a, b - a, vb, rs, ps, o + v * hd,
                                                 a > 0, pf);
  if constexpr (W >= 8) {
    for (; v + 4 <= nq; v += 4)
      weighted_sum<W, C, 4, sum_pieces<W, C>(4)>(s + v * kB + a, b - a, vb, rs, ps, o + v * hd,
                                                 a > 0, pf);
    for (; v + 2 <= nq; v += 2)
      weighted_sum<W, C, 2, sum_pieces<W, C>(2)>(s + v * kB + a, b - a, vb, rs, ps, o + v * hd,
                                                 a > 0, pf);
  }
  for (; v < nq; ++v)
    weighted_sum<W, C, 1, sum_pieces<W, C>(1)>(s + v * kB + a, b - a, vb, rs, ps, o + v * hd, a > 0,
                                               pf);
}

// The passes over a piece's rows that weighted_sums makes for nq vectors.
template <int W, int C>
constexpr int64_t weighted_passes(int nq) {
  int64_t passes = 0;
  int v = 0;
  if constexpr (W == 16)
    for (; v + 8 <= nq; v += 8) passes += C / sum_pieces<W, C>(8);
  if constexpr (W == 8)
    for (; v + 6 <= nq; v += 6) passes += C / sum_pieces<W, C>(6);
  if constexpr (W >= 8) {
    for (; v + 4 <= nq; v += 4) passes += C / sum_pieces<W, C>(4);
    for (; v + 2 <= nq; v += 2) passes += C / sum_pieces<W, C>(2);
  }
  for (; v < nq; ++v) passes += C / sum_pieces<W, C>(1);
  return passes;
}

// One block for nq vectors: scores, softmax (per vector's extent), weighted sums into o
// (nq × hd), m and l per vector. ext[v] = 0: the vector skips the block (its outputs unused).
// E: K's element read in place (uint16_t: fp16; KvBf16) or float (f32, or converted; a q8_0 K
// is scored by src.score_q8 whatever E says); EV, V's: the same as K's, or KvQ8 (a q8_0 V read
// in place; K then fp16 in place or a q8_0 K).
template <int W, int C, typename E = float, typename EV = E>
XTILE_LANES_INLINE void block(int nq, const float* const* q, const int64_t* ext,
                              const BlockSource& src, float scale, float* s, float* o, float* m,
                              float* l) {
  constexpr int hd = 16 * C;
  constexpr bool k_in_place = !std::is_same_v<E, float>;
  constexpr bool v_q8_in_place = std::is_same_v<EV, KvQ8>;
  static_assert(std::is_same_v<EV, E> || (v_q8_in_place && std::is_same_v<E, uint16_t>),
                "V read as K is, or a q8_0 V in place beside an fp16 K in place");
  int64_t n = 0;
  for (int v = 0; v < nq; ++v) n = std::max(n, ext[v]);
  // One call site each for the scores and the sums (every one is a large inlined tile): the
  // whole block in one step when the cache is f32, else a piece per step (converted, or fp16
  // read in place and converted as it is loaded).
  // While a piece is computed, the next piece is requested (PrefetchLines): the K pieces in
  // order, then the first V piece, then the V pieces in order.
  // A q8_0 K is read in place by the integer scorer (in pieces where there is a next piece to
  // request, i.e. from memory in split mode; prompt mode's K is in the caches).
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const bool whole_k = src.k || (src.kq8 && !src.k_raw);
  const int64_t k_step = whole_k ? chunks : kPiece / kChunk;
  // V in rows: AVX2 sums in 8 passes per 4 vectors (weighted_sums), over 64 rows at a time (32
  // KiB of f32 V for a 128-wide head) so that each pass finds them in L1 (pp4096 +2-7 %);
  // AVX-512's 4 passes per 8 vectors measured no gain from it. V stored piece by piece (prompt
  // mode, F32Kv): each pass reads its own sequential stream, the whole block at once (8-wide
  // prompt attention +3-5 % over 64 rows at a time).
  // V's strides (BlockSource; 0: rows, as a converted piece and fp16 in place are).
  const int64_t rs = v_q8_in_place ? src.v_row_bytes : src.v_row_floats ? src.v_row_floats : hd;
  const int64_t ps = src.v_piece_floats;
  const int64_t v_step = src.v && (W == 16 || rs != hd) ? n : kPiece;
  const int ch = score_chunks_for(W, std::min(nq, kTileVectors<W>));
  for (int64_t c0 = 0; c0 < chunks; c0 += k_step) {
    const int64_t cc = std::min(k_step, chunks - c0);
    PrefetchLines pf;
    if (c0 + k_step < chunks)
      pf = k_piece_lines(src, src.p0 + (c0 + k_step) * kChunk,
                         std::min(k_step, chunks - c0 - k_step));
    else
      pf = v_piece_lines(src, src.p0, std::min(n, v_step));
    if (src.kq8) {
      src.score_q8(nq, src.qq, src.kq8 + c0 * (C / 2) * kKq8BlockBytes, cc, C / 2, scale,
                   s + c0 * kChunk, pf);
      continue;
    }
    const E* kc;
    if constexpr (k_in_place)
      kc = reinterpret_cast<const E*>(src.k_raw) + c0 * hd * kChunk;
    else
      kc = src.k ? src.k + c0 * hd * kChunk : src.convert_k(src, src.p0 + c0 * kChunk, cc);
    spread(pf, (cc / ch + cc % ch) * hd);
    scores_any<W, C>(nq, q, kc, cc, scale, s + c0 * kChunk, pf);
  }
  for (int v = 0; v < nq; ++v) {
    if (ext[v] > 0) {
      block_softmax<W>(s + v * kB, ext[v], m + v, l + v);
      std::fill(s + v * kB + ext[v], s + v * kB + n, 0.0f);  // weights past its extent
    } else {
      std::fill(s + v * kB, s + v * kB + n, 0.0f);
    }
  }
  for (int64_t a = 0; a < n; a += v_step) {
    const int64_t b = std::min(n, a + v_step);
    const EV* vb;
    if constexpr (v_q8_in_place)
      vb = reinterpret_cast<const KvQ8*>(src.v_raw) + a * rs;
    else if constexpr (k_in_place)
      vb = reinterpret_cast<const EV*>(src.v_raw) + a * hd;
    else
      vb = src.v ? src.v + a * rs : src.convert_v(src, src.p0 + a, b - a);
    PrefetchLines pf;
    if (b < n) {
      pf = v_piece_lines(src, src.p0 + b, std::min(n - b, v_step));
    } else if (src.next_raw) {
      pf.next = src.next_raw;
      pf.end = src.next_raw + src.next_bytes;
    }
    spread(pf, weighted_passes<W, C>(nq) * (b - a));
    weighted_sums<W, C>(nq, s, a, b, vb, rs, ps, o, pf);
  }
}

// O, L, M of one vector combined with a block's (o, l, m), in attention.h's order.
template <int W, int C>
XTILE_LANES_INLINE void combine(Running& run, float* acc, float m, float l, const float* o) {
  using V = lanes::F16<W>;
  if (!run.started) {
    run = {m, l, true};
    std::memcpy(acc, o, sizeof(float) * 16 * C);
    return;
  }
  const float mm = m > run.m ? m : run.m;
  const float a = exp1(run.m - mm), b = exp1(m - mm);
  run.l = run.l * a + l * b;
  run.m = mm;
  const V va = lanes::splat<W>(a), vb = lanes::splat<W>(b);
  for (int c = 0; c < C; ++c)
    lanes::store(acc + 16 * c, lanes::load<W>(acc + 16 * c) * va + lanes::load<W>(o + 16 * c) * vb);
}

template <int W, int C>
XTILE_LANES_INLINE void finish(const Running& run, const float* acc, float* out) {
  using V = lanes::F16<W>;
  const V vl = lanes::splat<W>(run.l);
  for (int c = 0; c < C; ++c) lanes::store(out + 16 * c, lanes::load<W>(acc + 16 * c) / vl);
}

// Prompt mode: every block of a group of n_tiles tiles (at most kGroupVectors vectors), block by
// block: each tile takes block c in turn, combined into its vectors' running state as it goes;
// out written. Each vector still sees its blocks in ascending order, so the bits are a lone
// tile's. Why groups: a tile reads every block up to its last position (K and V of a 128-wide
// head as f32: 256 KiB per block, 4 MiB per head at 4096 positions, beyond L2), and tile by
// tile every tile streamed them from L3 at 4 FLOP per byte; a group reads a block from there
// once and its other tiles find it in L2 (attention alone, `xtile_attention_bench`, 16 wide:
// +11 %). Slices of a block shared by the tiles while in L1 (24 KiB of K, 16 KiB of V) were
// measured too: 2-4 % slower than whole blocks from L2 (the sums resumed more often).
template <int W, int C>
XTILE_LANES_INLINE void tiles_all_blocks(const AttentionShape& sh, const TileVectors* tvs,
                                         int n_tiles, const int64_t* pos, const F32Kv& kv,
                                         int64_t g, float* out, int64_t ldo, float* work) {
  constexpr int hd = 16 * C;
  constexpr int R = kTileVectors<W>;
  constexpr int kMaxTiles = kGroupVectors / R;
  float* s = work;          // R × kB
  float* o = s + 8 * kB;    // R × hd
  float* acc = o + 8 * hd;  // kGroupVectors × hd: tile t's vector v at (t · R + v) · hd
  Running run[kMaxTiles][R];
  int64_t last[kMaxTiles];
  int64_t group_last = 0;
  for (int t = 0; t < n_tiles; ++t) {
    last[t] = 0;
    for (int v = 0; v < tvs[t].n; ++v) last[t] = std::max(last[t], pos[tvs[t].row[v]]);
    group_last = std::max(group_last, last[t]);
  }
  for (int64_t c = 0; c * kB <= group_last; ++c) {
    for (int t = 0; t < n_tiles; ++t) {
      if (c * kB > last[t]) continue;
      const TileVectors& tv = tvs[t];
      int64_t ext[8];
      for (int v = 0; v < tv.n; ++v)
        ext[v] = std::clamp<int64_t>(pos[tv.row[v]] + 1 - c * kB, 0, kB);
      BlockSource src;
      if (kv.kq8) {
        src.kq8 = kv.kq8_block(g, c);
        src.qq = tv.qq;
        src.score_q8 = kv.score_q8;
      } else {
        src.k = kv.k_block(g, c);
      }
      src.v = kv.v_block(g, c);
      src.v_row_floats = kv.v_row_floats();
      src.v_piece_floats = kv.v_piece_floats();
      float m[8], l[8];
      block<W, C>(tv.n, tv.q, ext, src, sh.scale, s, o, m, l);
      for (int v = 0; v < tv.n; ++v)
        if (ext[v] > 0) combine<W, C>(run[t][v], acc + (t * R + v) * hd, m[v], l[v], o + v * hd);
    }
  }
  for (int t = 0; t < n_tiles; ++t)
    for (int v = 0; v < tvs[t].n; ++v)
      finish<W, C>(run[t][v], acc + (t * R + v) * hd,
                   out + tvs[t].row[v] * ldo + tvs[t].head[v] * hd);
}

// Split mode, phase 1: one block for the tile's vectors; (m, l, o) of each into slots.
template <int W, int C, typename E = float, typename EV = E>
XTILE_LANES_INLINE void tile_one_block(const AttentionShape& sh, const TileVectors& tv,
                                       const int64_t* pos, const BlockSource& src, int64_t c,
                                       float* const* slots, float* work) {
  constexpr int hd = 16 * C;
  float* s = work;
  float* o = s + 8 * kB;
  float m[8], l[8];
  int64_t ext[8];
  for (int v = 0; v < tv.n; ++v) ext[v] = std::clamp<int64_t>(pos[tv.row[v]] + 1 - c * kB, 0, kB);
  block<W, C, E, EV>(tv.n, tv.q, ext, src, sh.scale, s, o, m, l);
  for (int v = 0; v < tv.n; ++v) {
    slots[v][0] = m[v];
    slots[v][1] = l[v];
    std::memcpy(slots[v] + 2, o + v * hd, sizeof(float) * hd);
  }
}

// Split mode, phase 2: the blocks' slots of one vector combined in ascending order; out written.
template <int W, int C>
XTILE_LANES_INLINE void combine_slots(const float* slots, int64_t n_blocks, int64_t slot_stride,
                                      float* acc, float* out) {
  Running run;
  for (int64_t c = 0; c < n_blocks; ++c) {
    const float* sl = slots + c * slot_stride;
    combine<W, C>(run, acc, sl[0], sl[1], sl + 2);
  }
  finish<W, C>(run, acc, out);
}

}  // namespace
}  // namespace xtile::ops::attention_tiles
