// POST /v1/chat/completions, /v1/completions and llama-server's own /completion: the request
// becomes prompt tokens (the chat
// template for messages), is checked against the context, queued, and answered either in one
// JSON body or as a stream of server-sent events (sse.h). While it waits, the handler checks
// every 100 ms that the client is still connected, and cancels the job when it is not.
#pragma once

#include <httplib.h>

#include <string>

#include "server/openai_request.h"
#include "server/server_state.h"

namespace xtile::server {

// The chat template applied to a request's messages (and its enable_thinking): the prompt text
// of /v1/chat/completions and /apply-template. Throws ApiError when the template refuses them.
std::string chat_prompt_text(const ServerState& st, const ParsedRequest& r);

// The route's request and response shapes: OpenAI's chat or text completion, or llama-server's
// /completion (a text completion's request, native_response.h's answer).
enum class Endpoint { kChat, kText, kNative };

// Throws ApiError for anything the client got wrong (the caller writes it).
void handle_completion(ServerState& st, const httplib::Request& req, httplib::Response& res,
                       Endpoint endpoint);

}  // namespace xtile::server
