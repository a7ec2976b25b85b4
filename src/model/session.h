// An inference session: the forward pass of llama / qwen2 / qwen3 / qwen3moe over a
// WeightStore, with its KV cache and scratch buffers. Tokens are processed in batches of up to
// n_batch rows, so the matmuls of a prompt take the GEMM kernels (M = batch) and generation the
// GEMV kernels (M = 1).
//
// One forward serves the four architectures; they differ only in flags of ModelConfig:
//   x = token_embd[tokens]                                         [T, n_embd]
//   per layer:
//     h = rmsnorm(x) · attn_norm
//     [q | k | v] = h Wqkv^T (+ [bq | bk | bv], qwen2)              [T, q_dim + 2 kv_dim]
//     q, k = rmsnorm_per_head(q, k) · q_norm, k_norm  (qwen3)
//     q, k = rope(q, k, pos)            (llama: adjacent pairs; qwen: halves)
//     cache[pos] = k, v                 (fp16)
//     a = softmax(q k_cache^T / sqrt(head_dim), causal) v_cache   [T, q_dim] (GQA)
//     x = x + a Wo^T
//     h = rmsnorm(x) · ffn_norm
//     x = x + ffn(h)                    ffn(h) = (silu(h Wg^T) ⊙ h Wu^T) Wd^T
//                                       (qwen3moe: the routed experts' sum, model/moe.h)
//   logits = (rmsnorm(x) · output_norm) Wout^T                     [T or 1, n_vocab]
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "cpu/thread_pool.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace xtile {

struct SessionOptions {
  int64_t n_ctx = 0;      // KV cache positions; 0: the model's context length
  int64_t n_batch = 512;  // rows per forward batch
  KvType kv_type = KvType::f16;          // K, and V unless kv_type_v is set
  std::optional<KvType> kv_type_v;
};

class Session {
 public:
  // Runs the tier's start-up self-check against ref (ops/tier_self_check.h, once per process).
  Session(const WeightStore& weights, ThreadPool& pool, const SessionOptions& options);

  // Runs `tokens` at positions n_past() .. n_past() + size − 1 (in batches of n_batch) and
  // appends them to the cache. logits receives n_vocab floats per token when all_logits, else
  // the last token's only. Throws xtile::Error when the context would overflow or a token id is
  // outside the vocabulary (nothing is evaluated then). Runs under the float contract's MXCSR
  // (base/float_env.h) whatever the caller's is, and restores the caller's.
  void eval(std::span<const int32_t> tokens, bool all_logits, std::vector<float>* logits);

  int64_t n_past() const { return n_past_; }
  int64_t n_ctx() const { return kv_.n_ctx(); }
  int64_t n_batch() const { return n_batch_; }
  int64_t n_vocab() const { return weights_.config().n_vocab; }
  void reset() { n_past_ = 0; }
  // Forgets the positions from n on (n <= n_past()); the cache keeps 0..n-1, so evaluation
  // continues as if only those had been evaluated (a bench's depth, a chat's shared prefix).
  void truncate(int64_t n);
  const WeightStore& weights() const { return weights_; }
  const KvCache& kv_cache() const { return kv_; }

 private:
  // T rows of tokens at positions n_past_ ...; logits for every row or for the last one.
  void forward_batch(const int32_t* tokens, int64_t t, bool logits_all_rows, float* logits);
  void attention_block(int64_t layer, int64_t t);
  // The dense SwiGLU feed-forward: out = (silu(h Wg^T) ⊙ h Wu^T) Wd^T for t rows of h; for a
  // MoE layer, the mixture of experts (moe_).
  void ffn_block(int64_t layer, const float* h, float* out, int64_t t);
  // y[r, 0..p.n) = x[r, 0..p.k) · W^T for r < rows: quantizes x once for every packed part.
  void project(const Projection& p, const float* x, int64_t ldx, int64_t rows, float* y,
               int64_t ldy);
  void add_rows(float* x, const float* y, int64_t rows, int64_t n);

  const WeightStore& weights_;
  const ModelConfig& c_;
  ThreadPool& pool_;
  int64_t n_batch_;
  KvCache kv_;
  int64_t n_past_ = 0;
  std::vector<double> inv_freq_;  // RoPE, n_rot / 2
  // Scratch, n_batch rows each.
  std::vector<float> x_, h_, qkv_, att_, gate_up_, ffn_h_, ffn_out_;
  std::vector<int64_t> pos_;
  std::vector<float> rope_scratch_;       // per thread: cos, sin (n_rot floats)
  std::vector<float> attention_scratch_;  // ops::attention's per-thread scores
  ActBuffer acts_;
  std::unique_ptr<MoeFfn> moe_;  // qwen3moe: routing and expert scratch
};

}  // namespace xtile
