#include "model/benchmark.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>

#include "base/error.h"
#include "model/session.h"

namespace xtile {

std::string BenchTest::name() const {
  std::string n;
  if (n_prompt > 0 && n_gen > 0)
    n = "pp" + std::to_string(n_prompt) + "+tg" + std::to_string(n_gen);
  else if (n_prompt > 0)
    n = "pp" + std::to_string(n_prompt);
  else
    n = "tg" + std::to_string(n_gen);
  if (n_seq > 1) n += " x" + std::to_string(n_seq);
  return n_depth > 0 ? n + " @ d" + std::to_string(n_depth) : n;
}

namespace {

uint64_t projection_bytes(const Projection& p) {
  uint64_t bytes = 0;
  for (const Matrix& m : p.parts)
    bytes += m.packed ? m.pm.bytes : static_cast<uint64_t>(m.n * m.k) * sizeof(float);
  return bytes;
}

double projection_ops(const Projection& p) {
  double ops = 0;
  for (const Matrix& m : p.parts) ops += 2.0 * static_cast<double>(m.n) * static_cast<double>(m.k);
  return ops;
}

double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

namespace {

// A MoE layer per token: the router (f32) and the n_used experts' gate|up and down matrices.
// Every expert of a layer has the same shape and type, so expert 0 stands for any of them.
uint64_t moe_bytes_per_token(const MoeLayer& m, const MoeShape& shape) {
  auto bytes = [](const ExpertMatrix& e) {
    return e.packed ? static_cast<uint64_t>(e.pm.bytes)
                    : static_cast<uint64_t>(e.n * e.k) * sizeof(float);
  };
  const uint64_t router = static_cast<uint64_t>(shape.n_expert * shape.n_embd) * sizeof(float);
  return router + static_cast<uint64_t>(shape.n_used) * (bytes(m.gate_up[0]) + bytes(m.down[0]));
}

double moe_ops_per_token(const MoeShape& shape) {
  const double e = static_cast<double>(shape.n_embd), ff = static_cast<double>(shape.n_ff);
  return 2.0 * static_cast<double>(shape.n_used) * (2 * ff * e + ff * e);
}

// Bytes and ops of every layer's matrices for one token (the output projection excluded).
uint64_t layer_bytes_per_token(const WeightStore& w) {
  uint64_t bytes = 0;
  for (int64_t l = 0; l < w.config().n_layer; ++l) {
    const LayerWeights& L = w.layer(l);
    bytes += projection_bytes(L.qkv) + projection_bytes(L.out) + projection_bytes(L.gate_up) +
             projection_bytes(L.down);
    if (L.moe) bytes += moe_bytes_per_token(*L.moe, w.moe()->shape());
  }
  return bytes;
}

double layer_ops_per_token(const WeightStore& w) {
  double ops = 0;
  for (int64_t l = 0; l < w.config().n_layer; ++l) {
    const LayerWeights& L = w.layer(l);
    ops += projection_ops(L.qkv) + projection_ops(L.out) + projection_ops(L.gate_up) +
           projection_ops(L.down);
    if (L.moe) ops += moe_ops_per_token(w.moe()->shape());
  }
  return ops;
}

}  // namespace

uint64_t weight_bytes_per_token(const WeightStore& w) {
  return layer_bytes_per_token(w) + projection_bytes(w.output());
}

double prompt_matmul_ops(const WeightStore& w, int64_t n_tokens) {
  return static_cast<double>(n_tokens) * layer_ops_per_token(w) + projection_ops(w.output());
}

double token_matmul_ops(const WeightStore& w) {
  return layer_ops_per_token(w) + projection_ops(w.output());
}

uint64_t kv_bytes_per_token(const WeightStore& w, KvType type_k, KvType type_v, int64_t depth,
                            int64_t n_gen) {
  const ModelConfig& c = w.config();
  // Token i of the test (0-based) attends over depth + 1 + i + 1 positions (the untimed first
  // token of a tg test included); the mean over i < n_gen.
  const double positions = static_cast<double>(depth) + 1.5 + static_cast<double>(n_gen) / 2;
  return static_cast<uint64_t>(
      positions * static_cast<double>(c.n_layer * c.n_head_kv) *
      static_cast<double>(kv_row_bytes(type_k, c.head_dim) + kv_row_bytes(type_v, c.head_dim)));
}

namespace {

// Mean and sample standard deviation of tokens / seconds over the timed repetitions.
void summarize(BenchResult* result, double tokens) {
  double sum = 0, sum2 = 0;
  for (double s : result->seconds) sum += tokens / s;
  result->mean_tps = sum / static_cast<double>(result->seconds.size());
  for (double s : result->seconds)
    sum2 += (tokens / s - result->mean_tps) * (tokens / s - result->mean_tps);
  result->sd_tps = result->seconds.size() > 1
                       ? std::sqrt(sum2 / static_cast<double>(result->seconds.size() - 1))
                       : 0.0;
}

// A session for `test`: each sequence's cache holds every position of the test (a generation
// test's untimed one-token prompt included).
SessionOptions session_options(const BenchTest& test, int64_t n_batch, KvType kv_type_k,
                               KvType kv_type_v) {
  SessionOptions so;
  so.n_ctx = test.n_depth + test.n_prompt + test.n_gen + 1;
  so.n_batch = std::max<int64_t>(n_batch, test.n_seq);
  so.kv_type = kv_type_k;
  so.kv_type_v = kv_type_v;
  so.n_seq_max = test.n_seq;
  return so;
}

// tg<N> and tg<N> x<S> (benchmark.h): S sequences of one session (S = 1: llama-bench's tg), each
// with its own depth and one-token prompt (untimed), then N steps of S rows, every row with
// logits, as a server's decoding step.
BenchResult run_generation(const WeightStore& weights, ThreadPool& pool, const BenchTest& test,
                           int repetitions, int64_t n_batch, const BenchProgress& progress,
                           KvType kv_type_k, KvType kv_type_v) {
  const int n_seq = test.n_seq;
  Session session(weights, pool, session_options(test, n_batch, kv_type_k, kv_type_v));
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0,
                                               static_cast<int32_t>(weights.config().n_vocab - 1));
  std::vector<float> logits;
  std::vector<Session::Row> rows;
  if (test.n_depth > 0) {
    if (progress) progress(test.name() + " (filling the depth)", -1, repetitions);
    for (int s = 0; s < n_seq; ++s) {  // each sequence its own tokens, as a server's slots
      rows.clear();
      for (int64_t i = 0; i < test.n_depth; ++i) rows.push_back({s, token(rng), false});
      session.eval_rows(rows, &logits);
    }
  }
  BenchResult result;
  result.test = test;
  for (int rep = -1; rep < repetitions; ++rep) {  // rep -1: warm-up
    if (progress) progress(test.name(), rep, repetitions);
    rows.clear();
    for (int s = 0; s < n_seq; ++s) {
      session.truncate(s, test.n_depth);
      rows.push_back({s, token(rng), true});  // the untimed one-token prompts
    }
    session.eval_rows(rows, &logits);
    const double t0 = now();
    for (int64_t i = 0; i < test.n_gen; ++i) {
      for (Session::Row& r : rows) r.token = token(rng);
      session.eval_rows(rows, &logits);
    }
    const double dt = now() - t0;
    if (rep >= 0) result.seconds.push_back(dt);
  }
  summarize(&result, static_cast<double>(n_seq) * static_cast<double>(test.n_gen));
  return result;
}

}  // namespace

BenchResult run_bench_test(const WeightStore& weights, ThreadPool& pool, const BenchTest& test,
                           int repetitions, int64_t n_batch, const BenchProgress& progress,
                           KvType kv_type_k, KvType kv_type_v) {
  if (repetitions < 1) fail("bench: repetitions must be at least 1 (got ", repetitions, ")");
  if (test.n_prompt < 0 || test.n_gen < 0 || test.n_depth < 0 || test.n_prompt + test.n_gen == 0)
    fail("bench: test ", test.name(), " has no tokens");
  if (test.n_seq < 1 || (test.n_seq > 1 && test.n_prompt > 0))
    fail("bench: ", test.n_seq, " sequences: a batch of sequences is a generation test's (-np)");
  if (test.n_prompt == 0)
    return run_generation(weights, pool, test, repetitions, n_batch, progress, kv_type_k,
                          kv_type_v);
  // A prompt (then, for pp+tg, its generation), timed together, on sequence 0.
  Session session(weights, pool, session_options(test, n_batch, kv_type_k, kv_type_v));
  const int64_t n_vocab = weights.config().n_vocab;
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(n_vocab - 1));
  std::vector<int32_t> prompt(static_cast<size_t>(test.n_prompt));
  for (int32_t& t : prompt) t = token(rng);
  std::vector<float> logits;
  if (test.n_depth > 0) {  // the depth: evaluated once, untimed, kept for every repetition
    std::vector<int32_t> depth(static_cast<size_t>(test.n_depth));
    for (int32_t& t : depth) t = token(rng);
    if (progress) progress(test.name() + " (filling the depth)", -1, repetitions);
    session.eval(depth, false, &logits);
  }

  BenchResult result;
  result.test = test;
  for (int rep = -1; rep < repetitions; ++rep) {  // rep -1: warm-up
    if (progress) progress(test.name(), rep, repetitions);
    session.truncate(test.n_depth);
    const double t0 = now();
    session.eval(prompt, false, &logits);
    for (int64_t i = 0; i < test.n_gen; ++i) {
      const int32_t next = token(rng);
      session.eval({&next, 1}, false, &logits);
    }
    const double dt = now() - t0;
    if (rep >= 0) result.seconds.push_back(dt);
  }
  summarize(&result, static_cast<double>(test.n_prompt + test.n_gen));
  return result;
}

}  // namespace xtile
