// `xtile bench`: llama-bench-style throughput tests on a loaded model (DESIGN.md §7).
//   pp<N>:       the prompt alone, N tokens in batches of -b (the GEMM path), from an empty cache.
//   tg<N>:       N tokens generated one at a time (the GEMV path) after a one-token prompt, as
//                llama-bench does; the one-token prompt is not timed.
//   pp<N>+tg<M>: both, t/s = (N + M) / total time.
//   "… @ d<D>":  the test runs after D tokens already in the cache (llama-bench's -d): the depth
//                is evaluated once, untimed, and every repetition continues from it.
//   tg<N> x<S>:  S sequences generate together (a server's batch of decoding slots, as
//                llama-batched-bench's -npl): each step is one forward pass of S rows, one per
//                sequence, every row with its logits; after an untimed one-token prompt per
//                sequence (and each sequence's own depth). t/s = S · N / time.
// One warm-up run, then `repetitions` timed runs; tokens are random ids (throughput does not
// depend on them) drawn from a fixed seed.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "cpu/thread_pool.h"
#include "model/kv_cache.h"
#include "model/weights.h"

namespace xtile {

struct BenchTest {
  int64_t n_prompt = 0;
  int64_t n_gen = 0;
  int64_t n_depth = 0;
  int n_seq = 1;             // sequences decoding together (tg tests only)
  std::string name() const;  // "pp512", "tg128", "pp512+tg128", "tg128 @ d4096", "tg128 x8"
};

struct BenchResult {
  BenchTest test;
  std::vector<double> seconds;  // per timed repetition
  double mean_tps = 0.0;        // tokens per second, mean over repetitions
  double sd_tps = 0.0;          // sample standard deviation
};

// Bytes of weights one generated token reads: every matrix once (packed bytes, or f32 bytes of
// the float path); in a MoE layer the router and the n_used experts a token selects, not all.
uint64_t weight_bytes_per_token(const WeightStore& w);
// Int8 ops (2 per multiply-accumulate) of the quantized matmuls of a prompt of n_tokens: every
// layer for every token, the output projection for the last token only (a prompt's logits are
// the last row's). Attention and norms are not counted.
double prompt_matmul_ops(const WeightStore& w, int64_t n_tokens);
// Int8 ops of the quantized matmuls of one generated token with its logits: every layer and the
// output projection (a batched step's rows each pay both).
double token_matmul_ops(const WeightStore& w);
// Bytes of KV cache one generated token reads on average over a test: every layer's K and V of
// every position before it (from depth + 1 to depth + n_gen).
uint64_t kv_bytes_per_token(const WeightStore& w, KvType type_k, KvType type_v, int64_t depth,
                            int64_t n_gen);

using BenchProgress = std::function<void(const std::string& test, int rep, int reps)>;

// Runs one test on `weights` with a fresh session sized for it; rep -1 is the warm-up.
BenchResult run_bench_test(const WeightStore& weights, ThreadPool& pool, const BenchTest& test,
                           int repetitions, int64_t n_batch, const BenchProgress& progress = {},
                           KvType kv_type_k = KvType::f16, KvType kv_type_v = KvType::f16);

}  // namespace xtile
