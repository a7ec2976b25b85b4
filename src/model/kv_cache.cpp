#include "model/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <new>

#include "base/error.h"
#include "base/fp16.h"
#include "ops/ops.h"
#include "quant/quant.h"

namespace xtile {

std::string_view kv_type_name(KvType t) {
  switch (t) {
    case KvType::f16: return "f16";
    case KvType::f32: return "f32";
    case KvType::bf16: return "bf16";
    case KvType::q8_0: return "q8_0";
  }
  return "?";
}

std::optional<KvType> kv_type_from_name(std::string_view name) {
  for (KvType t : {KvType::f16, KvType::f32, KvType::bf16, KvType::q8_0})
    if (name == kv_type_name(t)) return t;
  return std::nullopt;
}

namespace {

ops::KvElem elem_of(KvType t) {
  switch (t) {
    case KvType::f32: return ops::KvElem::f32;
    case KvType::f16: return ops::KvElem::f16;
    case KvType::bf16: return ops::KvElem::bf16;
    case KvType::q8_0: return ops::KvElem::q8_0;
  }
  return ops::KvElem::f16;
}

}  // namespace

int64_t KvCache::checked_positions(int64_t n) {
  if (n < 1) fail("the context size must be at least 1, got ", n);
  if (n > kMaxPositions)
    fail("a context of ", n, " positions is beyond any machine's memory (at most ", kMaxPositions,
         ")");
  return n;
}

size_t kv_row_bytes(KvType t, int64_t head_dim) {
  return static_cast<size_t>(ops::kv_row_bytes(elem_of(t), head_dim));
}

KvCache::KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, KvType type_k,
                 KvType type_v)
    : n_layer_(n_layer),
      n_ctx_(checked_positions(n_ctx)),
      capacity_((n_ctx_ + ops::kKChunk - 1) / ops::kKChunk * ops::kKChunk),
      n_head_kv_(n_head_kv),
      head_dim_(head_dim),
      type_k_(type_k),
      type_v_(type_v) {
  for (KvType t : {type_k, type_v})
    if (t == KvType::q8_0 && (head_dim % kQK != 0 || head_dim > kMaxHeadDim))
      fail("a q8_0 KV cache needs a head size that is a multiple of 32 (at most ", kMaxHeadDim,
           "); this model's is ", head_dim);
  const size_t bytes = static_cast<size_t>(n_layer) * (k_bytes() + v_bytes());
  try {
    buf_ = AlignedBuffer(bytes);
  } catch (const std::bad_alloc&) {
    const double gib = static_cast<double>(bytes) / (1 << 30);
    fail("cannot allocate a KV cache of ", n_ctx, " positions: ", gib, " GiB (", n_layer,
         " layers); ask for a smaller context (-c, or bench's -d/-p/-n) or cache type (-ctk)");
  }
}

// Per layer: K then V, each n_head_kv · capacity positions.
size_t KvCache::k_bytes() const {
  return static_cast<size_t>(n_head_kv_ * capacity_) * kv_row_bytes(type_k_, head_dim_);
}
size_t KvCache::v_bytes() const {
  return static_cast<size_t>(n_head_kv_ * capacity_) * kv_row_bytes(type_v_, head_dim_);
}

namespace {

// n floats as the cache's element type at dst (stride 1) or, for K, one by one at a stride.
void put(KvType type, float x, uint8_t* dst) {
  switch (type) {
    case KvType::f32: std::memcpy(dst, &x, 4); return;
    case KvType::f16: {
      const uint16_t h = fp32_to_fp16(x);
      std::memcpy(dst, &h, 2);
      return;
    }
    case KvType::bf16: {
      const uint16_t h = fp32_to_bf16(x);
      std::memcpy(dst, &h, 2);
      return;
    }
    case KvType::q8_0: break;  // whole rows (store)
  }
}

}  // namespace

