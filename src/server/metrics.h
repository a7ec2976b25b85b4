// Server counters, written by the scheduler and the HTTP threads with atomics and read by
// GET /metrics without ever waiting for the inference thread. Rendered as Prometheus text
// with llama-server's metric names under the "xtile:" prefix (so dashboards port), plus the
// KV budget, queue and preemption figures llama-server lacks.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

namespace xtile::server {

// One slot as GET /slots shows it (llama-server's route).
struct SlotView {
  int id = 0;
  bool processing = false;
  int64_t n_cached = 0;    // tokens in its KV cache (kept after a request, for prefix reuse)
  int64_t n_prompt = 0;    // the running request's prompt tokens
  int64_t n_decoded = 0;   // and the tokens it has generated
  int64_t n_predict = -1;  // and its max_tokens (-1: until the context is full)
};

struct Metrics {
  // Tokens and the wall time spent on them. A step that mixes prompt rows and generated rows
  // splits its time between the two in proportion to the rows.
  std::atomic<uint64_t> prompt_tokens_total{0};     // prompt rows evaluated
  std::atomic<uint64_t> cached_tokens_total{0};     // prompt tokens reused from a slot's cache
  std::atomic<uint64_t> copied_tokens_total{0};     // of those, copied from another slot's
  std::atomic<uint64_t> tokens_predicted_total{0};  // tokens sampled
  std::atomic<double> prompt_seconds_total{0.0};
  std::atomic<double> predicted_seconds_total{0.0};
  std::atomic<uint64_t> decode_total{0};      // forward passes (scheduler steps)
  std::atomic<uint64_t> busy_slots_total{0};  // sum over steps of the slots in the step
  std::atomic<int64_t> tokens_max{0};         // most rows in one step

  // Requests.
  std::atomic<uint64_t> requests_total{0};         // admitted to the queue
  std::atomic<uint64_t> requests_finished{0};      // ended normally (stop or length)
  std::atomic<uint64_t> requests_cancelled{0};     // client gone or stopped
  std::atomic<uint64_t> requests_failed{0};        // ended with an error
  std::atomic<uint64_t> requests_rejected{0};      // 429: the queue was full
  std::atomic<uint64_t> preemptions_total{0};      // KV caches dropped to make room
  std::atomic<double> request_seconds_total{0.0};  // admitted -> end, of the finished ones
  std::atomic<int64_t> requests_processing{0};     // in a slot
  std::atomic<int64_t> requests_deferred{0};       // waiting in the queue

  // KV cache: positions held by every slot (idle slots keep their prompt cache), the budget they
  // share, and the bytes allocated now.
  std::atomic<int64_t> kv_used{0};
  std::atomic<int64_t> kv_budget{0};
  std::atomic<uint64_t> kv_bytes{0};
  std::atomic<int64_t> slots_total{0};

  // The slots, copied by the scheduler after each step; the lock is held only for the copy, so
  // GET /slots never waits for a forward pass.
  mutable std::mutex slots_mu;
  std::vector<SlotView> slots;

  const std::chrono::system_clock::time_point start = std::chrono::system_clock::now();

  // Prometheus text exposition format (version 0.0.4).
  std::string render() const;
};

}  // namespace xtile::server
