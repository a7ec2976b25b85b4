// Helpers shared by the whole-model tests (model_test.cpp, moe_test.cpp): the fixtures'
// reference files, a greedy run that records every position's logits, and the comparisons.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "cpu/thread_pool.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace xtile::test {

// "1, 403,407" → {1, 403, 407} (commas; empty items skipped).
std::vector<int32_t> parse_id_list(const std::string& text);
std::string read_text(const std::string& path);

// One row of fixtures/models/*.reference.tsv: position, input token, argmax, then the logits.
struct LogitsRow {
  int64_t pos = 0;
  int32_t token = 0;
  int32_t argmax = 0;
  std::vector<double> logits;
};
std::vector<LogitsRow> read_logits_tsv(const std::string& path);

struct GreedyRun {
  std::vector<int32_t> generated;
  std::vector<std::vector<float>> logits;  // one row per processed position
  std::vector<int32_t> inputs;             // the token of each row
};

// The prompt, then n greedy tokens, the last one evaluated too (a logits row for every token);
// the context is the model's, capped at 512.
GreedyRun run_greedy(const WeightStore& w, ThreadPool& pool, const std::vector<int32_t>& prompt,
                     int64_t n, int64_t batch = 512, KvType kv = KvType::f16);

// Same tokens and memcmp-identical logits at every position.
void expect_identical(const GreedyRun& a, const GreedyRun& b, const std::string& what);

// Every logit of the first ref.size() positions within tol of the reference.
void expect_logits_near(const std::vector<std::vector<float>>& got,
                        const std::vector<LogitsRow>& ref, double tol);

// Teacher-forces `tokens` in one batch (f32 KV cache) and expects every row's logits to be the
// bits of `run` (a prompt-then-one-at-a-time run over the same tokens).
void expect_one_batch_matches(const WeightStore& w, ThreadPool& pool,
                              const std::vector<int32_t>& tokens, const GreedyRun& run);

// BOS + "Once upon a time" in the fixtures' 512-token vocabulary.
inline const std::vector<int32_t> kOnceUponATime = {1, 403, 407, 261, 378};

}  // namespace xtile::test
