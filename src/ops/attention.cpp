#include "ops/attention.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <tuple>
#include <utility>

#include "base/error.h"
#include "base/fp16.h"
#include "cpu/cpu_caps.h"
#include "kernels/attention_isa.h"
#include "ops/attention_tiles.h"
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

// Element `index` of an f32/f16/bf16 buffer. (Inlined into the element loop's two builds below.)
XTILE_LANES_INLINE float plain_value(const void* base, KvElem elem, int64_t index) {
  switch (elem) {
    case KvElem::f32: return static_cast<const float*>(base)[index];
    case KvElem::f16: return fp16_to_fp32(static_cast<const uint16_t*>(base)[index]);
    case KvElem::bf16: return bf16_to_fp32(static_cast<const uint16_t*>(base)[index]);
    case KvElem::q8_0: break;
  }
  fail("attention: a q8_0 cache has no element index");
}

// Element i of a q8_0 row at byte offset `row`: fp32(d) · q, dequantize_row_q8_0's product.
XTILE_LANES_INLINE float q8_value(const void* base, int64_t row, int64_t i) {
  const auto* b = reinterpret_cast<const BlockQ8_0*>(static_cast<const uint8_t*>(base) + row) + i / kQK;
  return fp16_to_fp32(b->d) * static_cast<float>(b->qs[i % kQK]);
}

// A q8_0 K's int8 q and fp32 scale of (g, p, i) / of p's block holding i.
int32_t kq8_q(const KvLayerView& kv, int64_t g, int64_t p, int64_t i) {
  const uint8_t* blk = static_cast<const uint8_t*>(kv.k) + kv_kq8_block_offset(kv, g, p, i);
  return static_cast<int32_t>(blk[kv_kq8_index(p, i)]) - 128;
}
float kq8_d(const KvLayerView& kv, int64_t g, int64_t p, int64_t i) {
  const uint8_t* blk = static_cast<const uint8_t*>(kv.k) + kv_kq8_block_offset(kv, g, p, i);
  uint16_t d;
  std::memcpy(&d, blk + kv_kq8_scale_index(p), 2);
  return fp16_to_fp32(d);
}

}  // namespace

float kv_k_value(const KvLayerView& kv, int64_t g, int64_t p, int64_t i) {
  if (kv.k_elem == KvElem::q8_0) return kq8_d(kv, g, p, i) * static_cast<float>(kq8_q(kv, g, p, i));
  return plain_value(kv.k, kv.k_elem, kv_k_index(kv, g, p, i));
}

float kv_v_value(const KvLayerView& kv, int64_t g, int64_t p, int64_t i) {
  if (kv.v_elem == KvElem::q8_0) return q8_value(kv.v, kv_q8_row_offset(kv, g, p), i);
  return plain_value(kv.v, kv.v_elem, kv_v_index(kv, g, p, i));
}

using namespace attention_tiles;

