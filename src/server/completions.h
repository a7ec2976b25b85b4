// POST /v1/chat/completions, /v1/completions and llama-server's own /completion: the request
// becomes prompt tokens (the chat
// template for messages), is checked against the context, queued, and answered either in one
// JSON body or as a stream of server-sent events (sse.h). While it waits, the handler checks
// every 100 ms that the client is still connected, and cancels the job when it is not.
#pragma once

#include <httplib.h>

#include <memory>
#include <string>
#include <vector>

#include "server/connection.h"
#include "server/job.h"
#include "server/openai_request.h"
#include "server/openai_response.h"
#include "server/server_state.h"
#include "server/structured_events.h"
#include "server/tool_calls.h"

namespace xtile::server {

// The chat template applied to a request's messages (and its enable_thinking): the prompt text
// of /v1/chat/completions and /apply-template. Throws ApiError when the template refuses them.
std::string chat_prompt_text(const ServerState& st, const ParsedRequest& r);
// The same with other messages in place of the request's (a chat cut to the context).
std::string chat_prompt_text(const ServerState& st, const ParsedRequest& r,
                             const std::vector<ChatMessage>& messages);

// The format the reply's tool calls are taken out in: the template's when the request offers
// tools (set by submit_request), else kNone.
ToolCallFormat tool_format(const ParsedRequest& r);

// A chat reply's whole text split as the response carries it: the think block (when the
// request splits reasoning out), the content, and the tool calls taken out of it (with tools).
void split_reply(const ParsedRequest& r, bool in_reasoning, std::string text,
                 std::string* reasoning, std::string* content, std::vector<ToolCallOut>* calls);

// The route's request and response shapes: OpenAI's chat or text completion, or llama-server's
// /completion (a text completion's request, native_response.h's answer).
enum class Endpoint { kChat, kText, kNative };

// A request made into prompt tokens and queued as its n choices (jobs[i]: choice i).
struct Submitted {
  std::vector<std::shared_ptr<Job>> jobs;
  std::vector<std::string> echo;  // with echo: each job's prompt text, which its text starts with
  std::shared_ptr<JobSignal> signal;  // with several choices
  bool in_reasoning = false;          // the prompt opened a think block
};

// The prompt of `r` as the endpoint reads it (kChat: the template over its messages), checked
// against the vocabulary and the context, and queued (429 with Retry-After when the queue is
// full). Throws ApiError.
Submitted submit_request(ServerState& st, ParsedRequest& r, Endpoint endpoint,
                         httplib::Response& res);

// Queues the jobs of one request (all or none): 429 with Retry-After when the queue is full,
// 503 when the server is stopping (ApiError).
void queue_jobs(ServerState& st, const std::vector<std::shared_ptr<Job>>& jobs,
                httplib::Response& res);

// The 400 of a prompt longer than a request's context (-c), with the counts; `param` names the
// field.
void check_prompt_length(int64_t n_prompt, int64_t n_ctx, const std::string& param);

// The 404 of a request whose "model" (`name`, "" when absent) is not the one the server runs.
void check_requested_model(const ServerState& st, const std::string& name);

// Reads every choice to its end (non-streamed answers); false when the client went away (the
// jobs are cancelled and res.status is 499). Throws ApiError when a choice failed.
bool read_all(const Submitted& sub, const ClientConnection& conn, httplib::Response& res,
              std::vector<std::string>* texts, std::vector<std::vector<TokenOut>>* tokens);

// One chat answer read whole and split as split_reply does: the non-streamed reply of the routes
// with one choice in their own shapes (Anthropic's, the Responses'). False when the client went
// away (as read_all). Throws ApiError when the answer failed.
struct ChatReply {
  std::string thinking, text;
  std::vector<ToolCallOut> calls;
  FinishReason reason = FinishReason::kNone;
  JobStats stats;
};
bool read_chat_reply(const ParsedRequest& r, const Submitted& sub, const ClientConnection& conn,
                     httplib::Response& res, ChatReply* out);

// Streams a chat request's one answer as `events` writes it (structured_events.h).
void stream_chat_events(const ServerState& st, const ParsedRequest& r, Submitted sub,
                        const ClientConnection& conn, httplib::Response& res, ResponseHead head,
                        std::shared_ptr<StructuredEvents> events);

// Throws ApiError for anything the client got wrong (the caller writes it).
void handle_completion(ServerState& st, const httplib::Request& req, httplib::Response& res,
                       Endpoint endpoint);
// The same with the body already read (a route that rewrites it: /infill).
void handle_completion(ServerState& st, const nlohmann::ordered_json& body,
                       const httplib::Request& req, httplib::Response& res, Endpoint endpoint);

}  // namespace xtile::server
