// Perplexity and KL-divergence over a tokenized text, chunked and scored exactly as
// llama-perplexity does, so that the figures are comparable:
//   - the text is tokenized once (BOS first when the vocabulary adds one) and cut into
//     n_chunk = ⌊tokens / n_ctx⌋ chunks (at least 2·n_ctx tokens are required), or fewer with
//     --chunks;
//   - chunk i is tokens[i·n_ctx, (i+1)·n_ctx) with its first token replaced by BOS (when the
//     vocabulary adds one), evaluated from an empty cache;
//   - only the second half is scored: the logits at positions first = n_ctx/2 .. n_ctx − 2
//     predict tokens first + 1 .. n_ctx − 1 (n_ctx − 1 − first tokens per chunk);
//   - PPL = exp(mean nll), its uncertainty ppl · sqrt(var(nll) / (count − 1)).
// Rows are scored in parallel and accumulated in position order: the result does not depend
// on the thread count, and, since the logits do not depend on the kernel tier, neither on it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "cpu/thread_pool.h"
#include "model/kl_divergence.h"
#include "model/kld_base_file.h"
#include "model/session.h"

namespace xtile {

struct ChunkPlan {
  int64_t n_ctx = 0;
  int64_t n_chunk = 0;
  int64_t first = 0;  // first scored logits row: n_ctx / 2
  int64_t scored_per_chunk() const { return n_ctx - 1 - first; }
};

// The chunks of a text of n_tokens; max_chunks < 0: all. Throws xtile::Error when n_ctx < 3 or
// the text has fewer than 2·n_ctx tokens (llama-perplexity's rule).
ChunkPlan plan_chunks(int64_t n_tokens, int64_t n_ctx, int64_t max_chunks);

// Chunk `chunk` as evaluated: its tokens with the first one replaced by `bos` (when bos >= 0).
std::vector<int32_t> chunk_input(std::span<const int32_t> tokens, const ChunkPlan& plan,
                                 int64_t chunk, int32_t bos);

// Logits of positions pos .. pos + rows.size()/n_vocab − 1 of the chunk being evaluated.
using LogitRows = std::function<void(int64_t pos, std::span<const float> rows)>;

// Something that turns a chunk into logits: the model (SessionEvaluator), or a test's model
// whose logits are known.
class ChunkEvaluator {
 public:
  virtual ~ChunkEvaluator() = default;
  virtual int64_t n_vocab() const = 0;
  // Evaluates `tokens` from an empty context and hands over the logits of positions first ..
  // tokens.size() − 1, in ascending order, in one or more calls.
  virtual void eval_chunk(std::span<const int32_t> tokens, int64_t first,
                          const LogitRows& on_rows) = 0;
};

// The model through a Session (its context must hold n_ctx positions). The first half of a
// chunk runs with the last row's logits only, the rest in batches of the session's n_batch with
// every row's (at most n_batch rows of logits are held at once); the logits are the same bits as
// one batch over the whole chunk (the forward pass does not depend on the batch split).
class SessionEvaluator final : public ChunkEvaluator {
 public:
  explicit SessionEvaluator(Session& session) : session_(session) {}
  int64_t n_vocab() const override { return session_.n_vocab(); }
  void eval_chunk(std::span<const int32_t> tokens, int64_t first,
                  const LogitRows& on_rows) override;

 private:
  Session& session_;
  std::vector<float> logits_;
};

// Running totals after each chunk.
struct PerplexityState {
  int64_t chunk = 0;  // chunks done
  int64_t count = 0;  // tokens scored
  double sum_nll = 0.0;
  double sum_nll2 = 0.0;
  std::vector<double> chunk_ppl;  // the running PPL after each chunk ([1]x,[2]y,... of llama)
  double ppl() const;
  double ppl_error() const;  // 0 when it cannot be estimated (fewer than 2 tokens, no spread)
};

struct PerplexityRequest {
  std::span<const int32_t> tokens;  // the whole tokenized text
  ChunkPlan plan;
  int32_t bos = -1;                   // substituted at each chunk's start when >= 0
  KldBaseWriter* base_out = nullptr;  // also write each chunk's encoded rows
  std::function<void(const PerplexityState&)> on_chunk;
};

PerplexityState compute_perplexity(ChunkEvaluator& model, ThreadPool& pool,
                                   const PerplexityRequest& request);

// Running totals of a comparison against a base file after each chunk.
struct KldState {
  int64_t chunk = 0;
  int64_t n_chunk = 0;
  KldStats stats;
};

struct KldRequest {
  KldBaseReader* base = nullptr;  // header checked against the model by the caller
  int64_t max_chunks = -1;        // < 0: every chunk of the base
  int32_t bos = -1;
  std::function<void(const KldState&)> on_chunk;
};

KldState compute_kl_divergence(ChunkEvaluator& model, ThreadPool& pool, const KldRequest& request);

}  // namespace xtile
