// Slots: the sequences of the shared Session. A slot holds the tokens its KV cache contains
// (kept after a request ends, so that the next request that starts the same way - a chat's
// next turn - does not recompute them) and the Work running in it, if any.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "model/sampler.h"
#include "server/job.h"
#include "server/reply_constraint.h"
#include "server/text_stream.h"

namespace xtile::server {

using Clock = std::chrono::steady_clock;

// A job's scheduler-side state. It survives preemption: the KV cache is dropped, but the
// tokens, the sampler's random state and the text so far are kept, so the request continues
// exactly where it was (its prompt and generated tokens are recomputed, with the same bits).
struct Work {
  Work(std::shared_ptr<Job> j, const Tokenizer& tokenizer);

  std::shared_ptr<Job> job;
  std::vector<int32_t> input;  // the prompt, then every generated token (the last one is not
                               // evaluated yet while the request runs)
  size_t n_prompt = 0;
  Sampler sampler;
  // JSON mode's or tool calls' grammar state (reply_constraint.h), from the first admission.
  std::unique_ptr<ReplyConstraint> constraint;
  TextStream text;
  // Generated tokens whose text is not released yet, with the bytes of text() before and
  // after each.
  struct Held {
    TokenOut token;
    size_t begin = 0, end = 0;
  };
  std::vector<Held> held;
  size_t text_published = 0;  // bytes of text.text() handed to the job
  int64_t n_generated = 0;    // sampled tokens (an end-of-generation token included)
  size_t prompt_scored = 0;   // prompt tokens whose log-probability is published (echo)
  // An embedding's pooled hidden states so far (mean pooling: their sum, in position order;
  // restarted at each admission, which reads the prompt from its start), or with
  // Pooling::kTokens the positions' rows so far.
  std::vector<double> pooled;
  std::vector<std::vector<float>> token_rows;
  uint64_t order = 0;         // admission order: preemption takes the youngest
  // The first choice of the same request (n > 1), whose prompt this one copies once it has
  // been read; null for a request's first choice.
  std::shared_ptr<const Job> leader;
  bool admitted_once = false;
  Clock::time_point submitted, admitted, first_token;
  JobStats stats;
};

struct Slot {
  int id = 0;
  std::vector<int32_t> cache;  // the tokens in this slot's KV cache, in position order
  std::unique_ptr<Work> work;  // null: idle
  uint64_t last_used = 0;      // a logical clock: the least recently used idle slot goes first
};

// Tokens shared by a and b from the start.
size_t common_prefix(std::span<const int32_t> a, std::span<const int32_t> b);

// The idle slot for `prompt`: the one whose cache shares the longest prefix with it, ties to
// the least recently used. -1 when every slot is busy.
int pick_slot(std::span<const Slot> slots, std::span<const int32_t> prompt);

}  // namespace xtile::server
