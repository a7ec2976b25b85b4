// The generation loop: the prompt in batches (GEMM), then one token at a time (GEMV), picking
// each next token from the last position's logits, until -n tokens or an end-of-generation
// token. No token is ever repacked or re-read from the file here (repack_count() stays put).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "model/session.h"

namespace xtile {

// Picks the next token from the last position's logits; `history` holds every token so far
// (prompt and generated), for repetition penalties.
using TokenPicker =
    std::function<int32_t(std::span<const float> logits, std::span<const int32_t> history)>;

// Greedy: the index of the largest logit (the lowest index on ties).
int32_t pick_greedy(std::span<const float> logits);

struct GenerateOptions {
  int64_t n_predict = 128;                // tokens to generate; -1: until the context is full
  TokenPicker pick;                       // empty: greedy
  std::function<bool(int32_t)> is_eog;    // empty: never stop before n_predict
  std::function<void(int32_t)> on_token;  // each generated token, as soon as it is picked
  // Called with the logits of every position processed, prompt included (the prompt then
  // computes logits for all its rows, not just the last).
  std::function<void(int64_t pos, int32_t token, std::span<const float> logits)> on_logits;
  // Also run the last generated token through the model, so that on_logits sees a row for
  // every token (prompt + generated), like a teacher-forced reference dump.
  bool eval_last = false;
};

struct GenerationTimings {
  int64_t prompt_tokens = 0;
  double prompt_ms = 0.0;
  int64_t eval_runs = 0;  // single-token forward passes after the prompt
  double eval_ms = 0.0;
  double sample_ms = 0.0;
};

struct GenerateResult {
  std::vector<int32_t> tokens;  // generated (an end-of-generation token included, last)
  bool stopped_at_eog = false;
  GenerationTimings timings;
};

// Fails with a message naming the problem when n_prompt tokens and then n_predict generated
// ones (-1: until the context is full) do not fit the session's context after what it already
// holds; returns the tokens to generate. generate() calls it first; a caller that prints the
// prompt before generating calls it before printing, so that an error is not glued to the echo.
int64_t check_generation_fits(const Session& session, int64_t n_prompt, int64_t n_predict);

// Starts at session.n_past() (normally 0). Throws xtile::Error before evaluating anything when
// the prompt is empty, longer than the context, or prompt + n_predict exceeds the context.
GenerateResult generate(Session& session, std::span<const int32_t> prompt,
                        const GenerateOptions& options);

}  // namespace xtile
