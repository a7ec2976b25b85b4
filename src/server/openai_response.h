// Response bodies in OpenAI's shapes (chat.completion, chat.completion.chunk, text_completion),
// with llama-server's additions that clients use: usage.prompt_tokens_details.cached_tokens,
// timings {prompt_n, prompt_ms, predicted_n, predicted_ms, ...} and, on request, token ids.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <vector>

#include "server/job.h"
#include "server/tool_calls.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {

struct ResponseHead {
  std::string id;  // chatcmpl-... / cmpl-...
  int64_t created = 0;
  std::string model;
  std::string fingerprint;  // system_fingerprint: build and kernel tier
};

// A fresh id with the given prefix ("chatcmpl-", "cmpl-").
std::string make_id(const std::string& prefix);

nlohmann::json usage_json(const JobStats& s);
// The usage of a request's choices, n per prompt (OpenAI's): each prompt and its cached tokens
// once (its first choice's), the completion tokens of all.
nlohmann::json usage_json(std::span<const JobStats> choices, size_t n);
// The tokens' ids as a JSON array (return_tokens).
nlohmann::json token_ids_json(const std::vector<TokenOut>& tokens);
nlohmann::json timings_json(const JobStats& s);

// chat: {"content": [{id, token, bytes, logprob, top_logprobs: [{id, token, bytes, logprob}]}]}
nlohmann::json chat_logprobs(const std::vector<TokenOut>& tokens, const Tokenizer& tok);
// completions (legacy): {tokens, token_logprobs, top_logprobs: [{token: logprob}] (the n most
// likely and the sampled token), text_offset};
// *offset is the text offset of the first token, advanced past these.
nlohmann::json completion_logprobs(const std::vector<TokenOut>& tokens, const Tokenizer& tok,
                                   size_t* offset);

// One chunk of a streamed chat completion; finish_reason null until the last.
nlohmann::json chat_chunk(const ResponseHead& h, nlohmann::json delta,
                          nlohmann::json finish_reason = nullptr,
                          nlohmann::json logprobs = nullptr);
nlohmann::json completion_chunk(const ResponseHead& h, const std::string& text,
                                nlohmann::json finish_reason = nullptr,
                                nlohmann::json logprobs = nullptr);
// The usage chunk of stream_options.include_usage: no choices.
nlohmann::json usage_chunk(const ResponseHead& h, const char* object,
                           std::span<const JobStats> choices, size_t n);

// With tool calls the message carries them (content null when there is no other text) and an
// answer that ended by itself finishes with "tool_calls".
nlohmann::json chat_response(const ResponseHead& h, const std::string& content,
                             const std::string& reasoning, FinishReason reason, const JobStats& s,
                             nlohmann::json logprobs, const std::vector<ToolCallOut>& calls = {});
// finish_reason as sent: "tool_calls" instead of "stop" when the answer made calls.
nlohmann::json finish_reason_json(FinishReason reason, bool called = false);
nlohmann::json completion_response(const ResponseHead& h, const std::string& text,
                                   FinishReason reason, const JobStats& s, nlohmann::json logprobs);

}  // namespace xtile::server
