// Anthropic's routes on xtile serve's HTTP server (anthropic_api.h has the shapes): POST
// /v1/messages (whole, or named server-sent events with "stream": true) and POST
// /v1/messages/count_tokens. Their errors are Anthropic's {"type": "error", "error": {...}}.
#pragma once

#include <httplib.h>

#include <string>

#include "server/server_state.h"

namespace xtile::server {

void add_anthropic_routes(httplib::Server& s, ServerState& st);

// Whether a path is one of these routes (its errors outside the handlers, such as a missing
// API key or an oversize body, take Anthropic's shape too).
bool is_anthropic_path(const std::string& path);

}  // namespace xtile::server
