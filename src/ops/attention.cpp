#include "ops/attention.h"

#include <algorithm>

#include "base/error.h"
#include "ops/ops.h"

namespace xtile::ops {

namespace {

// Position p's vector of kv head `kvh` as floats: converted into `buf` for fp16 caches, read in
// place for f32 caches.
inline const float* kv_row(const void* base, bool f16, int64_t index, int64_t n, float* buf) {
  if (!f16) return static_cast<const float*>(base) + index;
  f16_to_f32_row(static_cast<const uint16_t*>(base) + index, buf, n);
  return buf;
}

// The query heads h = kvh·group .. kvh·group + group − 1 of one row, which all read kv head
// kvh: each position's K and V are converted once for the whole group. Per head the arithmetic
// is that of one head alone (same dots, same softmax, same ascending sum over positions).
void attend_group(const AttentionShape& s, const float* q, int64_t group, int64_t pos,
                  int64_t kvh, const KvLayerView& kv, float* out, float* scores, float* kbuf) {
  const int64_t hd = s.head_dim;
  const int64_t n = pos + 1;
  for (int64_t p = 0; p < n; ++p) {
    const float* k = kv_row(kv.k, kv.f16, p * kv.row_elems + kvh * hd, hd, kbuf);
    for (int64_t j = 0; j < group; ++j) scores[j * n + p] = dot(q + j * hd, k, hd) * s.scale;
  }
  for (int64_t j = 0; j < group; ++j) softmax_row(scores + j * n, n);
  std::fill(out, out + group * hd, 0.0f);
  for (int64_t p = 0; p < n; ++p) {
    const float* v = kv_row(kv.v, kv.f16, p * kv.row_elems + kvh * hd, hd, kbuf);
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
  const int64_t group = shape.n_head / shape.n_head_kv;
  const int64_t hd = shape.head_dim;
  // Per thread: the group's scores for positions 0..max_pos, then one converted K/V row.
  const int64_t stride = group * (max_pos + 1) + hd;
  const size_t need = static_cast<size_t>(stride * pool.size());
  if (scratch.size() < need) scratch.resize(need);
  const int64_t item_cost = 4 * group * (max_pos + 1) * hd;
  pool.parallel_for(0, rows * shape.n_head_kv, row_grain(item_cost),
                    [&](int64_t i0, int64_t i1, int t) {
                      float* scores = scratch.data() + t * stride;
                      float* kbuf = scores + group * (max_pos + 1);
                      for (int64_t i = i0; i < i1; ++i) {
                        const int64_t row = i / shape.n_head_kv;
                        const int64_t kvh = i % shape.n_head_kv;
                        const int64_t h0 = kvh * group;
                        attend_group(shape, q + row * ldq + h0 * hd, group, pos[row], kvh, kv,
                                     out + row * ldo + h0 * hd, scores, kbuf);
                      }
                    });
}

}  // namespace xtile::ops
