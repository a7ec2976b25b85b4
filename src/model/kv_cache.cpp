#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>

#include "base/error.h"
#include "ops/ops.h"

namespace xtile {

std::string_view kv_type_name(KvType t) {
  return t == KvType::f16 ? "f16" : "f32";
}

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t row_elems, KvType type)
    : n_layer_(n_layer), n_ctx_(n_ctx), row_elems_(row_elems), type_(type) {
  if (n_ctx < 1) fail("the context size must be at least 1, got ", n_ctx);
  buf_ = AlignedBuffer(static_cast<size_t>(n_layer * 2 * n_ctx * row_elems) * elem_bytes());
}

size_t KvCache::k_offset(int64_t layer) const {
  return static_cast<size_t>(layer * 2 * n_ctx_ * row_elems_) * elem_bytes();
}

size_t KvCache::v_offset(int64_t layer) const {
  return k_offset(layer) + static_cast<size_t>(n_ctx_ * row_elems_) * elem_bytes();
}

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  if (pos < 0 || pos >= n_ctx_)
    fail("KV cache: position ", pos, " is outside the context ", n_ctx_);
  if (layer < 0 || layer >= n_layer_) fail("KV cache: layer ", layer, " does not exist");
  uint8_t* kb = buf_.data() + k_offset(layer);
  uint8_t* vb = buf_.data() + v_offset(layer);
  const size_t off = static_cast<size_t>(pos * row_elems_) * elem_bytes();
  if (type_ == KvType::f16) {
    ops::f32_to_f16_row(k, reinterpret_cast<uint16_t*>(kb + off), row_elems_);
    ops::f32_to_f16_row(v, reinterpret_cast<uint16_t*>(vb + off), row_elems_);
  } else {
    std::memcpy(kb + off, k, static_cast<size_t>(row_elems_) * sizeof(float));
    std::memcpy(vb + off, v, static_cast<size_t>(row_elems_) * sizeof(float));
  }
}

void KvCache::prefault(ThreadPool& pool) {
  constexpr size_t kChunk = size_t{1} << 21;
  const size_t size = buf_.size();
  uint8_t* data = buf_.data();
  pool.parallel_for(0, static_cast<int64_t>((size + kChunk - 1) / kChunk), 1,
                    [&](int64_t c0, int64_t c1, int) {
                      const size_t b = static_cast<size_t>(c0) * kChunk;
                      const size_t e = std::min(size, static_cast<size_t>(c1) * kChunk);
                      std::memset(data + b, 0, e - b);
                    });
}

ops::KvLayerView KvCache::view(int64_t layer) const {
  ops::KvLayerView v;
  v.k = buf_.data() + k_offset(layer);
  v.v = buf_.data() + v_offset(layer);
  v.f16 = type_ == KvType::f16;
  v.row_elems = row_elems_;
  return v;
}

}  // namespace xtile
