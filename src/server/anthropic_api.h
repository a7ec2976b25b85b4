// Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens), for the clients
// written against it: the anthropic SDKs, and agents pointed at a local server through
// ANTHROPIC_BASE_URL. As with Ollama's routes, a request becomes the OpenAI chat request it means
// and runs through the same parser, template and scheduler, so it keeps every promise of the
// OpenAI route (batch-invariant bits, tool calls held to their schemas, JSON output); only the
// shapes differ:
//   request:  system (text or text blocks), messages of user / assistant turns whose content is
//             text or blocks (text, thinking, tool_use; tool_result in user turns), tools
//             {name, description, input_schema}, tool_choice {auto, any, tool, none},
//             thinking {enabled, disabled, adaptive}, stop_sequences, max_tokens (the
//             server's limit when absent), an assistant turn last (a prefill, continued),
//             temperature, top_p, top_k, output_format (a JSON schema the text follows);
//             and the OpenAI route's seed, min_p, repeat_penalty, presence_penalty,
//             frequency_penalty, ignore_eos and chat_template_kwargs.
//   response: {"id": "msg_...", "type": "message", "role": "assistant", "content": [thinking,
//             text, tool_use blocks], "stop_reason", "stop_sequence", "usage"}.
//   stream:   server-sent events with names: message_start, content_block_start / _delta /
//             _stop per block, message_delta (stop_reason, usage), message_stop; ping.
//   errors:   {"type": "error", "error": {"type", "message"}}.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/job.h"
#include "server/structured_events.h"
#include "server/tool_calls.h"

namespace xtile::server {

struct AnthropicRequest {
  nlohmann::ordered_json openai;  // the OpenAI chat request it means
  std::string model;
  bool stream = false;
};

// Throws ApiError (400 naming the Anthropic field) for what is malformed or what xtile does not
// do (images, documents, server tools). `count_only`: /v1/messages/count_tokens, whose body has
// no max_tokens.
AnthropicRequest anthropic_request(const nlohmann::ordered_json& body, bool count_only = false);

// {"type": "error", "error": {"type", "message"}}, the type Anthropic gives the status (400
// invalid_request_error, 401 authentication_error, 404 not_found_error, 413 request_too_large,
// 429 rate_limit_error, 503 overloaded_error, other 5xx api_error).
nlohmann::json anthropic_error(int status, const std::string& message);

// usage: input_tokens (the prompt's tokens not found in a slot's cache),
// cache_read_input_tokens (those found), cache_creation_input_tokens (0), output_tokens.
nlohmann::json anthropic_usage(const JobStats& s);

// The whole message (not streamed). A reply with no thinking, text or calls has one empty
// text block: clients read content[0].text.
nlohmann::json anthropic_message(const std::string& id, const std::string& model,
                                 const std::string& thinking, const std::string& text,
                                 const std::vector<ToolCallOut>& calls, FinishReason reason,
                                 const JobStats& s);

// A streamed message's events, each "event: NAME\ndata: {...}\n\n". Blocks open and close as the
// reply's parts arrive: thinking, then text, then each tool call in a block of its own (its
// arguments in one input_json_delta).
class AnthropicEvents : public StructuredEvents {
 public:
  AnthropicEvents(std::string id, std::string model)
      : id_(std::move(id)), model_(std::move(model)) {}

  // message_start: the message with no content yet and the prompt's token count.
  std::string start(int64_t prompt_tokens) override;
  std::string push(const std::string& thinking, const std::string& text,
                   const std::vector<ToolCallOut>& calls) override;
  // The open block's end, message_delta with the stop reason and the final usage, message_stop.
  std::string finish(FinishReason reason, const JobStats& s) override;
  std::string ping() const override;                                   // event: ping
  std::string error(int status, const std::string& message) override;  // event: error

 private:
  enum class Block { kNone, kThinking, kText };
  std::string open(Block b);
  std::string close();

  std::string id_, model_;
  Block open_ = Block::kNone;
  int index_ = -1;  // the last block's index
  bool called_ = false;
};

}  // namespace xtile::server
