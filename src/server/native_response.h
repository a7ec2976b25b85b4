// llama-server's own /completion shape (not OpenAI's), for the scripts and tools written against
// it: {"content", "stop", "stop_type", "stopping_word", "tokens_predicted", "tokens_evaluated",
// "timings", ...}; streamed as `data: {"content": ..., "stop": false}` events and a last event
// with "stop": true and the figures, without OpenAI's `data: [DONE]`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/job.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {

// "eos", "word" (a stop string: stopping_word), "limit" (max tokens or the context), "none".
const char* native_stop_type(FinishReason reason, const JobStats& s);

// A streamed piece of text: {"index", "content", "stop": false} (+ "completion_probabilities"
// when `probs` is an array, "tokens" when `ids` is).
nlohmann::json native_chunk(const std::string& content, nlohmann::json probs, nlohmann::json ids);

// The whole answer (or, streamed, the last event with content ""): the chunk's fields with
// "stop": true, the model, the token counts, stop_type / stopping_word and timings.
nlohmann::json native_final(const std::string& content, const std::string& model,
                            FinishReason reason, const JobStats& s, nlohmann::json probs,
                            nlohmann::json ids);

// completion_probabilities: [{id, token, bytes, logprob, top_logprobs: [...]}] (llama-server's
// entries, as chat's logprobs content).
nlohmann::json native_probs(const std::vector<TokenOut>& tokens, const Tokenizer& tok);

}  // namespace xtile::server
