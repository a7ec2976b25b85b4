// The KV cache: per layer, the keys and values of every position so far, fp16 by default
// (llama.cpp's default; the attention reads them back through an exact fp16 → f32 table) or f32.
// Layout per layer: K[n_ctx][n_head_kv · head_dim], then V likewise.
#pragma once

#include <cstdint>
#include <string_view>

#include "base/aligned_buffer.h"
#include "cpu/thread_pool.h"
#include "ops/attention.h"

namespace xtile {

enum class KvType { f16, f32 };
std::string_view kv_type_name(KvType t);

class KvCache {
 public:
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t row_elems, KvType type);

  // Writes position `pos` of `layer` (row_elems floats each), rounding to fp16 when f16.
  void store(int64_t layer, int64_t pos, const float* k, const float* v);
  ops::KvLayerView view(int64_t layer) const;
  // Touches every page now (the buffer is already zero), in parallel, as llama.cpp clears its KV
  // buffer at setup: otherwise the first tokens pay for the page faults (2 MiB huge pages per
  // layer) and the prompt timing with them.
  void prefault(ThreadPool& pool);

  int64_t n_ctx() const { return n_ctx_; }
  KvType type() const { return type_; }
  size_t bytes() const { return buf_.size(); }

 private:
  size_t elem_bytes() const { return type_ == KvType::f16 ? 2 : 4; }
  // Byte offset of layer's K block; its V block follows n_ctx rows later.
  size_t k_offset(int64_t layer) const;
  size_t v_offset(int64_t layer) const;
  int64_t n_layer_, n_ctx_, row_elems_;
  KvType type_;
  AlignedBuffer buf_;
};

}  // namespace xtile
