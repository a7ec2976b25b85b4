// POST /v1/chat/completions and /v1/completions: the request becomes prompt tokens (the chat
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

// Throws ApiError for anything the client got wrong (the caller writes it).
void handle_completion(ServerState& st, const httplib::Request& req, httplib::Response& res,
                       bool chat);

}  // namespace xtile::server
