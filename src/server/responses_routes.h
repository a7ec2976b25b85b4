// POST /v1/responses (responses_api.h has the shapes): the whole response, or its named events
// with "stream": true. Errors are the OpenAI routes' (the caller's guard writes them).
#pragma once

#include <httplib.h>

#include "server/server_state.h"

namespace xtile::server {

// Throws ApiError for anything the client got wrong.
void handle_responses(ServerState& st, const httplib::Request& req, httplib::Response& res);

}  // namespace xtile::server