void KvCache::store(int64_t layer, int64_t pos, const float* k, const float* v) {
  if (pos < 0 || pos >= n_ctx_)
    fail("KV cache: position ", pos, " is outside the context ", n_ctx_);
  if (layer < 0 || layer >= n_layer_) fail("KV cache: layer ", layer, " does not exist");
  const ops::KvLayerView view_ = view(layer);
  auto* kb = const_cast<uint8_t*>(static_cast<const uint8_t*>(view_.k));
  auto* vb = const_cast<uint8_t*>(static_cast<const uint8_t*>(view_.v));
  // Bytes per element of the f32/f16/bf16 layouts (q8_0 is stored by blocks below).
  const size_t kb_elem = kv_row_bytes(type_k_, 1), vb_elem = kv_row_bytes(type_v_, 1);
  const int64_t n_blocks = head_dim_ / kQK;
  BlockQ8_0 k_blocks[kMaxHeadDim / kQK];
  for (int64_t g = 0; g < n_head_kv_; ++g) {
    const float* kg = k + g * head_dim_;
    const float* vg = v + g * head_dim_;
    // K: one element per 16-position chunk row (stride 16 elements); q8_0: each block's scale
    // and values (as q + 128) to their places for position p of the chunk's block.
    if (type_k_ == KvType::q8_0) {
      quantize_row_q8_0(kg, k_blocks, head_dim_);
      for (int64_t b = 0; b < n_blocks; ++b) {
        uint8_t* blk = kb + ops::kv_kq8_block_offset(view_, g, pos, b * kQK);
        std::memcpy(blk + ops::kv_kq8_scale_index(pos), &k_blocks[b].d, 2);
        for (int i = 0; i < kQK; ++i)
          blk[ops::kv_kq8_index(pos, i)] = static_cast<uint8_t>(k_blocks[b].qs[i] + 128);
      }
    } else {
      for (int64_t i = 0; i < head_dim_; ++i)
        put(type_k_, kg[i], kb + static_cast<size_t>(ops::kv_k_index(view_, g, pos, i)) * kb_elem);
    }
    // V: the head's row is contiguous.
    if (type_v_ == KvType::q8_0) {
      quantize_row_q8_0(vg, reinterpret_cast<BlockQ8_0*>(vb + ops::kv_q8_row_offset(view_, g, pos)),
                        head_dim_);
      continue;
    }
    uint8_t* dst = vb + static_cast<size_t>(ops::kv_v_index(view_, g, pos, 0)) * vb_elem;
    if (type_v_ == KvType::f16)
      ops::f32_to_f16_row(vg, reinterpret_cast<uint16_t*>(dst), head_dim_);
    else
      for (int64_t i = 0; i < head_dim_; ++i) put(type_v_, vg[i], dst + i * vb_elem);
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

void KvCache::copy_from(const KvCache& other, int64_t n) {
  if (other.n_layer_ != n_layer_ || other.n_head_kv_ != n_head_kv_ ||
      other.head_dim_ != head_dim_ || other.type_k_ != type_k_ || other.type_v_ != type_v_)
    fail("KV cache: copying between caches of different shapes or types");
  if (n > n_ctx_ || n > other.n_ctx_) fail("KV cache: ", n, " positions do not fit");
  // Bytes of a head's first n positions: K in whole 16-position chunks.
  const int64_t chunks = (n + ops::kKChunk - 1) / ops::kKChunk;
  const size_t k_head = static_cast<size_t>(chunks * ops::kKChunk) * kv_row_bytes(type_k_, head_dim_);
  const size_t v_head = static_cast<size_t>(n) * kv_row_bytes(type_v_, head_dim_);
  const size_t k_stride = static_cast<size_t>(capacity_) * kv_row_bytes(type_k_, head_dim_);
  const size_t other_k_stride = static_cast<size_t>(other.capacity_) * kv_row_bytes(type_k_, head_dim_);
  const size_t v_stride = static_cast<size_t>(capacity_) * kv_row_bytes(type_v_, head_dim_);
  const size_t other_v_stride = static_cast<size_t>(other.capacity_) * kv_row_bytes(type_v_, head_dim_);
  for (int64_t l = 0; l < n_layer_; ++l) {
    const ops::KvLayerView from = other.view(l), to = view(l);
    auto* to_k = static_cast<uint8_t*>(const_cast<void*>(to.k));  // this cache's own buffer
    auto* to_v = static_cast<uint8_t*>(const_cast<void*>(to.v));
    const auto* from_k = static_cast<const uint8_t*>(from.k);
    const auto* from_v = static_cast<const uint8_t*>(from.v);
    // Head g starts at g · capacity positions in either layout.
    for (int64_t g = 0; g < n_head_kv_; ++g) {
      const size_t ug = static_cast<size_t>(g);
      std::memcpy(to_k + ug * k_stride, from_k + ug * other_k_stride, k_head);
      std::memcpy(to_v + ug * v_stride, from_v + ug * other_v_stride, v_head);
    }
  }
}

std::string KvCache::type_name() const {
  std::string n(kv_type_name(type_k_));
  if (type_v_ != type_k_) (n += '/') += kv_type_name(type_v_);
  return n;
}

ops::KvLayerView KvCache::view(int64_t layer) const {
  ops::KvLayerView v;
  const uint8_t* base = buf_.data() + static_cast<size_t>(layer) * (k_bytes() + v_bytes());
  v.k = base;
  v.v = base + k_bytes();
  v.k_elem = elem_of(type_k_);
  v.v_elem = elem_of(type_v_);
  v.n_head_kv = n_head_kv_;
  v.head_dim = head_dim_;
  v.capacity = capacity_;
  return v;
}

}  // namespace xtile