namespace {
// ---- The element loop: the definition, written as plainly as possible. ----

// q · k_p of attention.h: float products over the dimensions, or for a q8_0 K the integer sums
// per 32 dimensions of the quantized query (qq: quantize_row_q8_0 of q) and K's q.
XTILE_LANES_INLINE float reference_dot(const float* q, const BlockQ8_0* qq, int64_t hd,
                                       const KvLayerView& kv, int64_t g, int64_t p) {
  float d = 0.0f;
  if (kv.k_elem != KvElem::q8_0) {
    const int64_t at = kv_k_index(kv, g, p, 0);  // dimension i at at + 16 · i (transposed chunks)
    for (int64_t i = 0; i < hd; ++i)
      d = std::fma(q[i], plain_value(kv.k, kv.k_elem, at + kKChunk * i), d);
    return d;
  }
  for (int64_t b = 0; b < hd / kQK; ++b) {
    int32_t isum = 0;
    for (int64_t i = 32 * b; i < 32 * b + 32; ++i) isum += qq[b].qs[i % kQK] * kq8_q(kv, g, p, i);
    d = std::fma(static_cast<float>(isum), kq8_d(kv, g, p, 32 * b) * fp16_to_fp32(qq[b].d), d);
  }
  return d;
}

// o[i] = fma(e, v_p[i], o[i]) for every dimension i.
XTILE_LANES_INLINE void reference_accumulate(float e, const KvLayerView& kv, int64_t g, int64_t p,
                                             int64_t hd, float* o) {
  if (kv.v_elem == KvElem::q8_0) {
    const int64_t row = kv_q8_row_offset(kv, g, p);
    for (int64_t i = 0; i < hd; ++i) o[i] = std::fma(e, q8_value(kv.v, row, i), o[i]);
    return;
  }
  const int64_t at = kv_v_index(kv, g, p, 0);  // a position's dimensions are contiguous
  for (int64_t i = 0; i < hd; ++i) o[i] = std::fma(e, plain_value(kv.v, kv.v_elem, at + i), o[i]);
}

// x[p] = e^x[p] for p < n by lanes::exp, 16 positions per call: each lane is computed alone (at
// any width W), so these are exp1's bits, at a sixteenth of the calls (exp1 keeps one of 16).
template <int W>
XTILE_LANES_INLINE void exp_in_place(float* x, int64_t n) {
  for (int64_t p0 = 0; p0 < n; p0 += 16) {
    const int64_t k = std::min<int64_t>(16, n - p0);
    float lanes16[16] = {};
    std::copy(x + p0, x + p0 + k, lanes16);
    lanes::store(lanes16, lanes::exp<W>(lanes::load<W>(lanes16)));
    std::copy(lanes16, lanes16 + k, x + p0);
  }
}

template <int W>
XTILE_LANES_INLINE void reference_row_at(const AttentionShape& s, const float* q, int64_t g,
                                         int64_t pos, const KvLayerView& kv, float* out) {
  const int64_t hd = s.head_dim, n = pos + 1;
  std::vector<float> sc(static_cast<size_t>(kB)), o(static_cast<size_t>(hd)),
      acc(static_cast<size_t>(hd));
  std::vector<BlockQ8_0> qq;
  if (kv.k_elem == KvElem::q8_0) {
    qq.resize(static_cast<size_t>(hd / kQK));
    quantize_row_q8_0(q, qq.data(), hd);
  }
  Running run;
  for (int64_t c0 = 0; c0 < n; c0 += kB) {
    const int64_t cnt = std::min(kB, n - c0);
    float m = 0;
    for (int64_t p = 0; p < cnt; ++p) {
      sc[static_cast<size_t>(p)] = reference_dot(q, qq.data(), hd, kv, g, c0 + p) * s.scale;
      if (p == 0 || sc[static_cast<size_t>(p)] > m) m = sc[static_cast<size_t>(p)];
    }
    for (int64_t p = 0; p < cnt; ++p) sc[static_cast<size_t>(p)] -= m;
    exp_in_place<W>(sc.data(), cnt);
    float lane_sum[16] = {};
    for (int64_t p = 0; p < cnt; ++p)
      lane_sum[p % 16] = lane_sum[p % 16] + sc[static_cast<size_t>(p)];
    for (int j = 0; j < 8; ++j) lane_sum[j] += lane_sum[j + 8];
    for (int j = 0; j < 4; ++j) lane_sum[j] += lane_sum[j + 4];
    for (int j = 0; j < 2; ++j) lane_sum[j] += lane_sum[j + 2];
    const float l = lane_sum[0] + lane_sum[1];
    std::fill(o.begin(), o.end(), 0.0f);
    for (int64_t p = 0; p < cnt; ++p)
      reference_accumulate(sc[static_cast<size_t>(p)], kv, g, c0 + p, hd, o.data());
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

// The element loop compiled per vector width (XTILE_LANES_VERSIONS), the loader picking one: the
// AVX2 and AVX-512 versions have FMA, so each std::fma is one instruction; in the baseline build
// (x86-64 has no FMA) it is a call into libm, which took a third of the loop's time (a server
// test on the fixture whose 8-dimension heads no vector kernel takes: perf). Every version rounds
// each fused product once, and W is only the exponentials' vector width: the same bits.
#define XTILE_REF_PARAMS                                                                   \
  (const AttentionShape& s, const float* q, int64_t g, int64_t pos, const KvLayerView& kv, \
   float* out)
#define XTILE_REF_ARGS (s, q, g, pos, kv, out)
XTILE_LANES_VERSIONS(void, reference_row, XTILE_REF_PARAMS, reference_row_at, XTILE_REF_ARGS)
#undef XTILE_REF_PARAMS
#undef XTILE_REF_ARGS

// The entry points per head size, one per width (4 for a CPU without AVX2, any for tests).
struct LanesFns {
  AllBlocksFn all_blocks = nullptr;
  OneBlockFn one_block = nullptr;
  void (*combine)(const float*, int64_t, int64_t, float*, float*) = nullptr;
  int tile = 0;                        // query vectors per tile
  int split_tile = 0;                  // the same in split mode (generation)
  OneBlockFn one_block_f16 = nullptr;  // one_block over an fp16 cache read in place, if any
  OneBlockFn one_block_q8v = nullptr;  // the same over a q8_0 V (K fp16 in place or q8_0)
  OneBlockFn one_block_bf16 = nullptr;     // over a bf16 cache read in place (K bf16 or q8_0)
  ScoreQ8Fn score_q8 = score_q8_portable;  // a q8_0 K's scores
};

template <int W, int C>
void all_blocks_at(const AttentionShape& sh, const TileVectors* tvs, int n_tiles,
                   const int64_t* pos, const F32Kv& kv, int64_t g, float* out, int64_t ldo,
                   float* work) {
  tiles_all_blocks<W, C>(sh, tvs, n_tiles, pos, kv, g, out, ldo, work);
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
#define XTILE_HD(C)                                                                     \
  case 16 * C:                                                                          \
    return {all_blocks_at<W, C>, one_block_at<W, C>, combine_at<W, C>, kTileVectors<W>, \
            kSplitTileVectors<W>};
    XTILE_HD(4)
    XTILE_HD(8)
    XTILE_HD(16)
#undef XTILE_HD
    default: return {};
  }
}

// The combine step multi-versioned per head size (isa_fns uses it beside the ISA objects' tiles).
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

#define XTILE_CMB_PARAMS (const float* s, int64_t n, int64_t st, float* a, float* o)
#define XTILE_CMB_ARGS (s, n, st, a, o)
XTILE_LANES_VERSIONS(void, cpu_combine_4, XTILE_CMB_PARAMS, combine_4, XTILE_CMB_ARGS)
XTILE_LANES_VERSIONS(void, cpu_combine_8, XTILE_CMB_PARAMS, combine_8, XTILE_CMB_ARGS)
XTILE_LANES_VERSIONS(void, cpu_combine_16, XTILE_CMB_PARAMS, combine_16, XTILE_CMB_ARGS)
#undef XTILE_CMB_PARAMS
#undef XTILE_CMB_ARGS

// The steps for a CPU without the avx2 tier: the baseline 4-wide tiles. (Every CPU with AVX2
// runs the ISA objects' tiles; multi-versioned AVX2/AVX-512 copies of the portable tiles ran
// nowhere and took minutes of the sanitizer build, their fma being per-lane fmaf calls there.)
LanesFns cpu_fns(int64_t hd) {
  LanesFns f = fns_at_width<4>(hd);
  switch (hd) {
    case 64:
      f.combine = cpu_combine_4;
      break;
    case 128:
      f.combine = cpu_combine_8;
      break;
    case 256:
      f.combine = cpu_combine_16;
      break;
    default:
      break;
  }
  return f;
}

// The ISA object's steps of width w (16: avx512, 8: avx2; its tier must be available), the
// combine step multi-versioned (its bits do not depend on the width).
LanesFns isa_fns(int w, int64_t hd) {
  LanesFns f = cpu_fns(hd);
  if (!f.all_blocks) return {};
  if (w == 16) {
    f.all_blocks = avx512::attention_all_blocks(hd);
    f.one_block = avx512::attention_one_block(hd);
    f.one_block_f16 = avx512::attention_f16_one_block(hd);
    f.one_block_q8v = avx512::attention_q8v_one_block(hd);
    f.one_block_bf16 = avx512::attention_bf16_one_block(hd);
    f.score_q8 = avx512::attention_q8_scores();
    f.tile = kTileVectors<16>;
    f.split_tile = kSplitTileVectors<16>;
  } else {
    f.all_blocks = avx2::attention_all_blocks(hd);
    f.one_block = avx2::attention_one_block(hd);
    f.one_block_f16 = avx2::attention_f16_one_block(hd);
    f.one_block_q8v = avx2::attention_q8v_one_block(hd);
    f.one_block_bf16 = avx2::attention_bf16_one_block(hd);
    f.score_q8 = avx2::attention_q8_scores();
    f.tile = kTileVectors<8>;
    f.split_tile = kSplitTileVectors<8>;
  }
  return f;
}

LanesFns lanes_fns(int64_t hd, AttentionPath path) {
  switch (path) {
    case AttentionPath::lanes_w4: return fns_at_width<4>(hd);
    case AttentionPath::lanes_w8: return fns_at_width<8>(hd);
    case AttentionPath::lanes_w16: return fns_at_width<16>(hd);
    case AttentionPath::lanes_isa_w8:
    case AttentionPath::lanes_isa_w16: {
      const int w = path == AttentionPath::lanes_isa_w8 ? 8 : 16;
      if (!attention_path_available(path))
        fail("attention: the ", w, "-wide ISA path needs the ", w == 8 ? "avx2" : "avx512",
             " tier, which this CPU lacks");
      return isa_fns(w, hd);
    }
    case AttentionPath::reference: return {};
    case AttentionPath::lanes: break;
  }
  const CpuCaps& caps = cpu_caps();
  if (caps.tier_available(Tier::avx512)) return isa_fns(16, hd);
  if (caps.tier_available(Tier::avx2)) return isa_fns(8, hd);
  return cpu_fns(hd);
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

// The conversion below reads the cache from memory: lines are requested 8 KiB ahead (as in
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

// Multi-versioned so that each CPU's compiler vectorization applies (the loop above is plain:
// GCC 12 turns them into sign extensions and VCVTDQ2PS, but converts a vector of int8 written
// with its vector extensions one element at a time).
XTILE_LANES_VERSIONS(void, cpu_q8_rows_to_f32, (const uint8_t* rows, int64_t n_blocks, float* dst),
                     q8_rows_to_f32, (rows, n_blocks, dst))

// `chunks` K chunks of kv head g from position p0 (a multiple of 16) to f32, in the chunk layout
// (a q8_0 K is never converted: its scores are integer sums).
void convert_k(const KvLayerView& kv, int64_t g, int64_t p0, int64_t chunks, float* dst) {
  to_f32(kv.k, kv.k_elem, kv_k_index(kv, g, p0, 0), dst, chunks * kv.head_dim * kChunk);
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

// The cache bytes of K chunk p0 / 16 of kv head g, and the bytes of one K chunk (any type).
const char* k_raw(const KvLayerView& kv, int64_t g, int64_t p0) {
  const auto* base = static_cast<const char*>(kv.k);
  if (kv.k_elem == KvElem::q8_0) return base + kv_kq8_block_offset(kv, g, p0, 0);
  return base + kv_k_index(kv, g, p0, 0) * (kv.k_elem == KvElem::f32 ? 4 : 2);
}
int64_t k_chunk_bytes(const KvLayerView& kv) {
  if (kv.k_elem == KvElem::q8_0) return kv.head_dim / 32 * kKq8BlockBytes;
  return kChunk * kv_row_bytes(kv.k_elem, kv.head_dim);
}

// Converts positions [p0, p1) of kv head g (p0 a multiple of 16, p1 − p0 ≤ 16) to f32 as head
// g of buffers of capacity dst_cap: K in the same chunk layout (dst_k null: K stays, a q8_0 K),
// V piece by piece (F32Kv's v_pieces: 16 dimensions of every position, then the next 16).
void convert_range(const KvLayerView& kv, int64_t g, int64_t p0, int64_t p1, float* dst_k,
                   float* dst_v, int64_t dst_cap) {
  const int64_t hd = kv.head_dim;
  if (dst_k)
    convert_k(kv, g, p0, (p1 - p0 + kChunk - 1) / kChunk,
              dst_k + ((g * (dst_cap / kChunk)) + p0 / kChunk) * hd * kChunk);
  float rows[kChunk * 256];  // head sizes up to 256 (lanes_fns)
  convert_v(kv, g, p0, p1 - p0, rows);
  for (int64_t p = p0; p < p1; ++p)
    for (int64_t j = 0; j < hd / 16; ++j)
      std::memcpy(dst_v + ((g * (hd / 16) + j) * dst_cap + p) * 16, rows + (p - p0) * hd + 16 * j,
                  16 * sizeof(float));
}

// The query vectors of `rows` rows quantized for a q8_0 K (QueryQ8) into `area`: vector
// (row, head h) at x = row · n_head + h takes hd / 4 floats of int8 q, then hd / 32 scales and
// hd / 32 biases. Returns the floats used.
int64_t q8_query_floats(const AttentionShape& s, int64_t rows) {
  return rows * s.n_head * (s.head_dim / 4 + 2 * (s.head_dim / kQK));
}
void quantize_queries(ThreadPool& pool, const AttentionShape& s, const float* q, int64_t ldq,
                      int64_t rows, float* area) {
  const int64_t hd = s.head_dim, nb = hd / kQK, per = hd / 4 + 2 * nb;
  pool.parallel_for(0, rows * s.n_head, row_grain(4 * hd), [&](int64_t a, int64_t b, int) {
    std::vector<BlockQ8_0> blocks(static_cast<size_t>(nb));
    for (int64_t x = a; x < b; ++x) {
      quantize_row_q8_0(q + x / s.n_head * ldq + x % s.n_head * hd, blocks.data(), hd);
      float* dst = area + x * per;
      auto* qs = reinterpret_cast<int8_t*>(dst);
      for (int64_t blk = 0; blk < nb; ++blk) {
        const BlockQ8_0& qb = blocks[static_cast<size_t>(blk)];
        int32_t sum = 0;
        for (int i = 0; i < kQK; ++i) sum += qs[blk * kQK + i] = qb.qs[i];
        dst[hd / 4 + blk] = fp16_to_fp32(qb.d);
        dst[hd / 4 + nb + blk] = static_cast<float>(-128 * sum);
      }
    }
  });
}
QueryQ8 query_q8(const AttentionShape& s, const float* area, int64_t row, int64_t h) {
  const int64_t hd = s.head_dim, nb = hd / kQK;
  const float* base = area + (row * s.n_head + h) * (hd / 4 + 2 * nb);
  return {reinterpret_cast<const int8_t*>(base), base + hd / 4, base + hd / 4 + nb};
}

// Below ~64K element operations in all (~20 µs), waking the workers costs more than it saves.
constexpr int64_t kMinParallelOps = 65536;

// work(thread) on every thread of the pool, or on this one alone for a small job.
void run_work(ThreadPool& pool, int64_t total_ops, const std::function<void(int)>& work) {
  if (pool.size() == 1 || total_ops < kMinParallelOps)
    work(0);
  else
    pool.run([&](int thread, int) { work(thread); });
}

void run_items(ThreadPool& pool, int64_t n_items, int64_t total_ops,
               const std::function<void(int64_t, int)>& item) {
  std::atomic<int64_t> next{0};
  run_work(pool, total_ops, [&](int thread) {
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n_items;) item(i, thread);
  });
}

// Split mode's items are claimed in runs of consecutive items: consecutive items are
// consecutive blocks of one kv head, whose K and V lie one after the other in the cache, so a
// run reads two sequential streams. Claimed one at a time, two threads took alternate blocks and
// each thread's streams broke every 64 KiB (one thread over 512 MiB of fp16 blocks from memory,
// `xtile_attention_bench` block/w16: 25.3-25.6 GB/s taking every block, 22.7 every other).
// A run is the items left over kRunShare · threads (guided self-scheduling): long runs first,
// single items at the end, so that the threads still finish together (a layer's attention
// waits for its slowest thread). docs/PERF.md, twenty-third session.
constexpr int64_t kRunShare = 2;

// Items [0, n_items) claimed in runs (above), each thread claiming its next run as the last item
// of its current one starts: item(i, next, thread), next the index the thread runs after i
// (n_items: none), so that i's last piece can request next's first lines; then, once a run's
// items are done, run_done(a, b, thread) for the run [a, b).
void run_items_ahead(ThreadPool& pool, int64_t n_items, int64_t total_ops,
                     const std::function<void(int64_t, int64_t, int)>& item,
                     const std::function<void(int64_t, int64_t, int)>& run_done) {
  std::atomic<int64_t> next{0};
  const int64_t share = kRunShare * pool.size();
  // The first item and the end of the next run.
  const auto claim = [&]() -> std::pair<int64_t, int64_t> {
    int64_t a = next.load(std::memory_order_relaxed);
    for (;;) {
      if (a >= n_items) return {n_items, n_items};
      const int64_t b = a + std::max<int64_t>(1, (n_items - a) / share);
      if (next.compare_exchange_weak(a, b, std::memory_order_relaxed)) return {a, b};
    }
  };
  run_work(pool, total_ops, [&](int thread) {
    for (auto [a, b] = claim(); a < n_items;) {
      std::pair<int64_t, int64_t> following{n_items, n_items};
      for (int64_t i = a; i < b; ++i) {
        if (i + 1 == b) following = claim();
        item(i, i + 1 < b ? i + 1 : following.first, thread);
      }
      run_done(a, b, thread);
      std::tie(a, b) = following;
    }
  });
}

}  // namespace

bool attention_path_available(AttentionPath path) {
  switch (path) {
    case AttentionPath::lanes_isa_w8:
      return cpu_caps().tier_available(Tier::avx2);
    case AttentionPath::lanes_isa_w16:
      return cpu_caps().tier_available(Tier::avx512);
    default:
      return true;
  }
}

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

  // Query vectors of kv head g in tiles of `tile` vectors: (row, head j of the group), row-major,
  // so a tile's rows are neighbours (a batch's rows come in ascending positions).
  const int64_t per_g = rows * group;
  // Split mode: few rows (generation): items (tile, kv head, block) so that a long context
  // spreads over every thread, then one combine per vector in ascending block order. Its tiles
  // hold up to fns.split_tile vectors, prompt mode's fns.tile.
  const bool split = rows <= 4 || n_kv * ((per_g + fns.tile - 1) / fns.tile) <
                                      2 * static_cast<int64_t>(pool.size());
  const int tile = split ? fns.split_tile : fns.tile;
  const int64_t tiles_per_g = (per_g + tile - 1) / tile;
  // A q8_0 K's scores take the queries quantized (attention.h), once per call, at the end of
  // the scratch (its size is settled below, before any pointer into it is taken).
  const bool kq8 = kv.k_elem == KvElem::q8_0;
  const int64_t q8_floats = kq8 ? q8_query_floats(shape, rows) : 0;
  const float* q8_area = nullptr;
  auto tile_vectors = [&](int64_t g, int64_t t) {
    TileVectors tv;
    for (int64_t x = t * tile; x < std::min(per_g, (t + 1) * tile); ++x) {
      const int64_t row = x / group, h = g * group + x % group;
      tv.q[tv.n] = q + row * ldq + h * hd;
      tv.row[tv.n] = row;
      tv.head[tv.n] = h;
      if (kq8) tv.qq[tv.n] = query_q8(shape, q8_area, row, h);
      ++tv.n;
    }
    return tv;
  };
  // The scratch from its first 64-byte boundary: every buffer in it starts at a multiple of 16
  // floats, so the tiles' 64-byte K and V loads never straddle two cache lines (from a vector's
  // 16-byte-aligned data every zmm load did, and prompt attention ran at half speed).
  float* area = nullptr;
  auto reserve = [&](size_t floats) {
    if (scratch.size() < floats + 16) scratch.resize(floats + 16);
    area = scratch.data() + (16 - reinterpret_cast<uintptr_t>(scratch.data()) / 4 % 16) % 16;
  };
  auto quantize_queries_into = [&](size_t at) {
    if (!kq8) return;
    quantize_queries(pool, shape, q, ldq, rows, area + at);
    q8_area = area + at;
  };
  const int64_t work_floats = 8 * kB + 16 * hd;  // scores, block sums, running sums
  const int64_t n_blocks_max = max_pos / kB + 1;

  if (split) {
    const int64_t slot = 2 + hd;
    const int64_t slot_floats = (per_g * n_kv * n_blocks_max * slot + 15) / 16 * 16;
    const int64_t conv_floats = 2 * kPiece * hd;  // a piece of K and of V as f32, per thread
    const bool f32 = kv.k_elem == KvElem::f32 && kv.v_elem == KvElem::f32;
    const int64_t per_thread = work_floats + (f32 ? 0 : conv_floats);
    const size_t need = static_cast<size_t>(slot_floats + per_thread * pool.size() + q8_floats);
    reserve(need);
    float* slots = area;
    quantize_queries_into(need - static_cast<size_t>(q8_floats));
    // Vector x of kv head g, block c: slots + ((g · per_g + x) · n_blocks_max + c) · slot.
    const int64_t n_items = n_kv * tiles_per_g * n_blocks_max;
    // An fp16, bf16 or q8_0 cache is read in place where an ISA object has the loads for this
    // width (F16C; VPMOVZXWD for bf16; VPMOVSXBD for a q8_0 V; a q8_0 K is scored in place
    // whatever V is): V fp16 or q8_0 beside K fp16 or q8_0, V bf16 beside K bf16 or q8_0. Other
    // mixes convert (a piece at a time).
    const bool k_f16 = kv.k_elem == KvElem::f16 || kq8, k_bf16 = kv.k_elem == KvElem::bf16 || kq8;
    const OneBlockFn in_place = kv.v_elem == KvElem::f16 && k_f16     ? fns.one_block_f16
                                : kv.v_elem == KvElem::q8_0 && k_f16  ? fns.one_block_q8v
                                : kv.v_elem == KvElem::bf16 && k_bf16 ? fns.one_block_bf16
                                                                      : nullptr;
    // One item: block c of kv head g for tile t's vectors, into their slots (nothing where the
    // block lies past every vector's position).
    auto one_item = [&](int64_t g, int64_t t, int64_t c, int64_t next, float* work) {
      TileVectors tv = tile_vectors(g, t);
      int64_t last = 0;
      for (int v = 0; v < tv.n; ++v) last = std::max(last, pos[tv.row[v]]);
      if (c * kB > last) return;
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
      src.convert_k = convert_k_piece;
      src.convert_v = convert_v_piece;
      if (kv.k_elem == KvElem::f32) {
        src.k = f.k_block(g, c);
      } else {
        src.k_raw = k_raw(kv, g, c * kB);
        src.k_chunk_bytes = k_chunk_bytes(kv);
        if (next < n_items) {  // the next item's first piece (its block may lie past the rows)
          const int64_t nc = next % n_blocks_max, ng = next / (n_blocks_max * tiles_per_g);
          src.next_raw = k_raw(kv, ng, nc * kB);
          src.next_bytes = kPiece / kChunk * src.k_chunk_bytes;
        }
      }
      if (kq8) {
        src.kq8 = reinterpret_cast<const uint8_t*>(src.k_raw);
        src.qq = tv.qq;
        src.score_q8 = fns.score_q8;
      }
      if (kv.v_elem == KvElem::f32) {
        src.v = f.v_block(g, c);
      } else {
        src.v_row_bytes = kv_row_bytes(kv.v_elem, hd);
        src.v_raw = static_cast<const char*>(kv.v) + (g * kv.capacity + c * kB) * src.v_row_bytes;
      }
      float* vslots[8];
      for (int v = 0; v < tv.n; ++v) {
        const int64_t x = t * tile + v;
        vslots[v] = slots + ((g * per_g + x) * n_blocks_max + c) * slot;
      }
      (in_place ? in_place : fns.one_block)(shape, tv, pos, src, c, vslots, work);
    };
    const int64_t item_ops = 4 * per_g * (max_pos + 1) * hd * n_kv;
    // Each tile's vectors are combined, their blocks in ascending order, by the thread that
    // finishes the tile's last item (whichever that is: the order, not the thread, fixes the
    // bits). Combined in a second pass over the pool they cost a dispatch and a barrier more
    // per layer, and a pass over slots half of which the other threads wrote: ~10 µs of a
    // ~380 µs layer at depth 4096 (qwen3-0.6b layout, 2 threads; docs/PERF.md, twenty-fourth
    // session). With runs of consecutive items a tile's blocks are mostly one thread's own.
    // The counts go down once per run and tile, not per item: the counters share cache lines
    // that every thread writes.
    const int64_t n_tiles = n_kv * tiles_per_g;
    const std::unique_ptr<std::atomic<int32_t>[]> items_left(new std::atomic<int32_t>[n_tiles]);
    for (int64_t k = 0; k < n_tiles; ++k)
      items_left[k].store(static_cast<int32_t>(n_blocks_max), std::memory_order_relaxed);
    auto combine_tile = [&](int64_t g, int64_t t, float* acc) {
      for (int64_t x = t * tile; x < std::min(per_g, (t + 1) * tile); ++x) {
        const int64_t row = x / group, h = g * group + x % group;
        fns.combine(slots + (g * per_g + x) * n_blocks_max * slot, pos[row] / kB + 1, slot, acc,
                    out + row * ldo + h * hd);
      }
    };
    run_items_ahead(
        pool, n_items, item_ops,
        [&](int64_t i, int64_t next, int thread) {
          const int64_t c = i % n_blocks_max, t = (i / n_blocks_max) % tiles_per_g,
                        g = i / (n_blocks_max * tiles_per_g);
          one_item(g, t, c, next, area + slot_floats + thread * per_thread);
        },
        [&](int64_t a, int64_t b, int thread) {
          // Tile k holds items [k · n_blocks_max, (k + 1) · n_blocks_max). The release publishes
          // this run's slots; the acquire of the count that reaches zero sees every other's.
          for (int64_t k = a / n_blocks_max; k * n_blocks_max < b; ++k) {
            const int64_t done =
                std::min(b, (k + 1) * n_blocks_max) - std::max(a, k * n_blocks_max);
            if (items_left[k].fetch_sub(static_cast<int32_t>(done), std::memory_order_acq_rel) ==
                done)
              combine_tile(k / tiles_per_g, k % tiles_per_g,
                           area + slot_floats + thread * per_thread);
          }
        });
    return;
  }

  // Prompt mode: the cache converted to f32 once (every block is read by many tiles), then items
  // (kv head, tile), each all its blocks in order, longest first.
  // A q8_0 K stays as it is (its scores are integer sums); only V is converted then.
  const int64_t cap = (max_pos + 1 + kChunk - 1) / kChunk * kChunk;
  const bool f32 = kv.k_elem == KvElem::f32 && kv.v_elem == KvElem::f32;
  const int64_t conv_k = f32 || kq8 ? 0 : n_kv * cap * hd;
  const int64_t conv = f32 ? 0 : conv_k + n_kv * cap * hd;
  const int64_t group_work = prompt_work_floats(hd);
  const size_t need = static_cast<size_t>(conv + group_work * pool.size() + q8_floats);
  reserve(need);
  quantize_queries_into(need - static_cast<size_t>(q8_floats));
  F32Kv f{static_cast<const float*>(kv.k), static_cast<const float*>(kv.v), kv.capacity, hd};
  if (conv) {
    float* ck = conv_k ? area : nullptr;
    float* cv = area + conv_k;
    const int64_t chunks = cap / kChunk;
    pool.parallel_for(0, n_kv * chunks, row_grain(4 * kChunk * hd), [&](int64_t a, int64_t b, int) {
      for (int64_t i = a; i < b; ++i) {
        const int64_t g = i / chunks, p0 = (i % chunks) * kChunk;
        convert_range(kv, g, p0, std::min(p0 + kChunk, kv.capacity), ck, cv, cap);
      }
    });
    f = {ck, cv, cap, hd, /*v_pieces=*/true};
  }
  if (kq8) {
    f.kq8 = static_cast<const uint8_t*>(kv.k);
    f.kq8_capacity = kv.capacity;
    f.score_q8 = fns.score_q8;
  }
  // Items (kv head, group of tiles: tiles_all_blocks), longest first.
  const int64_t group_tiles = kGroupVectors / fns.tile;
  const int64_t groups_per_g = (tiles_per_g + group_tiles - 1) / group_tiles;
  run_items(pool, n_kv * groups_per_g, 4 * per_g * (max_pos + 1) * hd * n_kv,
            [&](int64_t i, int thread) {
              const int64_t g = i / groups_per_g, gr = groups_per_g - 1 - i % groups_per_g;
              const int64_t t0 = gr * group_tiles, t1 = std::min(tiles_per_g, t0 + group_tiles);
              TileVectors tvs[kGroupVectors / 4];  // tiles of 4, 6 or 8 vectors
              for (int64_t t = t0; t < t1; ++t) tvs[t - t0] = tile_vectors(g, t);
              float* work = area + conv + thread * group_work;
              fns.all_blocks(shape, tvs, static_cast<int>(t1 - t0), pos, f, g, out, ldo, work);
            });
}

}  // namespace xtile::ops
