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
#include "ops/attention.h"

namespace xtile {

struct SessionOptions {
  int64_t n_ctx = 0;      // KV cache positions of one sequence; 0: the model's context length
  int64_t n_batch = 512;  // rows per forward batch
  KvType kv_type = KvType::f16;          // K, and V unless kv_type_v is set
  std::optional<KvType> kv_type_v = std::nullopt;  // (initialized: aggregate inits may omit it)
  // Sequences evaluated together (a server's slots). With more than one, each sequence's cache
  // is allocated when first used and grows with it (doubling, up to n_ctx), and the positions
  // held by all sequences together may not exceed kv_budget (0: n_ctx · n_seq_max).
  int n_seq_max = 1;
  int64_t kv_budget = 0;
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

  // Several sequences in one forward pass (continuous batching): row i is `token` of sequence
  // `seq` at that sequence's next position (its n_past, then +1 for each earlier row of the same
  // sequence in `rows`). logits receives n_vocab floats for each row with `logits` set, in row
  // order; `hidden`, when given, n_embd floats for each row with `hidden` set: the last layer's
  // output after the output norm, what the output head reads (an embedding). A row's results
  // are the same bits whatever else is in the batch (every operation is per row or per
  // sequence). Throws, evaluating nothing, when a sequence would exceed n_ctx, the positions of
  // all sequences the KV budget, or a token id the vocabulary.
  struct Row {
    int32_t seq = 0;
    int32_t token = 0;
    bool logits = false;
    bool hidden = false;
  };
  void eval_rows(std::span<const Row> rows, std::vector<float>* logits,
                 std::vector<float>* hidden = nullptr);

  // Sequence 0 (the single-sequence API).
  int64_t n_past() const { return n_past_[0]; }
  void reset() { n_past_[0] = 0; }
  // Forgets the positions from n on (n <= n_past()); the cache keeps 0..n-1, so evaluation
  // continues as if only those had been evaluated (a bench's depth, a chat's shared prefix).
  void truncate(int64_t n) { truncate(0, n); }
  const KvCache& kv_cache() const { return *kv_[0]; }

  // Any sequence (0 <= seq < n_seq_max).
  int64_t n_past(int seq) const { return n_past_.at(static_cast<size_t>(seq)); }
  void truncate(int seq, int64_t n);
  // Forgets every position of sequence seq and, with several sequences, frees its cache (it is
  // allocated again when the sequence is next used): a server dropping an idle slot's cache.
  void release(int seq);
  // Forgets every position of sequence seq for the next request of a server slot: a cache of the
  // first allocation's size stays (its pages touched: a new 256-position cache of qwen3-1.7b is
  // 29 MB of page faults and zeroing), a larger one is freed as by release(). Idle slots thus
  // hold at most kFirstKvPositions each.
  void clear(int seq);
  // Sequence dst becomes the first n positions of sequence src (0 < n <= n_past(src), src !=
  // dst): their K/V bytes are copied. A cached position's K/V depends only on the tokens up to
  // it (rows do not depend on their batch), so the copy is what evaluating those tokens in dst
  // would have stored: a server's request that starts as another slot's cache does not read
  // that prefix again. Fails when the budget cannot hold dst's n positions.
  void copy_prefix(int src, int dst, int64_t n);
  static constexpr int64_t kFirstKvPositions = 256;  // a sequence's first cache allocation
  // Positions held by all sequences, and the budget they share.
  int64_t kv_used() const;
  int64_t kv_budget() const { return kv_budget_; }
  // Bytes of KV cache allocated now (sequences allocate as they grow).
  size_t kv_bytes() const;

  int64_t n_ctx() const { return n_ctx_; }
  int64_t n_batch() const { return n_batch_; }
  int64_t n_vocab() const { return weights_.config().n_vocab; }
  int n_seq_max() const { return static_cast<int>(n_past_.size()); }
  const WeightStore& weights() const { return weights_; }

 private:
  // T rows (tokens, their sequences and positions in pos_/seq_) through the layers; then the
  // rows of logit_rows get logits (in that order) and those of hidden_rows their normed hidden
  // state (n_embd floats each).
  void forward_batch(const int32_t* tokens, int64_t t, const std::vector<int64_t>& logit_rows,
                     const std::vector<int64_t>& hidden_rows, float* logits, float* hidden);
  void attention_block(int64_t layer, int64_t t);
  // Grows sequence seq's cache to hold at least n positions (copying what it holds).
  void reserve(int seq, int64_t n);
  // The dense SwiGLU feed-forward: out = (silu(h Wg^T) ⊙ h Wu^T) Wd^T for t rows of h; for a
  // MoE layer, the mixture of experts (moe_).
  void ffn_block(int64_t layer, const float* h, float* out, int64_t t);
  // y[r, 0..p.n) = x[r, 0..p.k) · W^T for r < rows: quantizes x once for every packed part.
  // `then` is the projection the forward pass runs next (its weights are prefetched by
  // threads that wait at the end of a GEMV), or null when that is not known.
  void project(const Projection& p, const float* x, int64_t ldx, int64_t rows, float* y,
               int64_t ldy, const Projection* then);
  // The projection that follows layer l's feed-forward: layer l + 1's [q | k | v], or the output
  // head after the last layer.
  const Projection* after_ffn(int64_t layer) const;
  void add_rows(float* x, const float* y, int64_t rows, int64_t n);

  const WeightStore& weights_;
  const ModelConfig& c_;
  ThreadPool& pool_;
  int64_t n_batch_;
  int64_t n_ctx_;
  int64_t kv_budget_;
  KvType kv_type_k_, kv_type_v_;
  std::vector<std::unique_ptr<KvCache>> kv_;  // per sequence (null until used)
  std::vector<int64_t> n_past_;               // per sequence
  std::vector<int32_t> seq_;                  // per batch row: its sequence
  std::vector<double> inv_freq_;  // RoPE, n_rot / 2
  // Scratch, n_batch rows each.
  std::vector<float> x_, h_, qkv_, att_, gate_up_, ffn_h_, ffn_out_;
  std::vector<int64_t> pos_;
  std::vector<float> rope_scratch_;       // per thread: cos, sin (n_rot floats)
  std::vector<float> attention_scratch_;  // ops::attention's per-thread scores
  ops::AttentionPath attention_path_ = ops::AttentionPath::lanes;  // see the constructor
  ActBuffer acts_;
  std::unique_ptr<MoeFfn> moe_;  // qwen3moe: routing and expert scratch
};

}  // namespace xtile
