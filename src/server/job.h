// One generation request as the scheduler sees it, and the channel its results travel back on.
// The HTTP thread that owns the request builds a Job (prompt tokens and parameters, fixed from
// then on), submits it, and reads; the scheduler thread appends released text and tokens and
// finally marks it done. Everything the scheduler publishes is append-only, so a reader keeps a
// cursor and takes what is new: a slow reader gets several tokens' text in one piece.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "model/sampler.h"
#include "server/gbnf.h"
#include "server/json_schema.h"
#include "server/lazy_grammar.h"
#include "server/tool_call_prefix.h"

namespace xtile::server {

enum class FinishReason { kNone, kStop, kLength, kCancelled, kError };

// "stop", "length", ... as OpenAI spells finish_reason (kNone: null).
const char* finish_reason_name(FinishReason r);

// How an embedding pools the prompt's hidden states (the output norm's rows): the last
// position's (decoder models' embeddings, Qwen3-Embedding), the mean of all positions, or none
// (kTokens, llama.cpp's pooling "none": every position's row). kNone: not an embedding.
enum class Pooling { kNone, kLast, kMean, kTokens };
// llama.cpp's names: "last", "mean", "none" (kTokens); "" for kNone.
const char* pooling_name(Pooling p);

struct GenerationParams {
  SamplerParams sampler;    // temperature <= 0: greedy
  int64_t max_tokens = -1;  // -1: until the sequence's context is full
  std::vector<std::string> stop;
  int n_probs = 0;                 // most likely alternatives reported per token (0: none)
  bool logprobs = false;           // report each token's log-probability
  bool ignore_eos = false;         // end-of-generation tokens do not stop (load tests)
  // OpenAI's echo with logprobs: each prompt token's log-probability (and n_probs alternatives)
  // from the logits of the position before it, published before the generated tokens.
  bool prompt_logprobs = false;
  bool at_sequence_start = false;  // the first generated token starts the text (SPM space)
  bool json_object = false;        // JSON mode: the reply is one JSON object (json_prefix.h)
  std::shared_ptr<const JsonSchema> json_schema;  // and an instance of this schema (json_schema)
  // llama-server's `grammar`: the reply is one of this GBNF grammar's texts (gbnf_prefix.h).
  std::shared_ptr<const GbnfGrammar> grammar;
  // llama-server's grammar_lazy: the grammar holds from one of these words on (lazy_grammar.h).
  std::shared_ptr<const GrammarTriggers> grammar_triggers;
  // Function calling: the reply's <tool_call> blocks are held to the tools (tool_call_prefix.h).
  std::shared_ptr<const ToolCallRules> tool_calls;
  // A constrained reply (JSON mode, forced calls) may think first (the template thinks and the
  // client asked for it); the prompt opened a think block, so the reply starts inside one.
  bool may_think = false;
  bool starts_in_think = false;
  // An embedding instead of a reply (/v1/embeddings): the prompt is read and its hidden states
  // pooled (Job::embedding); nothing is generated.
  Pooling embedding = Pooling::kNone;
};

struct TokenOut {
  int32_t id = 0;
  float logprob = 0.0f;                        // when logprobs or n_probs was asked
  std::vector<std::pair<int32_t, float>> top;  // n_probs alternatives, most likely first
  // A prompt token (prompt_logprobs); the first has no log-probability (NaN, no alternatives).
  bool in_prompt = false;
};

struct JobStats {
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens found in a slot's cache (not recomputed)
  int64_t completion_tokens = 0;
  double queue_ms = 0.0;      // submitted -> first admitted to a slot
  double prompt_ms = 0.0;     // admitted -> first token
  double predicted_ms = 0.0;  // first token -> end
  int preemptions = 0;        // times its KV cache was dropped to make room (then recomputed)
  int slot = -1;              // the slot it ran in last
  std::string stop_word;      // the stop string that ended it ("" for any other end)
};

// Wakes the reader of several jobs (the n choices of one request) when any of them has news.
class JobSignal {
 public:
  uint64_t count() const;  // notifications so far
  // Waits up to `timeout` for a notification after the count `seen`.
  void wait_past(uint64_t seen, std::chrono::milliseconds timeout) const;
  void notify();

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  uint64_t count_ = 0;
};

class Job {
 public:
  // `signal`, when given, is notified beside the job's own readers.
  Job(std::vector<int32_t> prompt, GenerationParams params,
      std::shared_ptr<JobSignal> signal = nullptr)
      : prompt_(std::move(prompt)), params_(std::move(params)), signal_(std::move(signal)) {}

  const std::vector<int32_t>& prompt() const { return prompt_; }
  const GenerationParams& params() const { return params_; }

  // --- reader side ---------------------------------------------------------------------------
  struct Cursor {
    size_t text = 0;
    size_t tokens = 0;
  };
  struct Update {
    std::string text;              // released text since the cursor (whole UTF-8 characters)
    std::vector<TokenOut> tokens;  // tokens released since the cursor
    bool done = false;
  };
  // Waits up to `timeout` for text, tokens or the end beyond `cursor`; takes them and advances
  // the cursor. Returns false on timeout with nothing new.
  bool wait(Cursor* cursor, Update* out, std::chrono::milliseconds timeout);
  // After done: how it ended.
  FinishReason finish_reason() const;
  std::string error() const;  // non-empty when it failed
  int error_status() const;   // the HTTP status for the failure
  JobStats stats() const;
  // After done, for an embedding job: the pooled vector (n_embd floats, as the model gives it:
  // routes scale it), or with Pooling::kTokens one per prompt position.
  std::vector<std::vector<float>> embedding() const;
  // Asks the scheduler to stop it (client gone, stop button). Idempotent.
  void cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

  // --- scheduler side ------------------------------------------------------------------------
  void publish(std::string_view text, std::vector<TokenOut>* tokens);
  void finish(FinishReason reason, const JobStats& stats);
  // An embedding job's vectors, before finish().
  void set_embedding(std::vector<std::vector<float>> embedding);
  void fail(std::string message, int status, const JobStats& stats);

 private:
  const std::vector<int32_t> prompt_;
  const GenerationParams params_;
  const std::shared_ptr<JobSignal> signal_;
  void notify();
  std::atomic<bool> cancelled_{false};
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
  std::vector<TokenOut> tokens_;
  bool done_ = false;
  FinishReason reason_ = FinishReason::kNone;
  std::string error_;
  int error_status_ = 0;
  JobStats stats_;
  std::vector<std::vector<float>> embedding_;
};

}  // namespace xtile::server
