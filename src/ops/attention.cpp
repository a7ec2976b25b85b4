#include "ops/attention.h"

#include <algorithm>
#include <atomic>

#include "base/error.h"
#include "ops/lanes16.h"
#include "ops/ops.h"

namespace xtile::ops {

namespace {

// The query heads h = kvh·group .. kvh·group + group − 1 of one row, which all read kv head
// kvh, one element at a time: the definition the vectorized versions below are compared with.
// Per head the arithmetic is that of one head alone (same dots, same softmax, same ascending
// sum over positions).
// k and v point at the kv head's vector of position 0; position p's is p · stride floats on.
XTILE_FLOAT_CLONES void attend_group(const AttentionShape& s, const float* q, int64_t group,
                                     int64_t pos, const float* k_head, const float* v_head,
                                     int64_t stride, float* out, float* scores) {
  const int64_t hd = s.head_dim;
  const int64_t n = pos + 1;
  for (int64_t p = 0; p < n; ++p) {
    const float* k = k_head + p * stride;
    for (int64_t j = 0; j < group; ++j) scores[j * n + p] = dot(q + j * hd, k, hd) * s.scale;
  }
  for (int64_t j = 0; j < group; ++j) softmax_row(scores + j * n, n);
  std::fill(out, out + group * hd, 0.0f);
  for (int64_t p = 0; p < n; ++p) {
    const float* v = v_head + p * stride;
    for (int64_t j = 0; j < group; ++j) {
      const float w = scores[j * n + p];
      float* o = out + j * hd;
      for (int64_t i = 0; i < hd; ++i) o[i] += w * v[i];
    }
  }
}

// The same arithmetic as attend_group, element for element, on 16-lane values (lanes16.h),
// for head_dim = 16·C (64, 128, 256). Scores: the 16-lane dot of attend_group is one 16-lane
// accumulator per position (lane j sums the elements j, j + 16, ... in ascending order, a
// multiply then an add), and lanes::fold16 folds 16 positions' accumulators at once. Weighted
// sum: the head's output stays in C 16-lane registers over every position (ascending p, a
// multiply then an add, from 0.0f), H heads of the group per pass sharing each V load.
// Register budget (AVX-512, 32 zmm): scores C (q) + 16 (accumulators); sum H·C + C ≤ 24.
template <int W, int C>
XTILE_LANES_INLINE void head_scores(const float* q, const float* k_head, int64_t stride, int64_t n,
                                    float scale, float* scores) {
  using V = lanes::F16<W>;
  V qv[C];
  for (int c = 0; c < C; ++c) qv[c] = lanes::load<W>(q + 16 * c);
  const V vscale = lanes::splat<W>(scale);
  int64_t p0 = 0;
  for (; p0 + 16 <= n; p0 += 16) {
    V acc[16];
#pragma GCC unroll 16
    for (int pp = 0; pp < 16; ++pp) {
      const float* k = k_head + (p0 + pp) * stride;
      V a = lanes::zero<W>();
#pragma GCC unroll 16
      for (int c = 0; c < C; ++c) a = a + qv[c] * lanes::load<W>(k + 16 * c);
      acc[pp] = a;
    }
    lanes::store(scores + p0, lanes::fold16(acc) * vscale);
  }
  if (p0 < n) {  // the last positions: unused lanes fold zeros and are not stored
    V acc[16];
    for (int pp = 0; pp < 16; ++pp) {
      V a = lanes::zero<W>();
      if (p0 + pp < n) {
        const float* k = k_head + (p0 + pp) * stride;
        for (int c = 0; c < C; ++c) a = a + qv[c] * lanes::load<W>(k + 16 * c);
      }
      acc[pp] = a;
    }
    float tail[16];
    lanes::store(tail, lanes::fold16(acc) * vscale);
    std::copy(tail, tail + (n - p0), scores + p0);
  }
}

// out[h·hd + i] = Σ_p w_h[p] · v_p[i] over p < n, for the H heads whose weights are
// w + h·w_stride; with `resume` the sums continue from the values in out (a float stored and
// reloaded is the same float: a sum split over blocks of positions gives the same bits).
template <int W, int C, int H>
XTILE_LANES_INLINE void weighted_sum(const float* w, int64_t w_stride, int64_t n,
                                     const float* v_head, int64_t stride, float* out, bool resume) {
  using V = lanes::F16<W>;
  V o[H][C];
  for (int h = 0; h < H; ++h)
    for (int c = 0; c < C; ++c)
      o[h][c] = resume ? lanes::load<W>(out + h * 16 * C + 16 * c) : lanes::zero<W>();
  for (int64_t p = 0; p < n; ++p) {
    const float* v = v_head + p * stride;
    V wp[H];
    for (int h = 0; h < H; ++h) wp[h] = lanes::splat<W>(w[h * w_stride + p]);
#pragma GCC unroll 16
    for (int c = 0; c < C; ++c) {
      const V vc = lanes::load<W>(v + 16 * c);
      for (int h = 0; h < H; ++h) o[h][c] = o[h][c] + wp[h] * vc;
    }
  }
  for (int h = 0; h < H; ++h)
    for (int c = 0; c < C; ++c) lanes::store(out + h * 16 * C + 16 * c, o[h][c]);
}

// Heads per weighted-sum pass: accumulators H·C within the register file (AVX-512: 32 zmm;
// AVX2 and below hold a 16-lane value in 2 or 4 registers, so one head at a time).
template <int W, int C>
constexpr int kSumHeads = W == 16 && C <= 8 ? 2 : 1;

// The weighted sums of the group's heads over positions [p0, p0 + n) of n_all, whose values are
// v_head + (p − p0)·stride.
template <int W, int C>
XTILE_LANES_INLINE void group_weighted_sum(const float* scores, int64_t group, int64_t n_all,
                                           int64_t p0, int64_t n, const float* v_head,
                                           int64_t stride, float* out) {
  constexpr int64_t hd = 16 * C;
  constexpr int H = kSumHeads<W, C>;
  int64_t j = 0;
  for (; j + H <= group; j += H)
    weighted_sum<W, C, H>(scores + j * n_all + p0, n_all, n, v_head, stride, out + j * hd, p0 > 0);
  for (; j < group; ++j)
    weighted_sum<W, C, 1>(scores + j * n_all + p0, n_all, n, v_head, stride, out + j * hd, p0 > 0);
}

template <int W, int C>
XTILE_LANES_INLINE void attend_group_lanes(const AttentionShape& s, const float* q, int64_t group,
                                           int64_t pos, const float* k_head, const float* v_head,
                                           int64_t stride, float* out, float* scores) {
  constexpr int64_t hd = 16 * C;
  const int64_t n = pos + 1;
  for (int64_t j = 0; j < group; ++j) {
    head_scores<W, C>(q + j * hd, k_head, stride, n, s.scale, scores + j * n);
    softmax_row(scores + j * n, n);
  }
  group_weighted_sum<W, C>(scores, group, n, 0, n, v_head, stride, out);
}

// Generation over an fp16 cache: the same arithmetic as attend_group_lanes, with the kv head's
// K and V converted kF16Block positions at a time into `buf` (2 · kF16Block · head_dim floats),
// so that the converted rows are read back from L2 rather than from a whole-context scratch
// (at 4096 positions a head's f32 K is 2 MB). Scores of a block are final (each position's dot
// is its own); the weighted sums resume from out block after block.
constexpr int64_t kF16Block = 256;

template <int W, int C>
XTILE_LANES_INLINE void attend_group_f16(const AttentionShape& s, const float* q, int64_t group,
                                         int64_t pos, const uint16_t* k16, const uint16_t* v16,
                                         int64_t row_elems, float* out, float* scores, float* buf) {
  constexpr int64_t hd = 16 * C;
  const int64_t n = pos + 1;
  for (int64_t p0 = 0; p0 < n; p0 += kF16Block) {
    const int64_t cnt = std::min(kF16Block, n - p0);
    for (int64_t p = 0; p < cnt; ++p) f16_to_f32_row(k16 + (p0 + p) * row_elems, buf + p * hd, hd);
    for (int64_t j = 0; j < group; ++j)
      head_scores<W, C>(q + j * hd, buf, hd, cnt, s.scale, scores + j * n + p0);
  }
  for (int64_t j = 0; j < group; ++j) softmax_row(scores + j * n, n);
  for (int64_t p0 = 0; p0 < n; p0 += kF16Block) {
    const int64_t cnt = std::min(kF16Block, n - p0);
    for (int64_t p = 0; p < cnt; ++p) f16_to_f32_row(v16 + (p0 + p) * row_elems, buf + p * hd, hd);
    group_weighted_sum<W, C>(scores, group, n, p0, cnt, buf, hd, out);
  }
}

template <int W>
XTILE_LANES_INLINE void attend_hd64(const AttentionShape& s, const float* q, int64_t group,
                                    int64_t pos, const float* k_head, const float* v_head,
                                    int64_t stride, float* out, float* scores) {
  attend_group_lanes<W, 4>(s, q, group, pos, k_head, v_head, stride, out, scores);
}
template <int W>
XTILE_LANES_INLINE void attend_hd128(const AttentionShape& s, const float* q, int64_t group,
                                     int64_t pos, const float* k_head, const float* v_head,
                                     int64_t stride, float* out, float* scores) {
  attend_group_lanes<W, 8>(s, q, group, pos, k_head, v_head, stride, out, scores);
}
template <int W>
XTILE_LANES_INLINE void attend_hd256(const AttentionShape& s, const float* q, int64_t group,
                                     int64_t pos, const float* k_head, const float* v_head,
                                     int64_t stride, float* out, float* scores) {
  attend_group_lanes<W, 16>(s, q, group, pos, k_head, v_head, stride, out, scores);
}

// One multi-versioned entry per head size.
using AttendGroupFn = void (*)(const AttentionShape&, const float*, int64_t, int64_t, const float*,
                               const float*, int64_t, float*, float*);
#define XTILE_ATTEND_PARAMS                                                                  \
  (const AttentionShape& s, const float* q, int64_t group, int64_t pos, const float* k_head, \
   const float* v_head, int64_t stride, float* out, float* scores)
#define XTILE_ATTEND_ARGS (s, q, group, pos, k_head, v_head, stride, out, scores)
XTILE_LANES_VERSIONS(void, attend_group_hd64, XTILE_ATTEND_PARAMS, attend_hd64, XTILE_ATTEND_ARGS)
XTILE_LANES_VERSIONS(void, attend_group_hd128, XTILE_ATTEND_PARAMS, attend_hd128, XTILE_ATTEND_ARGS)
XTILE_LANES_VERSIONS(void, attend_group_hd256, XTILE_ATTEND_PARAMS, attend_hd256, XTILE_ATTEND_ARGS)
#undef XTILE_ATTEND_PARAMS
#undef XTILE_ATTEND_ARGS

// The same for generation over an fp16 cache (attend_group_f16).
template <int W>
XTILE_LANES_INLINE void attend_f16_hd64(const AttentionShape& s, const float* q, int64_t group,
                                        int64_t pos, const uint16_t* k16, const uint16_t* v16,
                                        int64_t row_elems, float* out, float* scores, float* buf) {
  attend_group_f16<W, 4>(s, q, group, pos, k16, v16, row_elems, out, scores, buf);
}
template <int W>
XTILE_LANES_INLINE void attend_f16_hd128(const AttentionShape& s, const float* q, int64_t group,
                                         int64_t pos, const uint16_t* k16, const uint16_t* v16,
                                         int64_t row_elems, float* out, float* scores, float* buf) {
  attend_group_f16<W, 8>(s, q, group, pos, k16, v16, row_elems, out, scores, buf);
}
template <int W>
XTILE_LANES_INLINE void attend_f16_hd256(const AttentionShape& s, const float* q, int64_t group,
                                         int64_t pos, const uint16_t* k16, const uint16_t* v16,
                                         int64_t row_elems, float* out, float* scores, float* buf) {
  attend_group_f16<W, 16>(s, q, group, pos, k16, v16, row_elems, out, scores, buf);
}

using AttendF16Fn = void (*)(const AttentionShape&, const float*, int64_t, int64_t, const uint16_t*,
                             const uint16_t*, int64_t, float*, float*, float*);
#define XTILE_ATTEND_F16_PARAMS                                                              \
  (const AttentionShape& s, const float* q, int64_t group, int64_t pos, const uint16_t* k16, \
   const uint16_t* v16, int64_t row_elems, float* out, float* scores, float* buf)
#define XTILE_ATTEND_F16_ARGS (s, q, group, pos, k16, v16, row_elems, out, scores, buf)
XTILE_LANES_VERSIONS(void, attend_f16_group_hd64, XTILE_ATTEND_F16_PARAMS, attend_f16_hd64,
                     XTILE_ATTEND_F16_ARGS)
XTILE_LANES_VERSIONS(void, attend_f16_group_hd128, XTILE_ATTEND_F16_PARAMS, attend_f16_hd128,
                     XTILE_ATTEND_F16_ARGS)
XTILE_LANES_VERSIONS(void, attend_f16_group_hd256, XTILE_ATTEND_F16_PARAMS, attend_f16_hd256,
                     XTILE_ATTEND_F16_ARGS)
#undef XTILE_ATTEND_F16_PARAMS
#undef XTILE_ATTEND_F16_ARGS

template <int W, int C>
void attend_f16_at_width(const AttentionShape& s, const float* q, int64_t group, int64_t pos,
                         const uint16_t* k16, const uint16_t* v16, int64_t row_elems, float* out,
                         float* scores, float* buf) {
  attend_group_f16<W, C>(s, q, group, pos, k16, v16, row_elems, out, scores, buf);
}

// The vectorized kernels at one width W, compiled for baseline x86-64 (AttentionPath::lanes_wN:
// tests check every width's code on any CPU).
template <int W, int C>
void attend_group_at_width(const AttentionShape& s, const float* q, int64_t group, int64_t pos,
                           const float* k_head, const float* v_head, int64_t stride, float* out,
                           float* scores) {
  attend_group_lanes<W, C>(s, q, group, pos, k_head, v_head, stride, out, scores);
}

// The kernels of one path and head size: `group` over f32 K/V; `f16` for generation over an fp16
// cache, nullptr where the head must be converted whole first and `group` run on it (the
// reference path, and head sizes without a vectorized kernel: the element loop).
struct AttendFns {
  AttendGroupFn group = attend_group;
  AttendF16Fn f16 = nullptr;
};

template <int W>
AttendFns at_width(int64_t head_dim) {
  switch (head_dim) {
    case 64:
      return {attend_group_at_width<W, 4>, attend_f16_at_width<W, 4>};
    case 128:
      return {attend_group_at_width<W, 8>, attend_f16_at_width<W, 8>};
    case 256:
      return {attend_group_at_width<W, 16>, attend_f16_at_width<W, 16>};
    default:
      return {};
  }
}

AttendFns attend_fns(int64_t head_dim, AttentionPath path) {
  switch (path) {
    case AttentionPath::reference:
      return {};
    case AttentionPath::lanes_w4:
      return at_width<4>(head_dim);
    case AttentionPath::lanes_w8:
      return at_width<8>(head_dim);
    case AttentionPath::lanes_w16:
      return at_width<16>(head_dim);
    case AttentionPath::lanes:
      break;
  }
  switch (head_dim) {
    case 64:
      return {attend_group_hd64, attend_f16_group_hd64};
    case 128:
      return {attend_group_hd128, attend_f16_group_hd128};
    case 256:
      return {attend_group_hd256, attend_f16_group_hd256};
    default:
      return {};
  }
}

}  // namespace

void attention(ThreadPool& pool, const AttentionShape& shape, const float* q, int64_t ldq,
               const int64_t* pos, int64_t rows, const KvLayerView& kv, float* out, int64_t ldo,
               std::vector<float>& scratch, AttentionPath path) {
  if (shape.n_head_kv <= 0 || shape.n_head % shape.n_head_kv != 0)
    fail("attention: ", shape.n_head, " query heads cannot share ", shape.n_head_kv,
         " KV heads evenly");
  if (rows == 0) return;
  const int64_t max_pos = *std::max_element(pos, pos + rows);
  const int64_t n_pos = max_pos + 1;
  const int64_t group = shape.n_head / shape.n_head_kv;
  const int64_t hd = shape.head_dim;
  const int64_t re = kv.row_elems;
  // Scratch: K and V of positions 0..max_pos as f32 (fp16 caches only), head-major: kv head h
  // holds n_pos vectors of head_dim floats back to back. The cache itself is position-major
  // (row_elems floats per position); reading it in place would put a kv head's consecutive
  // positions row_elems · 4 bytes apart (4 KB for 8 heads of 128), the stride at which L1 sets
  // and load/store aliasing collide: the scores ran 1.4× slower. Then per thread the group's
  // scores.
  // Generation (one row) converts inside its items instead: each kv head is read by exactly
  // one item then, so nothing is converted twice, and one pool round trip (a whole-cache pass
  // before the items) is saved; the vectorized kernels convert kF16Block positions at a time
  // (attend_group_f16), the others the whole head first.
  const bool convert_per_item = kv.f16 && rows == 1;
  const bool convert_shared = kv.f16 && !convert_per_item;
  const int64_t kv_floats = convert_shared ? 2 * n_pos * re : 0;
  const int64_t per_thread = group * n_pos + (convert_per_item ? 2 * n_pos * hd : 0);
  const size_t need = static_cast<size_t>(kv_floats + per_thread * pool.size());
  if (scratch.size() < need) scratch.resize(need);
  const float* k_base = static_cast<const float*>(kv.k);
  const float* v_base = static_cast<const float*>(kv.v);
  int64_t head_offset = hd, stride = re;  // the cache's own layout (f32)
  const auto* k16 = static_cast<const uint16_t*>(kv.k);
  const auto* v16 = static_cast<const uint16_t*>(kv.v);
  if (convert_shared) {
    // Each cached row is converted once per call (exactly), not once per query row and head.
    float* k32 = scratch.data();
    float* v32 = k32 + n_pos * re;
    const int64_t n_kv = shape.n_head_kv;
    pool.parallel_for(0, n_pos, row_grain(4 * re), [&](int64_t p0, int64_t p1, int) {
      for (int64_t p = p0; p < p1; ++p)
        for (int64_t h = 0; h < n_kv; ++h) {
          f16_to_f32_row(k16 + p * re + h * hd, k32 + (h * n_pos + p) * hd, hd);
          f16_to_f32_row(v16 + p * re + h * hd, v32 + (h * n_pos + p) * hd, hd);
        }
    });
    k_base = k32;
    v_base = v32;
    head_offset = n_pos * hd;
    stride = hd;
  }
  const AttendFns fns = attend_fns(hd, path);
  const AttendGroupFn attend = fns.group;
  const AttendF16Fn attend_f16 = convert_per_item ? fns.f16 : nullptr;
  // Work items (row, kv head), handed out from a shared counter: a causal row's cost grows with
  // its position, so the static halves of parallel_for would give the second thread three times
  // the work of the first. Which thread computes an item does not change its bytes (scratch is
  // per thread, every item is computed whole by one thread).
  const int64_t n_items = rows * shape.n_head_kv;
  std::atomic<int64_t> next{0};
  auto work = [&](int thread) {
    float* scores = scratch.data() + kv_floats + thread * per_thread;
    float* k_item = scores + group * n_pos;  // convert_per_item: this item's K, then V
    float* v_item = k_item + n_pos * hd;
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < n_items;) {
      // kv head by kv head, so that consecutive items reread the same K and V from L2 (one
      // head's 512 positions are 256 KB each; all heads' are 4 MB); within a head the last
      // rows first, since a batch's rows come in ascending positions.
      const int64_t kvh = i / rows;
      const int64_t row = rows - 1 - i % rows;
      const int64_t h0 = kvh * group;
      const float* k_head = k_base + kvh * head_offset;
      const float* v_head = v_base + kvh * head_offset;
      int64_t item_stride = stride;
      if (convert_per_item && attend_f16) {
        attend_f16(shape, q + row * ldq + h0 * hd, group, pos[row], k16 + kvh * hd, v16 + kvh * hd,
                   re, out + row * ldo + h0 * hd, scores, k_item);
        continue;
      }
      if (convert_per_item) {
        for (int64_t p = 0; p <= pos[row]; ++p) {
          f16_to_f32_row(k16 + p * re + kvh * hd, k_item + p * hd, hd);
          f16_to_f32_row(v16 + p * re + kvh * hd, v_item + p * hd, hd);
        }
        k_head = k_item;
        v_head = v_item;
        item_stride = hd;
      }
      attend(shape, q + row * ldq + h0 * hd, group, pos[row], k_head, v_head, item_stride,
             out + row * ldo + h0 * hd, scores);
    }
  };
  // Below ~64K element operations in all (~20 µs), waking the workers costs more than it saves.
  constexpr int64_t kMinParallelOps = 65536;
  const int64_t total_ops = 4 * group * n_pos * hd * n_items;
  if (pool.size() == 1 || total_ops < kMinParallelOps)
    work(0);
  else
    pool.run([&](int thread, int) { work(thread); });
}

}  // namespace xtile::ops
