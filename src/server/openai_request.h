// OpenAI request bodies -> what the scheduler runs. Every field is type-checked and
// range-checked; a wrong one is a 400 naming it (ApiError). Unknown fields are ignored, as
// OpenAI's clients send extras; fields that would change the output in a way xtile cannot do
// (schema keywords outside json_schema.h's subset, a strict tool's likewise, n > 1, echo, best_of,
// llama-server's mirostat, typical, DRY, XTC, top-n-sigma and dynamic temperature samplers
// when switched on) are refused
// rather than silently dropped. The body is read with its keys in the client's order: tool
// definitions go into the prompt as written.
//
// Fields: model, messages | prompt (text, token ids, or a one-element list of either), stream,
// stream_options.include_usage, max_tokens | max_completion_tokens | n_predict, temperature,
// top_k, top_p, min_p, repeat_penalty, repeat_last_n, presence_penalty, frequency_penalty,
// seed, stop, logprobs, top_logprobs, n_probs, ignore_eos, logit_bias, chat_template_kwargs.
// enable_thinking, reasoning_format, return_tokens, tools, tool_choice (auto, none, required,
// a named function),
// parallel_tool_calls, response_format (text, json_object, json_schema); messages with role "tool",
// assistant tool_calls and reasoning_content.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/chat_template.h"
#include "server/job.h"
#include "server/sampler_fields.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {

// Server-wide defaults a request may override (xtile serve's sampling flags).
struct RequestDefaults {
  SamplerParams sampler;  // seed unused: a request without one gets a random seed
  // DRY's sequence breakers for a request that names none (--dry-sequence-breaker).
  std::vector<std::string> dry_breakers = default_dry_breakers();
  int64_t max_tokens = -1;
  bool reasoning = true;  // split <think> blocks into reasoning_content
};

struct ParsedRequest {
  bool chat = false;
  std::string model;  // "" when absent
  bool stream = false;
  bool include_usage = false;
  std::vector<ChatMessage> messages;       // chat
  // chat: the tools' definitions as sent (keys in the client's order), for the template to
  // write (chat_prompt_text: as its `tojson` does).
  std::vector<nlohmann::ordered_json> tools;
  // chat: what the reply's calls are held to; null without tools or with tool_choice "none".
  // Its format is the template's, set when the request is submitted.
  std::shared_ptr<ToolCallRules> tool_rules;
  bool enable_thinking = true;             // chat_template_kwargs.enable_thinking
  // chat_template_kwargs.date_string and .tools_in_user_message: Llama 3.1-3.3's template
  // variables (ChatOptions); other templates have no use for them.
  std::string date_string;
  bool tools_in_user_message = true;
  bool reasoning = true;                   // split <think> into reasoning_content (chat)
  // Completions: the prompts (OpenAI's list of several; each a text or token ids). Each has n
  // choices; choice i of prompt p is choices[p * n + i].
  struct Prompt {
    std::optional<std::string> text;
    std::vector<int32_t> ids;
  };
  std::vector<Prompt> prompts;
  // Completions' `suffix`: the text after the insertion point, each prompt the text before it;
  // the model fills the middle (infill.h's layout; text prompts only).
  std::optional<std::string> suffix;
  GenerationParams gen;
  bool seed_given = false;
  // Choices per prompt (OpenAI's n, llama-server's n_cmpl): choice i is the request alone with
  // seed + i; 1..128 here, at most the server's slots (the handler checks).
  int n = 1;
  int best_of = 1;  // completions: choices made per prompt (>= n; the n best are returned)
  int top_logprobs = 0;        // alternatives per token in the response
  bool logprobs = false;       // logprobs in the response
  bool return_tokens = false;  // token ids in the response (llama-server's return_tokens)
  bool echo = false;           // completions: the text (and logprobs) start with the prompt's
  // logit_bias as sent: by token id, and by text (each of its tokens gets the bias, as
  // llama-server does), for the handler to check against the vocabulary and tokenize
  // (resolve_logit_bias). The server's own (-l) are in gen.sampler.logit_bias already.
  std::vector<std::pair<int64_t, float>> logit_bias_ids;
  std::vector<std::pair<std::string, float>> logit_bias_texts;
  // DRY's sequence breakers as sent (resolve_dry_breakers); empty while DRY is off.
  std::vector<std::string> dry_breakers;
  // grammar_lazy's triggers as sent: words, and tokens by id (resolve_grammar_triggers).
  std::vector<std::string> trigger_words;
  std::vector<int64_t> trigger_tokens;
};

// `chat`: /v1/chat/completions, else /v1/completions. Throws ApiError.
ParsedRequest parse_request(const nlohmann::ordered_json& body, bool chat,
                            const RequestDefaults& d);

// Adds the request's logit_bias to gen.sampler's (the server's): ids checked against the
// vocabulary, texts tokenized (without special tokens). Throws ApiError (400) for an id outside.
void resolve_logit_bias(const Tokenizer& tok, ParsedRequest* r);

// grammar_lazy's triggers as words (gen.grammar_triggers): a token trigger by its text. Throws
// ApiError (400) for an id outside the vocabulary or a token without text.
void resolve_grammar_triggers(const Tokenizer& tok, ParsedRequest* r);

// DRY's sequence breakers as the vocabulary's tokens (gen.sampler.dry_breakers).
void resolve_dry_breakers(const Tokenizer& tok, ParsedRequest* r);

// The body as JSON; 400 with the parser's position when it is not JSON or not an object.
nlohmann::ordered_json parse_body(const std::string& body);

}  // namespace xtile::server
