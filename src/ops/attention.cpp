#include "ops/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>

#include "base/error.h"
#include "base/fp16.h"
#include "ops/lanes16.h"
#include "ops/ops.h"
#include "quant/quant.h"

namespace xtile::ops {

int64_t kv_row_bytes(KvElem elem, int64_t head_dim) {
  switch (elem) {
    case KvElem::f32: return 4 * head_dim;
    case KvElem::f16:
    case KvElem::bf16: return 2 * head_dim;
    case KvElem::q8_0: return head_dim / kQK * static_cast<int64_t>(sizeof(BlockQ8_0));
  }
  return 0;
}

namespace {

// Element `index` of an f32/f16/bf16 buffer.
float plain_value(const void* base, KvElem elem, int64_t index) {
  switch (elem) {
    case KvElem::f32: return static_cast<const float*>(base)[index];
    case KvElem::f16: return fp16_to_fp32(static_cast<const uint16_t*>(base)[index]);
    case KvElem::bf16: return bf16_to_fp32(static_cast<const uint16_t*>(base)[index]);
    case KvElem::q8_0: break;
  }
  fail("attention: a q8_0 cache has no element index");
}

// Element i of a q8_0 row at byte offset `row`: fp32(d) · q, dequantize_row_q8_0's product.
float q8_value(const void* base, int64_t row, int64_t i) {
  const auto* b = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(base) + row) + i / kQK;
  return fp16_to_fp32(b->d) * static_cast<float>(b->qs[i % kQK]);
}

}  // namespace

float kv_k_value(const KvLayerView& kv, int64_t g, int64_t p, int64_t i) {
  if (kv.k_elem == KvElem::q8_0) {
    const uint8_t* blk = static_cast<const uint8_t*>(kv.k) + kv_kq8_block_offset(kv, g, p, i);
    uint16_t d;
    std::memcpy(&d, blk + 2 * (p % kKChunk), 2);
    const auto q = static_cast<int8_t>(blk[2 * kKChunk + kKChunk * (i % 32) + p % kKChunk]);
    return fp16_to_fp32(d) * static_cast<float>(q);
  }
  return plain_value(kv.k, kv.k_elem, kv_k_index(kv, g, p, i));
}

float kv_v_value(const KvLayerView& kv, int64_t g, int64_t p, int64_t i) {
  if (kv.v_elem == KvElem::q8_0) return q8_value(kv.v, kv_q8_row_offset(kv, g, p), i);
  return plain_value(kv.v, kv.v_elem, kv_v_index(kv, g, p, i));
}

