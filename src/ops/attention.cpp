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

void attend_one(const AttentionShape& s, const float* q, int64_t pos, int64_t kvh,
                const KvLayerView& kv, float* out, float* scores, float* kbuf) {
  const int64_t hd = s.head_dim;
  const int64_t n = pos + 1;
  for (int64_t p = 0; p < n; ++p) {
    const float* k = kv_row(kv.k, kv.f16, p * kv.row_elems + kvh * hd, hd, kbuf);
    scores[p] = dot(q, k, hd) * s.scale;
  }
  softmax_row(scores, n);
  std::fill(out, out + hd, 0.0f);
  for (int64_t p = 0; p < n; ++p) {
    const float* v = kv_row(kv.v, kv.f16, p * kv.row_elems + kvh * hd, hd, kbuf);
    const float w = scores[p];
    for (int64_t i = 0; i < hd; ++i) out[i] += w * v[i];
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
  // Per thread: scores for positions 0..max_pos, then one converted K/V row.
  const int64_t stride = (max_pos + 1) + shape.head_dim;
  const size_t need = static_cast<size_t>(stride * pool.size());
  if (scratch.size() < need) scratch.resize(need);
  const int64_t group = shape.n_head / shape.n_head_kv;
  pool.parallel_for(0, rows * shape.n_head, row_grain(2 * (max_pos + 1) * shape.head_dim), [&](int64_t i0, int64_t i1, int t) {
    float* scores = scratch.data() + t * stride;
    float* kbuf = scores + (max_pos + 1);
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t row = i / shape.n_head;
      const int64_t h = i % shape.n_head;
      attend_one(shape, q + row * ldq + h * shape.head_dim, pos[row], h / group, kv,
                 out + row * ldo + h * shape.head_dim, scores, kbuf);
    }
  });
}

}  // namespace xtile::ops
