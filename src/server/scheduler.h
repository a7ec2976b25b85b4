// The inference loop of `xtile serve` and `xtile chat`: one thread owns the Session (one
// sequence per slot, one KV budget shared by all) and the thread pool; HTTP threads only
// submit Jobs and read their results.
//
// Continuous batching: each step is one Session::eval_rows over
//   - the next token of every slot that is generating, and
//   - a chunk of the prompts waiting to be read (oldest first), up to n_batch rows in all,
// so a long prompt delays the others by one chunk's time per step, never by its whole length.
// A row's results do not depend on the other rows (Session's contract), so a request gives the
// same tokens and log-probabilities alone or beside others, in any slot, at any chunking.
//
// KV budget: when the next step does not fit, idle slots' caches are dropped first (least
// recently used first), then the youngest running request is preempted: its cache is dropped
// and it goes back to the front of the queue, to be recomputed later with the same bits (its
// tokens and sampler state are kept). One request alone always fits (n_ctx <= budget).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <span>
#include <thread>
#include <vector>

#include "cpu/thread_pool.h"
#include "model/kv_cache.h"
#include "model/session.h"
#include "model/weights.h"
#include "server/job.h"
#include "server/metrics.h"
#include "server/reply_constraint.h"
#include "server/slots.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {

struct SchedulerOptions {
  int n_slots = 4;
  int64_t n_ctx = 4096;      // positions one request may hold (prompt + generated)
  int64_t kv_budget = 4096;  // positions all slots hold together (>= n_ctx)
  int64_t n_batch = 256;     // rows per step
  int64_t max_queue = 64;    // requests waiting for a slot before submit() refuses
  KvType kv_type_k = KvType::f16;
  KvType kv_type_v = KvType::f16;
};

class Scheduler {
 public:
  // Builds the Session (which runs the tier's self-check) and starts the loop's thread. The
  // pool is used by that thread only from now on.
  Scheduler(const WeightStore& weights, ThreadPool& pool, const Tokenizer& tokenizer,
            const SchedulerOptions& options, Metrics& metrics);
  // Stops the loop; jobs still queued or running fail with 503.
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Queues a job (the prompt must be 1..n_ctx tokens of the vocabulary: the caller checks, to
  // answer 400 with the counts). kQueueFull when max_queue jobs already wait (the caller
  // answers 429); the job is not touched then.
  enum class Submit { kQueued, kQueueFull, kStopping };
  Submit submit(std::shared_ptr<Job> job);
  // The choices of one request, queued together or not at all; the queue takes them when it has
  // room for one request. A prompt is read once: a job whose prompt an earlier one of them has
  // waits until that one has read it, then copies its KV cache (Session::copy_prefix).
  Submit submit(const std::vector<std::shared_ptr<Job>>& choices);
  void stop();

  const SchedulerOptions& options() const { return o_; }
  // Seconds a client should wait before retrying after a refusal (Retry-After): the average
  // request time so far times the queue length per slot, 1 .. 3600.
  int retry_after_seconds() const;

 private:
  void loop();
  bool has_active() const;
  void drop_cancelled();
  void admit();
  // One forward pass over the generating slots' next tokens and a chunk of prompts; false when
  // nothing ran.
  bool step();
  // Drops the least recently used idle slot's cache, other than `spare`'s; false when there is
  // none.
  bool evict_idle(int spare = -1);
  // Whether the queued work is a later choice whose first choice is still reading the prompt.
  bool waits_for_leader(const Work& w) const;
  // Slot `id`, about to run `w`, starts with the longest prefix of w's input that any slot's
  // cache holds: its own cache's part is kept, a longer one of another slot is copied.
  // Returns the positions it starts with (at most all of the input but the last token).
  size_t reuse_prefix(Slot& s, const Work& w);
  // Sends the youngest running request back to the front of the queue without its KV cache;
  // false when fewer than two run.
  bool preempt_youngest();
  // A row of logits_: sampled from (pos -1) or scoring prompt token pos + 1 (echo).
  struct LogitUse {
    Slot* slot;
    int64_t pos;
  };
  static constexpr int64_t kScoredRowsPerStep = 32;  // 19 MB of logits for Qwen's vocabulary
  // Publishes the prompt tokens' log-probabilities the step's scoring rows give.
  void score_prompts(const std::vector<LogitUse>& uses);
  // Pools each embedding slot's rows of hidden_ (in row order) and ends the slots whose prompt
  // is read.
  void pool_embeddings(const std::vector<Slot*>& hidden_slots);
  // Samples the next token of each slot from its row of logits_ (slot, row), then releases text
  // and ends the requests that are done.
  void sample(const std::vector<std::pair<Slot*, size_t>>& slot_rows);
  const TokenBytes& token_bytes();  // built on first use (scheduler thread)
  // Hands the job the text released so far and the tokens it covers (all when finished).
  void emit(Slot& slot, bool finished);
  void end(Slot& slot, FinishReason reason);
  void fail_work(std::unique_ptr<Work> w, const std::string& message, int status);
  void update_gauges();
  int64_t kv_free() const { return session_->kv_budget() - session_->kv_used(); }
  int64_t active_positions() const;

  const Tokenizer& tok_;
  ThreadPool& pool_;
  SchedulerOptions o_;
  Metrics& m_;
  std::unique_ptr<Session> session_;
  std::vector<Slot> slots_;
  std::vector<float> logits_;
  std::vector<float> hidden_;                // the step's hidden-state rows (embeddings)
  std::unique_ptr<TokenBytes> token_bytes_;  // constrained decoding's, once one asks
  uint64_t clock_ = 0;       // slot use order
  uint64_t admissions_ = 0;  // work admission order

  std::mutex mu_;  // guards queue_, stop_
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Work>> queue_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace xtile::server
