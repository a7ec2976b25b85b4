#include "model/perplexity.h"

#include <algorithm>
#include <cmath>

#include "base/error.h"
#include "model/log_probs.h"

namespace xtile {

namespace {

size_t sz(int64_t n) {
  return static_cast<size_t>(n);
}

// An evaluator must hand over the rows of positions first .. n_ctx − 1 only: anything else
// would be scored against the wrong tokens (or written outside the chunk's base rows).
void check_rows(int64_t pos, size_t values, int64_t v, const ChunkPlan& plan) {
  if (pos < plan.first || values % sz(v) != 0 ||
      pos + static_cast<int64_t>(values / sz(v)) > plan.n_ctx)
    fail("perplexity: logits rows for positions ", pos, " + ", values / sz(v), " of a chunk of ",
         plan.n_ctx, " (scored from ", plan.first, ")");
}

// Scores rows [0, n) with fn(row, thread) on the pool: each row is computed by one thread into
// its own slot, so the caller can fold the results in order.
void for_each_row(ThreadPool& pool, int64_t n, const std::function<void(int64_t, int)>& fn) {
  pool.parallel_for(0, n, 1, [&](int64_t r0, int64_t r1, int thread) {
    for (int64_t r = r0; r < r1; ++r) fn(r, thread);
  });
}

}  // namespace

ChunkPlan plan_chunks(int64_t n_tokens, int64_t n_ctx, int64_t max_chunks) {
  if (n_ctx < 3) fail("the context size must be at least 3 for perplexity, got ", n_ctx);
  if (n_tokens < 2 * n_ctx)
    fail("the text tokenizes to only ", n_tokens, " tokens; perplexity with a context of ", n_ctx,
         " needs at least ", 2 * n_ctx, " (two chunks)");
  ChunkPlan p;
  p.n_ctx = n_ctx;
  p.n_chunk = n_tokens / n_ctx;
  if (max_chunks >= 0) p.n_chunk = std::min(p.n_chunk, max_chunks);
  if (p.n_chunk < 1) fail("--chunks must be at least 1");
  p.first = n_ctx / 2;
  return p;
}

std::vector<int32_t> chunk_input(std::span<const int32_t> tokens, const ChunkPlan& plan,
                                 int64_t chunk, int32_t bos) {
  const auto begin = tokens.begin() + chunk * plan.n_ctx;
  std::vector<int32_t> in(begin, begin + plan.n_ctx);
  if (bos >= 0) in[0] = bos;
  return in;
}

void SessionEvaluator::eval_chunk(std::span<const int32_t> tokens, int64_t first,
                                  const LogitRows& on_rows) {
  session_.reset();
  const int64_t n = static_cast<int64_t>(tokens.size());
  const int64_t v = session_.n_vocab();
  // The unscored half needs no logits but the last row's, which Session always computes.
  if (first > 0) session_.eval(tokens.first(sz(first)), /*all_logits=*/false, &logits_);
  for (int64_t p = first; p < n; p += session_.n_batch()) {
    const int64_t t = std::min(session_.n_batch(), n - p);
    session_.eval(tokens.subspan(sz(p), sz(t)), /*all_logits=*/true, &logits_);
    on_rows(p, std::span<const float>(logits_.data(), sz(t * v)));
  }
}

double PerplexityState::ppl() const {
  return std::exp(sum_nll / static_cast<double>(count));
}

double PerplexityState::ppl_error() const {
  if (count < 2) return 0.0;
  const double n = static_cast<double>(count);
  const double mean = sum_nll / n;
  const double var = sum_nll2 / n - mean * mean;
  return var > 0 ? std::sqrt(var / (n - 1)) * ppl() : 0.0;
}

PerplexityState compute_perplexity(ChunkEvaluator& model, ThreadPool& pool,
                                   const PerplexityRequest& request) {
  const ChunkPlan& plan = request.plan;
  const int64_t v = model.n_vocab();
  const int64_t row_size = encoded_row_size(v);
  if (static_cast<int64_t>(request.tokens.size()) < plan.n_chunk * plan.n_ctx)
    fail("perplexity: ", request.tokens.size(), " tokens for ", plan.n_chunk, " chunks of ",
         plan.n_ctx);
  PerplexityState state;
  std::vector<double> nll;
  std::vector<uint16_t> encoded;
  if (request.base_out) encoded.resize(sz(plan.scored_per_chunk() * row_size));

  for (int64_t c = 0; c < plan.n_chunk; ++c) {
    const int64_t start = c * plan.n_ctx;
    const std::vector<int32_t> input = chunk_input(request.tokens, plan, c, request.bos);
    model.eval_chunk(input, plan.first, [&](int64_t pos, std::span<const float> rows) {
      check_rows(pos, rows.size(), v, plan);
      // Rows at positions up to n_ctx − 2 predict a token of the chunk; the last one nothing.
      const int64_t n_rows = std::min(static_cast<int64_t>(rows.size()) / v, plan.n_ctx - 1 - pos);
      if (n_rows <= 0) return;
      nll.assign(sz(n_rows), 0.0);
      for_each_row(pool, n_rows, [&](int64_t r, int) {
        const std::span<const float> row = rows.subspan(sz(r * v), sz(v));
        const int32_t next = request.tokens[sz(start + pos + r + 1)];
        nll[sz(r)] = token_nll(row, next);
        if (request.base_out)
          encode_log_probs(row, encoded.data() + (pos + r - plan.first) * row_size);
      });
      for (double x : nll) {
        state.sum_nll += x;
        state.sum_nll2 += x * x;
      }
      state.count += n_rows;
    });
    if (request.base_out) request.base_out->write_chunk(encoded);
    state.chunk = c + 1;
    state.chunk_ppl.push_back(state.ppl());
    if (request.on_chunk) request.on_chunk(state);
  }
  return state;
}

KldState compute_kl_divergence(ChunkEvaluator& model, ThreadPool& pool, const KldRequest& request) {
  KldBaseReader& base = *request.base;
  const KldBaseHeader& h = base.header();
  const int64_t v = model.n_vocab();
  if (h.n_vocab != v)
    fail("KL-divergence base '", base.path(), "' has a vocabulary of ", h.n_vocab,
         " tokens, the model ", v, ": it was computed with another model's vocabulary");
  ChunkPlan plan;
  plan.n_ctx = h.n_ctx;
  plan.first = h.n_ctx / 2;
  plan.n_chunk =
      request.max_chunks < 0 ? h.n_chunk : std::min<int64_t>(h.n_chunk, request.max_chunks);
  const int64_t row_size = h.row_size();

  KldState state;
  state.n_chunk = plan.n_chunk;
  std::vector<uint16_t> base_rows;
  std::vector<RowKld> results;
  std::vector<std::vector<uint16_t>> scratch(sz(pool.size()));
  for (int64_t c = 0; c < plan.n_chunk; ++c) {
    base.read_chunk(&base_rows);
    const int64_t start = c * plan.n_ctx;
    const std::vector<int32_t> input = chunk_input(base.tokens(), plan, c, request.bos);
    model.eval_chunk(input, plan.first, [&](int64_t pos, std::span<const float> rows) {
      check_rows(pos, rows.size(), v, plan);
      const int64_t n_rows = std::min(static_cast<int64_t>(rows.size()) / v, plan.n_ctx - 1 - pos);
      if (n_rows <= 0) return;
      results.assign(sz(n_rows), RowKld{});
      for_each_row(pool, n_rows, [&](int64_t r, int thread) {
        const EncodedRow b(base_rows.data() + (pos + r - plan.first) * row_size, v);
        const int32_t next = base.tokens()[sz(start + pos + r + 1)];
        results[sz(r)] = compare_row(rows.subspan(sz(r * v), sz(v)), b, next, &scratch[sz(thread)]);
      });
      for (const RowKld& r : results) state.stats.add(r);
    });
    state.chunk = c + 1;
    if (request.on_chunk) request.on_chunk(state);
  }
  return state;
}

}  // namespace xtile
