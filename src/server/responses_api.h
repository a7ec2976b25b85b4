// OpenAI's Responses API (POST /v1/responses), which OpenAI's newer SDK helpers, the Agents SDK
// and coding agents speak. As with Ollama's and Anthropic's routes, a request becomes the chat
// request it means and runs through the same parser, template and scheduler (the same bits,
// tool calls held to their schemas, structured output); only the shapes differ:
//   request:  input (a string, or items: messages with input_text / output_text parts,
//             function_call, function_call_output, reasoning), instructions, max_output_tokens,
//             temperature, top_p, tools [{type: "function", name, description, parameters,
//             strict}], tool_choice, parallel_tool_calls, text.format (text, json_object,
//             json_schema), reasoning.effort (none / minimal: no thinking), stream; and the chat
//             route's seed, top_k, min_p, repeat_penalty, stop, ignore_eos, chat_template_kwargs.
//   response: {"id": "resp_...", "object": "response", "status", "output": [reasoning, message,
//             function_call items], "usage", ...} with the request's settings echoed.
//   stream:   named events response.created, response.in_progress, per item
//             response.output_item.added / .done, its content part's .added / .done and deltas
//             (output_text, reasoning_text, function_call_arguments), then response.completed
//             (or response.incomplete); each with a sequence_number.
// Responses are not stored: previous_response_id and conversation are refused (send the whole
// conversation in input).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/job.h"
#include "server/structured_events.h"
#include "server/tool_calls.h"

namespace xtile::server {

struct ResponsesRequest {
  nlohmann::ordered_json openai;  // the OpenAI chat request it means
  std::string model;              // "" when absent
  bool stream = false;
  // The settings a response object echoes (instructions, max_output_tokens, temperature and
  // top_p when given, tools, tool_choice, parallel_tool_calls, text, reasoning, metadata, ...).
  nlohmann::json echo;
};

// Throws ApiError (400 naming the Responses field).
ResponsesRequest responses_request(const nlohmann::ordered_json& body);

// The response object: `head` (id, created_at, model and the request's echo) with status,
// output items, usage and, when the answer was cut by max_output_tokens, incomplete_details.
nlohmann::json response_object(const nlohmann::json& head, FinishReason reason,
                               nlohmann::json output, const JobStats& s);

// The output items of a whole reply: a reasoning item (the think block), a message item (the
// text; also when nothing else came, empty), a function_call item per call.
nlohmann::json response_output(const std::string& thinking, const std::string& text,
                               const std::vector<ToolCallOut>& calls);

// The head of a response: id, object, created_at, model and the echoed settings.
nlohmann::json response_head(const std::string& id, const std::string& model,
                             const nlohmann::json& echo);

class ResponseEvents : public StructuredEvents {
 public:
  explicit ResponseEvents(nlohmann::json head) : head_(std::move(head)) {}

  // response.created and response.in_progress.
  std::string start(int64_t prompt_tokens) override;
  std::string push(const std::string& thinking, const std::string& text,
                   const std::vector<ToolCallOut>& calls) override;
  // The open item's end, then response.completed (response.incomplete when cut).
  std::string finish(FinishReason reason, const JobStats& s) override;
  std::string ping() const override;                                   // an SSE comment
  std::string error(int status, const std::string& message) override;  // response.failed

 private:
  enum class Item { kNone, kReasoning, kMessage };
  std::string event(const char* type, nlohmann::json data);
  std::string open(Item item);
  // Ends the open item (a message cut by the token limit is "incomplete").
  std::string close(const char* status = "completed");

  nlohmann::json head_;
  nlohmann::json output_ = nlohmann::json::array();  // the items so far (closed ones whole)
  Item open_ = Item::kNone;
  std::string item_id_;  // the open item's
  std::string text_;     // the open item's text so far
  int64_t sequence_ = 0;
};

}  // namespace xtile::server