namespace {

constexpr int64_t kB = kAttentionBlock;
constexpr int64_t kChunk = kKChunk;

// e^x of one float, the bits of lanes::exp (the same at every width).
float exp1(float x) {
  return lanes::lane(lanes::exp<4>(lanes::splat<4>(x)), 0);
}

// The running state of one query vector over blocks (M, L, O of attention.h).
struct Running {
  float m = 0, l = 0;
  bool started = false;
};

// ---- The element loop: the definition, written as plainly as possible. ----

void reference_row(const AttentionShape& s, const float* q, int64_t g, int64_t pos,
                   const KvLayerView& kv, float* out) {
  const int64_t hd = s.head_dim, n = pos + 1;
  std::vector<float> sc(static_cast<size_t>(kB)), o(static_cast<size_t>(hd)),
      acc(static_cast<size_t>(hd));
  Running run;
  for (int64_t c0 = 0; c0 < n; c0 += kB) {
    const int64_t cnt = std::min(kB, n - c0);
    float m = 0;
    for (int64_t p = 0; p < cnt; ++p) {
      float d = 0.0f;
      for (int64_t i = 0; i < hd; ++i) d = d + q[i] * kv_k_value(kv, g, c0 + p, i);
      sc[static_cast<size_t>(p)] = d * s.scale;
      if (p == 0 || sc[static_cast<size_t>(p)] > m) m = sc[static_cast<size_t>(p)];
    }
    float lane_sum[16] = {};
    for (int64_t p = 0; p < cnt; ++p) {
      const float e = exp1(sc[static_cast<size_t>(p)] - m);
      sc[static_cast<size_t>(p)] = e;
      lane_sum[p % 16] = lane_sum[p % 16] + e;
    }
    for (int j = 0; j < 8; ++j) lane_sum[j] += lane_sum[j + 8];
    for (int j = 0; j < 4; ++j) lane_sum[j] += lane_sum[j + 4];
    for (int j = 0; j < 2; ++j) lane_sum[j] += lane_sum[j + 2];
    const float l = lane_sum[0] + lane_sum[1];
    std::fill(o.begin(), o.end(), 0.0f);
    for (int64_t p = 0; p < cnt; ++p)
      for (int64_t i = 0; i < hd; ++i)
        o[static_cast<size_t>(i)] = o[static_cast<size_t>(i)] +
            sc[static_cast<size_t>(p)] * kv_v_value(kv, g, c0 + p, i);
    if (!run.started) {
      run = {m, l, true};
      acc = o;
      continue;
    }
    const float mm = m > run.m ? m : run.m;
    const float a = exp1(run.m - mm), b = exp1(m - mm);
    run.l = run.l * a + l * b;
    run.m = mm;
    for (int64_t i = 0; i < hd; ++i)
      acc[static_cast<size_t>(i)] = acc[static_cast<size_t>(i)] * a + o[static_cast<size_t>(i)] * b;
  }
  for (int64_t i = 0; i < hd; ++i) out[i] = acc[static_cast<size_t>(i)] / run.l;
}

// ---- The vectorized kernels, on f32 K/V in the cache layout. ----
//
// A tile is up to R query vectors (rows × heads of one kv head) that share every K and V load.
// Per block: the scores of all of them (R 16-lane accumulators, one K chunk load feeding R
// products: 16 positions per step), the softmax per vector, then the weighted sum of V (H
// vectors at a time sharing each V load), combined into the running state.
// Register budget: scores R + 2 (AVX-512: R = 8; a 16-lane value is 2 ymm on AVX2 and 4 xmm below,
// so R = 4 there); weighted sum H·CP + 2 (H vectors × CP 16-dimension pieces; weighted_sums).

// The cache lines of the next piece of a converted cache (BlockSource), requested a few per step
// of the arithmetic on the current piece. The conversion itself reads at the memory's speed, but
// without this nothing is read while the scores and sums of a piece are computed: perf at depth
// 4096 showed the conversion and the arithmetic one after the other, never overlapped. Into L2
// (the next piece, 16 KiB of fp16 K for a 128-wide head, would evict the current one from L1).
struct PrefetchLines {
  const char* next = nullptr;
  const char* end = nullptr;
  int per_step = 0;
  XTILE_LANES_INLINE void step() {
    for (int k = 0; k < per_step && next < end; ++k, next += 64) __builtin_prefetch(next, 0, 2);
  }
};

template <int W>
constexpr int kTileVectors = W == 16 ? 8 : 4;

// Chunks scored together (CH) for NQ query vectors at width W. Each lane's sum is a chain of
// dependent adds over the head's dimensions, so NQ·CH accumulators is the number of chains in
// flight: generation (NQ = the group, often 1 or 2) would otherwise wait on the add latency, and
// every broadcast of q[v][i] would feed a single product. Register budget: NQ·CH accumulators
// + CH K values + 1 broadcast (a 16-lane value is 1 zmm, 2 ymm, 4 xmm).
constexpr int score_chunks_for(int w, int nq) {
  if (w == 16) return nq <= 2 ? 4 : nq <= 4 ? 3 : 2;
  if (w == 8) return nq == 1 ? 3 : nq == 2 ? 2 : 1;
  return 1;
}

// Scores of NQ query vectors for CH chunks of 16 positions from k (the first chunk's K):
// s[v · kB + 16 · ch + lane] = (Σ_i q_v[i] · k_p[i]) · scale. Lanes past the valid positions
// hold whatever the cache held (masked later).
template <int W, int C, int NQ, int CH>
XTILE_LANES_INLINE void score_chunks(const float* const* q, const float* k, float scale, float* s,
                                     PrefetchLines& pf) {
  using V = lanes::F16<W>;
  constexpr int hd = 16 * C;
  V acc[NQ][CH];
  for (int v = 0; v < NQ; ++v)
    for (int c = 0; c < CH; ++c) acc[v][c] = lanes::zero<W>();
#pragma GCC unroll 2
  for (int i = 0; i < hd; ++i) {
    pf.step();
    V kv[CH];
    for (int c = 0; c < CH; ++c) kv[c] = lanes::load<W>(k + (c * hd + i) * kChunk);
    for (int v = 0; v < NQ; ++v) {
      const V qv = lanes::splat<W>(q[v][i]);
      for (int c = 0; c < CH; ++c) acc[v][c] = acc[v][c] + qv * kv[c];
    }
  }
  const V vscale = lanes::splat<W>(scale);
  for (int v = 0; v < NQ; ++v)
    for (int c = 0; c < CH; ++c) lanes::store(s + v * kB + c * kChunk, acc[v][c] * vscale);
}

// Scores of NQ query vectors for `chunks` chunks of 16 positions from kc (the block's first K
// chunk), CH chunks at a time, then one at a time.
template <int W, int C, int NQ>
XTILE_LANES_INLINE void scores(const float* const* q, const float* kc, int64_t chunks, float scale,
                               float* s, PrefetchLines& pf) {
  constexpr int hd = 16 * C;
  constexpr int CH = score_chunks_for(W, NQ);
  int64_t ch = 0;
  for (; ch + CH <= chunks; ch += CH)
    score_chunks<W, C, NQ, CH>(q, kc + ch * hd * kChunk, scale, s + ch * kChunk, pf);
  for (; ch < chunks; ++ch)
    score_chunks<W, C, NQ, 1>(q, kc + ch * hd * kChunk, scale, s + ch * kChunk, pf);
}

template <int W, int C>
XTILE_LANES_INLINE void scores_any(int nq, const float* const* q, const float* kc, int64_t chunks,
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
    default: break;
  }
  if constexpr (kTileVectors<W> > 4) {
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

// o[h · hd + ...] = Σ_{p < n} w[h · kB + p] · v_p for H vectors (weights past a vector's own
// extent are 0), CP 16-dimension pieces of the head at a time (C / CP passes over the rows).
// resume: the sums continue from o (the positions before these, already summed in order:
// storing and reloading an f32 is exact, so pieces of positions give the bits of one pass).
template <int W, int C, int H, int CP>
XTILE_LANES_INLINE void weighted_sum(const float* w, int64_t n, const float* vb, float* o,
                                     bool resume, PrefetchLines& pf) {
  using V = lanes::F16<W>;
  constexpr int hd = 16 * C;
  for (int c0 = 0; c0 < C; c0 += CP) {
    V acc[H][CP];
    for (int h = 0; h < H; ++h)
      for (int c = 0; c < CP; ++c)
        acc[h][c] = resume ? lanes::load<W>(o + h * hd + 16 * (c0 + c)) : lanes::zero<W>();
    for (int64_t p = 0; p < n; ++p) {
      pf.step();
      const float* v = vb + p * hd + 16 * c0;
      V wp[H];
      for (int h = 0; h < H; ++h) wp[h] = lanes::splat<W>(w[h * kB + p]);
#pragma GCC unroll 16
      for (int c = 0; c < CP; ++c) {
        const V vc = lanes::load<W>(v + 16 * c);
        for (int h = 0; h < H; ++h) acc[h][c] = acc[h][c] + wp[h] * vc;
      }
    }
    for (int h = 0; h < H; ++h)
      for (int c = 0; c < CP; ++c) lanes::store(o + h * hd + 16 * (c0 + c), acc[h][c]);
  }
}

// Where a block's K and V come from: f32 in the cache layout (k: its first K chunk, v: its first
// V row), or, when k is null, a cache of another element type read kPiece positions at a time
// into the thread's buffers kbuf / vbuf (kPiece · head_dim floats each) by convert_k_piece /
// convert_v_piece, so that the converted values are used while they are in L1 and the reads
// of the cache overlap the arithmetic instead of preceding all of it.
struct BlockSource {
  const float* k = nullptr;
  const float* v = nullptr;
  const KvLayerView* kv = nullptr;
  int64_t g = 0;   // kv head
  int64_t p0 = 0;  // the block's first position
  float* kbuf = nullptr;
  float* vbuf = nullptr;
};
constexpr int64_t kPiece = 64;  // positions per conversion (4 K chunks)

// Each converts into its buffer and returns it.
const float* convert_k_piece(const BlockSource& src, int64_t p, int64_t chunks);
const float* convert_v_piece(const BlockSource& src, int64_t p, int64_t n);
// The cache bytes those conversions will read (per_step left 0).
PrefetchLines k_piece_lines(const BlockSource& src, int64_t p, int64_t chunks);
PrefetchLines v_piece_lines(const BlockSource& src, int64_t p, int64_t n);

// Spreads pf's lines over `steps` steps of the arithmetic.
XTILE_LANES_INLINE void spread(PrefetchLines& pf, int64_t steps) {
  const int64_t lines = (pf.end - pf.next + 63) / 64;
  pf.per_step = lines > 0 ? static_cast<int>((lines + steps - 1) / std::max<int64_t>(steps, 1)) : 0;
}

// The weighted sums of positions [a, b) of the block for nq vectors, vb holding row a. AVX-512:
// 16 accumulators, as 4 vectors × 4 pieces (so a prompt tile's 8 vectors read each V row twice,
// not 4 times), 2 × 8 or 1 × 16 for fewer vectors; narrower widths one vector at a time.
template <int W, int C>
XTILE_LANES_INLINE void weighted_sums(int nq, const float* s, int64_t a, int64_t b, const float* vb,
                                      float* o, PrefetchLines& pf) {
  constexpr int hd = 16 * C;
  int v = 0;
  if constexpr (W == 16) {
    for (; v + 4 <= nq; v += 4)
      weighted_sum<W, C, 4, (C < 4 ? C : 4)>(s + v * kB + a, b - a, vb, o + v * hd, a > 0, pf);
    for (; v + 2 <= nq; v += 2)
      weighted_sum<W, C, 2, (C < 8 ? C : 8)>(s + v * kB + a, b - a, vb, o + v * hd, a > 0, pf);
  }
  for (; v < nq; ++v) weighted_sum<W, C, 1, C>(s + v * kB + a, b - a, vb, o + v * hd, a > 0, pf);
}

// The passes over a piece's rows that weighted_sums makes for nq vectors.
template <int W, int C>
constexpr int64_t weighted_passes(int nq) {
  int64_t passes = 0;
  int v = 0;
  if constexpr (W == 16) {
    for (; v + 4 <= nq; v += 4) passes += C / (C < 4 ? C : 4);
    for (; v + 2 <= nq; v += 2) passes += C / (C < 8 ? C : 8);
  }
  return passes + (nq - v);
}

// One block for nq vectors: scores, softmax (per vector's extent), weighted sums into o
// (nq × hd), m and l per vector. ext[v] = 0: the vector skips the block (its outputs unused).
template <int W, int C>
XTILE_LANES_INLINE void block(int nq, const float* const* q, const int64_t* ext,
                              const BlockSource& src, float scale, float* s, float* o, float* m,
                              float* l) {
  constexpr int hd = 16 * C;
  int64_t n = 0;
  for (int v = 0; v < nq; ++v) n = std::max(n, ext[v]);
  // One call site each for the scores and the sums (every one is a large inlined tile): the
  // whole block in one step when the cache is f32, else a piece per step.
  // While a piece is computed, the next piece to be converted is requested (PrefetchLines):
  // the K pieces in order, then the first V piece, then the V pieces in order.
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  const int64_t k_step = src.k ? chunks : kPiece / kChunk;
  const int64_t v_step = src.v ? n : kPiece;
  const int ch = score_chunks_for(W, std::min(nq, kTileVectors<W>));
  for (int64_t c0 = 0; c0 < chunks; c0 += k_step) {
    const int64_t cc = std::min(k_step, chunks - c0);
    const float* kc =
        src.k ? src.k + c0 * hd * kChunk : convert_k_piece(src, src.p0 + c0 * kChunk, cc);
    PrefetchLines pf;
    if (c0 + k_step < chunks)
      pf = k_piece_lines(src, src.p0 + (c0 + k_step) * kChunk,
                         std::min(k_step, chunks - c0 - k_step));
    else
      pf = v_piece_lines(src, src.p0, std::min(n, v_step));
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
    const float* vb = src.v ? src.v + a * hd : convert_v_piece(src, src.p0 + a, b - a);
    PrefetchLines pf;
    if (b < n) pf = v_piece_lines(src, src.p0 + b, std::min(n - b, v_step));
    spread(pf, weighted_passes<W, C>(nq) * (b - a));
    weighted_sums<W, C>(nq, s, a, b, vb, o, pf);
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

// The f32 K/V of kv head g, block c: its first K chunk and its first V row.
struct F32Kv {
  const float* k;
  const float* v;
  int64_t capacity;
  int64_t hd;
  const float* k_block(int64_t g, int64_t c) const {
    return k + (g * (capacity / kChunk) + c * (kB / kChunk)) * hd * kChunk;
  }
  const float* v_block(int64_t g, int64_t c) const { return v + (g * capacity + c * kB) * hd; }
};

// A tile's query vectors: vector v is (row rows[v], head heads[v]).
struct TileVectors {
  int n = 0;
  const float* q[8];
  int64_t row[8];
  int64_t head[8];
};

// Prompt mode: every block of the tile's positions in order, combined as it goes; out written.
template <int W, int C>
XTILE_LANES_INLINE void tile_all_blocks(const AttentionShape& sh, const TileVectors& tv,
                                        const int64_t* pos, const F32Kv& kv, int64_t g, float* out,
                                        int64_t ldo, float* work) {
  constexpr int hd = 16 * C;
  float* s = work;                 // kTileVectors × kB
  float* o = s + 8 * kB;           // 8 × hd
  float* acc = o + 8 * hd;         // 8 × hd
  Running run[8];
  float m[8], l[8];
  int64_t last = 0;
  for (int v = 0; v < tv.n; ++v) last = std::max(last, pos[tv.row[v]]);
  for (int64_t c = 0; c * kB <= last; ++c) {
    int64_t ext[8];
    for (int v = 0; v < tv.n; ++v) ext[v] = std::clamp<int64_t>(pos[tv.row[v]] + 1 - c * kB, 0, kB);
    BlockSource src;
    src.k = kv.k_block(g, c);
    src.v = kv.v_block(g, c);
    block<W, C>(tv.n, tv.q, ext, src, sh.scale, s, o, m, l);
    for (int v = 0; v < tv.n; ++v)
      if (ext[v] > 0) combine<W, C>(run[v], acc + v * hd, m[v], l[v], o + v * hd);
  }
  for (int v = 0; v < tv.n; ++v)
    finish<W, C>(run[v], acc + v * hd, out + tv.row[v] * ldo + tv.head[v] * hd);
}

// Split mode, phase 1: one block for the tile's vectors; (m, l, o) of each into slots.
template <int W, int C>
XTILE_LANES_INLINE void tile_one_block(const AttentionShape& sh, const TileVectors& tv,
                                       const int64_t* pos, const BlockSource& src, int64_t c,
                                       float* const* slots, float* work) {
  constexpr int hd = 16 * C;
  float* s = work;
  float* o = s + 8 * kB;
  float m[8], l[8];
  int64_t ext[8];
  for (int v = 0; v < tv.n; ++v) ext[v] = std::clamp<int64_t>(pos[tv.row[v]] + 1 - c * kB, 0, kB);
  block<W, C>(tv.n, tv.q, ext, src, sh.scale, s, o, m, l);
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

// The entry points per head size, one per width (multi-versioned for `lanes`, fixed for tests).
struct LanesFns {
  void (*all_blocks)(const AttentionShape&, const TileVectors&, const int64_t*, const F32Kv&,
                     int64_t, float*, int64_t, float*) = nullptr;
  void (*one_block)(const AttentionShape&, const TileVectors&, const int64_t*, const BlockSource&,
                    int64_t, float* const*, float*) = nullptr;
  void (*combine)(const float*, int64_t, int64_t, float*, float*) = nullptr;
  int tile = 0;  // query vectors per tile
};

template <int W, int C>
void all_blocks_at(const AttentionShape& sh, const TileVectors& tv, const int64_t* pos,
                   const F32Kv& kv, int64_t g, float* out, int64_t ldo, float* work) {
  tile_all_blocks<W, C>(sh, tv, pos, kv, g, out, ldo, work);
}
template <int W, int C>
void one_block_at(const AttentionShape& sh, const TileVectors& tv, const int64_t* pos,
                  const BlockSource& src, int64_t c, float* const* slots, float* work) {
  tile_one_block<W, C>(sh, tv, pos, src, c, slots, work);
}
template <int W, int C>
void combine_at(const float* slots, int64_t n_blocks, int64_t stride, float* acc, float* out) {
  combine_slots<W, C>(slots, n_blocks, stride, acc, out);
}

template <int W>
LanesFns fns_at_width(int64_t hd) {
  switch (hd) {
#define XTILE_HD(C) \
  case 16 * C: return {all_blocks_at<W, C>, one_block_at<W, C>, combine_at<W, C>, kTileVectors<W>};
    XTILE_HD(4)
    XTILE_HD(8)
    XTILE_HD(16)
#undef XTILE_HD
    default: return {};
  }
}

// This CPU's width: the three functions multi-versioned per head size.
template <int W>
XTILE_LANES_INLINE void all_blocks_4(const AttentionShape& sh, const TileVectors& tv,
                                     const int64_t* pos, const F32Kv& kv, int64_t g, float* out,
                                     int64_t ldo, float* work) {
  tile_all_blocks<W, 4>(sh, tv, pos, kv, g, out, ldo, work);
}
template <int W>
XTILE_LANES_INLINE void all_blocks_8(const AttentionShape& sh, const TileVectors& tv,
                                     const int64_t* pos, const F32Kv& kv, int64_t g, float* out,
                                     int64_t ldo, float* work) {
  tile_all_blocks<W, 8>(sh, tv, pos, kv, g, out, ldo, work);
}
template <int W>
XTILE_LANES_INLINE void all_blocks_16(const AttentionShape& sh, const TileVectors& tv,
                                      const int64_t* pos, const F32Kv& kv, int64_t g, float* out,
                                      int64_t ldo, float* work) {
  tile_all_blocks<W, 16>(sh, tv, pos, kv, g, out, ldo, work);
}
template <int W>
XTILE_LANES_INLINE void one_block_4(const AttentionShape& sh, const TileVectors& tv,
                                    const int64_t* pos, const BlockSource& src, int64_t c,
                                    float* const* slots, float* work) {
  tile_one_block<W, 4>(sh, tv, pos, src, c, slots, work);
}
template <int W>
XTILE_LANES_INLINE void one_block_8(const AttentionShape& sh, const TileVectors& tv,
                                    const int64_t* pos, const BlockSource& src, int64_t c,
                                    float* const* slots, float* work) {
  tile_one_block<W, 8>(sh, tv, pos, src, c, slots, work);
}
template <int W>
XTILE_LANES_INLINE void one_block_16(const AttentionShape& sh, const TileVectors& tv,
                                     const int64_t* pos, const BlockSource& src, int64_t c,
                                     float* const* slots, float* work) {
  tile_one_block<W, 16>(sh, tv, pos, src, c, slots, work);
}
template <int W>
XTILE_LANES_INLINE void combine_4(const float* s, int64_t n, int64_t st, float* a, float* o) {
  combine_slots<W, 4>(s, n, st, a, o);
}
template <int W>
XTILE_LANES_INLINE void combine_8(const float* s, int64_t n, int64_t st, float* a, float* o) {
  combine_slots<W, 8>(s, n, st, a, o);
}
template <int W>
XTILE_LANES_INLINE void combine_16(const float* s, int64_t n, int64_t st, float* a, float* o) {
  combine_slots<W, 16>(s, n, st, a, o);
}

#define XTILE_ALL_PARAMS                                                                  \
  (const AttentionShape& sh, const TileVectors& tv, const int64_t* pos, const F32Kv& kv, \
   int64_t g, float* out, int64_t ldo, float* work)
#define XTILE_ALL_ARGS (sh, tv, pos, kv, g, out, ldo, work)
XTILE_LANES_VERSIONS(void, cpu_all_blocks_4, XTILE_ALL_PARAMS, all_blocks_4, XTILE_ALL_ARGS)
XTILE_LANES_VERSIONS(void, cpu_all_blocks_8, XTILE_ALL_PARAMS, all_blocks_8, XTILE_ALL_ARGS)
XTILE_LANES_VERSIONS(void, cpu_all_blocks_16, XTILE_ALL_PARAMS, all_blocks_16, XTILE_ALL_ARGS)
#undef XTILE_ALL_PARAMS
#undef XTILE_ALL_ARGS
#define XTILE_ONE_PARAMS                                                                        \
  (const AttentionShape& sh, const TileVectors& tv, const int64_t* pos, const BlockSource& src, \
   int64_t c, float* const* slots, float* work)
#define XTILE_ONE_ARGS (sh, tv, pos, src, c, slots, work)
XTILE_LANES_VERSIONS(void, cpu_one_block_4, XTILE_ONE_PARAMS, one_block_4, XTILE_ONE_ARGS)
XTILE_LANES_VERSIONS(void, cpu_one_block_8, XTILE_ONE_PARAMS, one_block_8, XTILE_ONE_ARGS)
XTILE_LANES_VERSIONS(void, cpu_one_block_16, XTILE_ONE_PARAMS, one_block_16, XTILE_ONE_ARGS)
#undef XTILE_ONE_PARAMS
#undef XTILE_ONE_ARGS
#define XTILE_CMB_PARAMS (const float* s, int64_t n, int64_t st, float* a, float* o)
#define XTILE_CMB_ARGS (s, n, st, a, o)
XTILE_LANES_VERSIONS(void, cpu_combine_4, XTILE_CMB_PARAMS, combine_4, XTILE_CMB_ARGS)
XTILE_LANES_VERSIONS(void, cpu_combine_8, XTILE_CMB_PARAMS, combine_8, XTILE_CMB_ARGS)
XTILE_LANES_VERSIONS(void, cpu_combine_16, XTILE_CMB_PARAMS, combine_16, XTILE_CMB_ARGS)
#undef XTILE_CMB_PARAMS
#undef XTILE_CMB_ARGS

// The tile width of this CPU's version (the same rule as the versions' W).
int cpu_tile_vectors() {
  static const int tile = __builtin_cpu_supports("avx512f") ? kTileVectors<16> : kTileVectors<8>;
  return tile;
}

LanesFns lanes_fns(int64_t hd, AttentionPath path) {
  switch (path) {
    case AttentionPath::lanes_w4: return fns_at_width<4>(hd);
    case AttentionPath::lanes_w8: return fns_at_width<8>(hd);
    case AttentionPath::lanes_w16: return fns_at_width<16>(hd);
    case AttentionPath::reference: return {};
    case AttentionPath::lanes: break;
  }
  switch (hd) {
    case 64: return {cpu_all_blocks_4, cpu_one_block_4, cpu_combine_4, cpu_tile_vectors()};
    case 128: return {cpu_all_blocks_8, cpu_one_block_8, cpu_combine_8, cpu_tile_vectors()};
    case 256: return {cpu_all_blocks_16, cpu_one_block_16, cpu_combine_16, cpu_tile_vectors()};
    default: return {};
  }
}

// n elements of an f32/f16/bf16 cache buffer from element `at`, as f32 (exact).
void to_f32(const void* base, KvElem elem, int64_t at, float* dst, int64_t n) {
  switch (elem) {
    case KvElem::f16: f16_to_f32_row(static_cast<const uint16_t*>(base) + at, dst, n); return;
    case KvElem::bf16: bf16_to_f32_row(static_cast<const uint16_t*>(base) + at, dst, n); return;
    case KvElem::f32:
      std::memcpy(dst, static_cast<const float*>(base) + at, sizeof(float) * static_cast<size_t>(n));
      return;
    case KvElem::q8_0: break;
  }
  fail("attention: a q8_0 cache is converted by blocks");
}

// The conversions below read the cache from memory: lines are requested 8 KiB ahead (as in
// f16c_convert.cpp), or one thread reads at a fraction of the bandwidth.
constexpr int64_t kQ8PrefetchBytes = 8192;
constexpr int64_t kQ8PrefetchBlocks = kQ8PrefetchBytes / static_cast<int64_t>(sizeof(BlockQ8_0));

// n_blocks q8_0 blocks (V rows of a head, one after another) as f32 (exact: d · q).
template <int W>
XTILE_LANES_INLINE void q8_rows_to_f32(const uint8_t* rows, int64_t n_blocks, float* dst) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    __builtin_prefetch(rows + (b + kQ8PrefetchBlocks) * static_cast<int64_t>(sizeof(BlockQ8_0)));
    const auto* blk = reinterpret_cast<const BlockQ8_0*>(rows) + b;
    const float d = fp16_to_fp32(blk->d);
    for (int j = 0; j < kQK; ++j) dst[b * kQK + j] = d * static_cast<float>(blk->qs[j]);
  }
}

// `chunks` 16-position chunks of a q8_0 K (hd / 32 blocks each, kKq8BlockBytes apart) as the f32
// chunk layout (dimension i of the chunk's positions at dst + i · 16): per block, each lane's
// scale times the int8 of its position. Exact products, so any vectorization gives these bits.
template <int W>
XTILE_LANES_INLINE void q8_chunks_to_f32(const uint8_t* src, int64_t n_blocks, float* dst) {
  for (int64_t b = 0; b < n_blocks; ++b) {
    const uint8_t* blk = src + b * kKq8BlockBytes;
    for (int64_t line = 0; line < kKq8BlockBytes; line += 64)
      __builtin_prefetch(blk + kQ8PrefetchBytes + line);
    float d[kChunk];
    f16_to_f32_row(reinterpret_cast<const uint16_t*>(blk), d, kChunk);
    const auto* q = reinterpret_cast<const int8_t*>(blk + 2 * kChunk);
    float* out = dst + b * 32 * kChunk;
    for (int i = 0; i < 32; ++i)
      for (int j = 0; j < kChunk; ++j) out[i * kChunk + j] = d[j] * static_cast<float>(q[i * kChunk + j]);
  }
}

// Multi-versioned so that each CPU's compiler vectorization applies (the loops above are plain:
// GCC 12 turns them into sign extensions and VCVTDQ2PS, but converts a vector of int8 written
// with its vector extensions one element at a time).
XTILE_LANES_VERSIONS(void, cpu_q8_rows_to_f32, (const uint8_t* rows, int64_t n_blocks, float* dst),
                     q8_rows_to_f32, (rows, n_blocks, dst))
XTILE_LANES_VERSIONS(void, cpu_q8_chunks_to_f32, (const uint8_t* src, int64_t n_blocks, float* dst),
                     q8_chunks_to_f32, (src, n_blocks, dst))

// `chunks` K chunks of kv head g from position p0 (a multiple of 16) to f32, in the chunk layout.
void convert_k(const KvLayerView& kv, int64_t g, int64_t p0, int64_t chunks, float* dst) {
  const int64_t hd = kv.head_dim;
  if (kv.k_elem == KvElem::q8_0)
    cpu_q8_chunks_to_f32(static_cast<const uint8_t*>(kv.k) + kv_kq8_block_offset(kv, g, p0, 0),
                         chunks * (hd / 32), dst);
  else
    to_f32(kv.k, kv.k_elem, kv_k_index(kv, g, p0, 0), dst, chunks * hd * kChunk);
}

// V rows [p0, p0 + n) of kv head g to f32, row after row.
void convert_v(const KvLayerView& kv, int64_t g, int64_t p0, int64_t n, float* dst) {
  if (kv.v_elem == KvElem::q8_0)
    cpu_q8_rows_to_f32(static_cast<const uint8_t*>(kv.v) + kv_q8_row_offset(kv, g, p0),
                       n * (kv.head_dim / 32), dst);
  else
    to_f32(kv.v, kv.v_elem, kv_v_index(kv, g, p0, 0), dst, n * kv.head_dim);
}

const float* convert_k_piece(const BlockSource& src, int64_t p, int64_t chunks) {
  convert_k(*src.kv, src.g, p, chunks, src.kbuf);
  return src.kbuf;
}
const float* convert_v_piece(const BlockSource& src, int64_t p, int64_t n) {
  convert_v(*src.kv, src.g, p, n, src.vbuf);
  return src.vbuf;
}

PrefetchLines k_piece_lines(const BlockSource& src, int64_t p, int64_t chunks) {
  PrefetchLines pf;
  if (src.k) return pf;  // read in place, nothing converted
  const KvLayerView& kv = *src.kv;
  const auto* base = static_cast<const char*>(kv.k);
  if (kv.k_elem == KvElem::q8_0) {
    pf.next = base + kv_kq8_block_offset(kv, src.g, p, 0);
    pf.end = pf.next + chunks * (kv.head_dim / 32) * kKq8BlockBytes;
  } else {
    const int64_t size = kv.k_elem == KvElem::f32 ? 4 : 2;
    pf.next = base + kv_k_index(kv, src.g, p, 0) * size;
    pf.end = pf.next + chunks * kChunk * kv.head_dim * size;
  }
  return pf;
}

PrefetchLines v_piece_lines(const BlockSource& src, int64_t p, int64_t n) {
  PrefetchLines pf;
  if (src.v) return pf;
  const KvLayerView& kv = *src.kv;
  const auto* base = static_cast<const char*>(kv.v);
  if (kv.v_elem == KvElem::q8_0) {
    pf.next = base + kv_q8_row_offset(kv, src.g, p);
  } else {
    pf.next = base + kv_v_index(kv, src.g, p, 0) * (kv.v_elem == KvElem::f32 ? 4 : 2);
  }
  pf.end = pf.next + n * kv_row_bytes(kv.v_elem, kv.head_dim);
  return pf;
}

// Converts positions [p0, p1) of kv head g (p0 a multiple of 16) to f32 in the same layout, as
// head g of a buffer of capacity dst_cap.
void convert_range(const KvLayerView& kv, int64_t g, int64_t p0, int64_t p1, float* dst_k,
                   float* dst_v, int64_t dst_cap) {
  const int64_t hd = kv.head_dim;
  convert_k(kv, g, p0, (p1 - p0 + kChunk - 1) / kChunk,
            dst_k + ((g * (dst_cap / kChunk)) + p0 / kChunk) * hd * kChunk);
  convert_v(kv, g, p0, p1 - p0, dst_v + (g * dst_cap + p0) * hd);
}

// Below ~64K element operations in all (~20 µs), waking the workers costs more than it saves.
constexpr int64_t kMinParallelOps = 65536;

void run_items(ThreadPool& pool, int64_t n_items, int64_t total_ops,
               const std::function<void(int64_t, int)>& item) {
  std::atomic<int64_t> next{0};
  auto work = [&](int thread) {
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n_items;) item(i, thread);
  };
  if (pool.size() == 1 || total_ops < kMinParallelOps)
    work(0);
  else
    pool.run([&](int thread, int) { work(thread); });
}

}  // namespace

void attention(ThreadPool& pool, const AttentionShape& shape, const float* q, int64_t ldq,
               const int64_t* pos, int64_t rows, const KvLayerView& kv, float* out, int64_t ldo,
               std::vector<float>& scratch, AttentionPath path) {
  if (shape.n_head_kv <= 0 || shape.n_head % shape.n_head_kv != 0)
    fail("attention: ", shape.n_head, " query heads cannot share ", shape.n_head_kv,
         " KV heads evenly");
  if (kv.n_head_kv != shape.n_head_kv || kv.head_dim != shape.head_dim)
    fail("attention: the cache holds ", kv.n_head_kv, " heads of ", kv.head_dim, ", the model ",
         shape.n_head_kv, " of ", shape.head_dim);
  if (rows == 0) return;
  const int64_t group = shape.n_head / shape.n_head_kv;
  const int64_t hd = shape.head_dim;
  const int64_t n_kv = shape.n_head_kv;
  const int64_t max_pos = *std::max_element(pos, pos + rows);
  const LanesFns fns = lanes_fns(hd, path);

  if (!fns.all_blocks) {  // the element loop: one item per (row, kv head)
    run_items(pool, rows * n_kv, 4 * rows * shape.n_head * (max_pos + 1) * hd,
              [&](int64_t i, int) {
                const int64_t row = i / n_kv, g = i % n_kv;
                for (int64_t j = 0; j < group; ++j) {
                  const int64_t h = g * group + j;
                  reference_row(shape, q + row * ldq + h * hd, g, pos[row], kv,
                                out + row * ldo + h * hd);
                }
              });
    return;
  }

  // Query vectors of kv head g in tiles of fns.tile: (row, head j of the group), row-major, so a
  // tile's rows are neighbours (a batch's rows come in ascending positions).
  const int64_t per_g = rows * group;
  const int64_t tiles_per_g = (per_g + fns.tile - 1) / fns.tile;
  auto tile_vectors = [&](int64_t g, int64_t t) {
    TileVectors tv;
    for (int64_t x = t * fns.tile; x < std::min(per_g, (t + 1) * fns.tile); ++x) {
      const int64_t row = x / group, h = g * group + x % group;
      tv.q[tv.n] = q + row * ldq + h * hd;
      tv.row[tv.n] = row;
      tv.head[tv.n] = h;
      ++tv.n;
    }
    return tv;
  };
  const int64_t work_floats = 8 * kB + 16 * hd;  // scores, block sums, running sums
  const int64_t n_blocks_max = max_pos / kB + 1;

  // Split mode: few rows (generation): items (tile, kv head, block) so that a long context
  // spreads over every thread, then one combine per vector in ascending block order.
  const bool split = rows <= 4 || n_kv * tiles_per_g < 2 * static_cast<int64_t>(pool.size());
  if (split) {
    const int64_t slot = 2 + hd;
    const int64_t slot_floats = per_g * n_kv * n_blocks_max * slot;
    const int64_t conv_floats = 2 * kPiece * hd;  // a piece of K and of V as f32, per thread
    const bool f32 = kv.k_elem == KvElem::f32 && kv.v_elem == KvElem::f32;
    const int64_t per_thread = work_floats + (f32 ? 0 : conv_floats);
    const size_t need = static_cast<size_t>(slot_floats + per_thread * pool.size());
    if (scratch.size() < need) scratch.resize(need);
    float* slots = scratch.data();
    // Vector x of kv head g, block c: slots + ((g · per_g + x) · n_blocks_max + c) · slot.
    const int64_t n_items = n_kv * tiles_per_g * n_blocks_max;
    run_items(pool, n_items, 4 * per_g * (max_pos + 1) * hd * n_kv, [&](int64_t i, int thread) {
      const int64_t c = i % n_blocks_max, t = (i / n_blocks_max) % tiles_per_g,
                    g = i / (n_blocks_max * tiles_per_g);
      TileVectors tv = tile_vectors(g, t);
      int64_t last = 0;
      for (int v = 0; v < tv.n; ++v) last = std::max(last, pos[tv.row[v]]);
      if (c * kB > last) return;
      float* work = scratch.data() + slot_floats + thread * per_thread;
      // f32 K / V read in place; any other type converted a piece at a time into the thread's
      // buffers (BlockSource).
      const F32Kv f{static_cast<const float*>(kv.k), static_cast<const float*>(kv.v), kv.capacity,
                    hd};
      BlockSource src;
      src.kv = &kv;
      src.g = g;
      src.p0 = c * kB;
      src.kbuf = work + work_floats;
      src.vbuf = src.kbuf + kPiece * hd;
      if (kv.k_elem == KvElem::f32) src.k = f.k_block(g, c);
      if (kv.v_elem == KvElem::f32) src.v = f.v_block(g, c);
      float* vslots[8];
      for (int v = 0; v < tv.n; ++v) {
        const int64_t x = t * fns.tile + v;
        vslots[v] = slots + ((g * per_g + x) * n_blocks_max + c) * slot;
      }
      fns.one_block(shape, tv, pos, src, c, vslots, work);
    });
    // Phase 2: per vector, its blocks in order.
    run_items(pool, n_kv * per_g, 8 * n_kv * per_g * n_blocks_max * hd, [&](int64_t i, int thread) {
      const int64_t g = i / per_g, x = i % per_g;
      const int64_t row = x / group, h = g * group + x % group;
      float* acc = scratch.data() + slot_floats + thread * per_thread;
      fns.combine(slots + (g * per_g + x) * n_blocks_max * slot, pos[row] / kB + 1, slot, acc,
                  out + row * ldo + h * hd);
    });
    return;
  }

  // Prompt mode: the cache converted to f32 once (every block is read by many tiles), then items
  // (kv head, tile), each all its blocks in order, longest first.
  const int64_t cap = (max_pos + 1 + kChunk - 1) / kChunk * kChunk;
  const bool f32 = kv.k_elem == KvElem::f32 && kv.v_elem == KvElem::f32;
  const int64_t conv = f32 ? 0 : 2 * n_kv * cap * hd;
  const size_t need = static_cast<size_t>(conv + work_floats * pool.size());
  if (scratch.size() < need) scratch.resize(need);
  F32Kv f{static_cast<const float*>(kv.k), static_cast<const float*>(kv.v), kv.capacity, hd};
  if (conv) {
    float* ck = scratch.data();
    float* cv = ck + n_kv * cap * hd;
    const int64_t chunks = cap / kChunk;
    pool.parallel_for(0, n_kv * chunks, row_grain(4 * kChunk * hd), [&](int64_t a, int64_t b, int) {
      for (int64_t i = a; i < b; ++i) {
        const int64_t g = i / chunks, p0 = (i % chunks) * kChunk;
        convert_range(kv, g, p0, std::min(p0 + kChunk, kv.capacity), ck, cv, cap);
      }
    });
    f = {ck, cv, cap, hd};
  }
  run_items(pool, n_kv * tiles_per_g, 4 * per_g * (max_pos + 1) * hd * n_kv,
            [&](int64_t i, int thread) {
              const int64_t g = i / tiles_per_g, t = tiles_per_g - 1 - i % tiles_per_g;
              float* work = scratch.data() + conv + thread * work_floats;
              fns.all_blocks(shape, tile_vectors(g, t), pos, f, g, out, ldo, work);
            });
}

}  // namespace xtile::ops
