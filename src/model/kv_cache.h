// The KV cache: per layer, the keys and values of every position so far, in the layout the
// attention reads (ops/attention.h KvLayerView): per kv head, K transposed in chunks of 16
// positions, V row by row, each head's positions contiguous. Element type fp16 by default
// (llama.cpp's default), bf16, f32 or q8_0 (`--cache-type-k/-v`; ggml q8_0 blocks, 34 bytes
// per 32 values: 0.53× the bytes of fp16; K's transposed per chunk, V's in rows, see
// ops/attention.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/aligned_buffer.h"
#include "cpu/thread_pool.h"
#include "ops/attention.h"

namespace xtile {

enum class KvType { f16, f32, bf16, q8_0 };
std::string_view kv_type_name(KvType t);
// "f16", "f32", "bf16", "q8_0" (llama.cpp's -ctk/-ctv names), or nullopt.
std::optional<KvType> kv_type_from_name(std::string_view name);
// "f16, bf16, f32 or q8_0", for help texts and errors.
inline constexpr const char* kKvTypeNames = "f16, bf16, f32 or q8_0";
// Bytes of one position of one kv head (head_dim values; q8_0 needs head_dim % 32 == 0).
size_t kv_row_bytes(KvType t, int64_t head_dim);

class KvCache {
 public:
  static constexpr int64_t kMaxHeadDim = 1024;  // for q8_0 (a stack row of blocks per store)
  // More positions (a cache of petabytes for any model) are refused before a size is computed
  // from them: byte counts and the sessions' doubling could overflow.
  static constexpr int64_t kMaxPositions = int64_t{1} << 40;
  // n itself, or an Error naming it when it is below 1 or above kMaxPositions.
  static int64_t checked_positions(int64_t n);
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, KvType type_k,
          KvType type_v);
  KvCache(int64_t n_layer, int64_t n_ctx, int64_t n_head_kv, int64_t head_dim, KvType type)
      : KvCache(n_layer, n_ctx, n_head_kv, head_dim, type, type) {}

  // Writes position `pos` of `layer`: k and v hold n_head_kv · head_dim floats each, rounded to
  // the cache's type (fp16/bf16: round half to even, as F16C and ggml; q8_0: ggml's
  // quantize_row_q8_0 per head).
  void store(int64_t layer, int64_t pos, const float* k, const float* v);
  ops::KvLayerView view(int64_t layer) const;
  // Positions [0, n) of every layer copied from `other` (same shape and types; a cache growing
  // into a bigger one).
  void copy_from(const KvCache& other, int64_t n);
  // Touches every page now (the buffer is already zero), in parallel, as llama.cpp clears its KV
  // buffer at setup: otherwise the first tokens pay for the page faults (2 MiB huge pages per
  // layer) and the prompt timing with them.
  void prefault(ThreadPool& pool);

  int64_t n_ctx() const { return n_ctx_; }
  KvType type_k() const { return type_k_; }
  KvType type_v() const { return type_v_; }
  // "f16", or "f16/bf16" when K and V differ.
  std::string type_name() const;
  size_t bytes() const { return buf_.size(); }

 private:
  size_t k_bytes() const;  // one layer's K
  size_t v_bytes() const;
  int64_t n_layer_, n_ctx_, capacity_, n_head_kv_, head_dim_;
  KvType type_k_, type_v_;
  AlignedBuffer buf_;
};

}  // namespace xtile
