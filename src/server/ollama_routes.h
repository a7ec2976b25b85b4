// Ollama's routes on xtile serve's HTTP server (ollama_api.h has the shapes): POST /api/chat and
// /api/generate (NDJSON streams unless "stream": false), GET /api/tags, /api/ps, /api/version,
// POST /api/show. Their errors are Ollama's {"error": "..."} with the HTTP status.
#pragma once

#include <httplib.h>

#include "server/server_state.h"

namespace xtile::server {

void add_ollama_routes(httplib::Server& s, ServerState& st);

}  // namespace xtile::server
