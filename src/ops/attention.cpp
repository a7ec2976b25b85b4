#include "ops/attention.h"

#include <algorithm>

#include "base/error.h"
#include "ops/ops.h"

namespace xtile::ops {

namespace {

// The query heads h = kvh·group .. kvh·group + group − 1 of one row, which all read kv head
// kvh: each position's K and V are converted once for the whole group. Per head the arithmetic
// is that of one head alone (same dots, same softmax, same ascending sum over positions).
// k and v are f32 rows of row_elems floats per position.
XTILE_FLOAT_CLONES void attend_group(const AttentionShape& s, const float* q, int64_t group,
                                     int64_t pos, int64_t kvh, const float* k_all,
                                     const float* v_all, int64_t row_elems, float* out,
                                     float* scores) {
  const int64_t hd = s.head_dim;
  const int64_t n = pos + 1;
  for (int64_t p = 0; p < n; ++p) {
    const float* k = k_all + p * row_elems + kvh * hd;
    for (int64_t j = 0; j < group; ++j) scores[j * n + p] = dot(q + j * hd, k, hd) * s.scale;
  }
  for (int64_t j = 0; j < group; ++j) softmax_row(scores + j * n, n);
  std::fill(out, out + group * hd, 0.0f);
  for (int64_t p = 0; p < n; ++p) {
    const float* v = v_all + p * row_elems + kvh * hd;
    for (int64_t j = 0; j < group; ++j) {
      const float w = scores[j * n + p];
      float* o = out + j * hd;
      for (int64_t i = 0; i < hd; ++i) o[i] += w * v[i];
    }
  }
}

}  // namespace

void attention(ThreadPool& pool, const AttentionShape& shape, const float* q, int64_t ldq,
               const int64_t* pos, int64_t rows, const KvLayerView& kv, float* out, int64_t ldo,
               std::vector<float>& scratch) {
  if (shape.n_head_kv <= 0 || shape.n_head % shape.n_head_kv != 0)
    fail("attention: ", shape.n_head, " query heads cannot share ", shape.n_head_kv,
         " KV heads evenly");
  if (rows == 0) return;
  const int64_t max_pos = *std::max_element(pos, pos + rows);
  const int64_t n_pos = max_pos + 1;
  const int64_t group = shape.n_head / shape.n_head_kv;
  const int64_t hd = shape.head_dim;
  const int64_t re = kv.row_elems;
  // Scratch: K and V of positions 0..max_pos as f32 (fp16 caches only), then per thread the
  // group's scores.
  const int64_t kv_floats = kv.f16 ? 2 * n_pos * re : 0;
  const int64_t stride = group * n_pos;
  const size_t need = static_cast<size_t>(kv_floats + stride * pool.size());
  if (scratch.size() < need) scratch.resize(need);
  const float* k_all = static_cast<const float*>(kv.k);
  const float* v_all = static_cast<const float*>(kv.v);
  if (kv.f16) {
    // Each cached row is converted once per call (exactly), not once per query row and head.
    float* k32 = scratch.data();
    float* v32 = k32 + n_pos * re;
    pool.parallel_for(0, n_pos, row_grain(4 * re), [&](int64_t p0, int64_t p1, int) {
      const auto* k16 = static_cast<const uint16_t*>(kv.k);
      const auto* v16 = static_cast<const uint16_t*>(kv.v);
      f16_to_f32_row(k16 + p0 * re, k32 + p0 * re, (p1 - p0) * re);
      f16_to_f32_row(v16 + p0 * re, v32 + p0 * re, (p1 - p0) * re);
    });
    k_all = k32;
    v_all = v32;
  }
  const int64_t item_cost = 4 * group * n_pos * hd;
  pool.parallel_for(0, rows * shape.n_head_kv, row_grain(item_cost),
                    [&](int64_t i0, int64_t i1, int t) {
                      float* scores = scratch.data() + kv_floats + t * stride;
                      for (int64_t i = i0; i < i1; ++i) {
                        const int64_t row = i / shape.n_head_kv;
                        const int64_t kvh = i % shape.n_head_kv;
                        const int64_t h0 = kvh * group;
                        attend_group(shape, q + row * ldq + h0 * hd, group, pos[row], kvh, k_all,
                                     v_all, re, out + row * ldo + h0 * hd, scores);
                      }
                    });
}

}  // namespace xtile::ops
