// Reranking: POST /rerank (also /v1/rerank, /reranking, /v1/reranking), llama-server's route in
// Jina's and Cohere's shape, or Hugging Face TEI's when the documents come as "texts". How a
// score is made: rerank_head.h. Each document is a job like an embedding's (the last position's
// hidden state), so the documents of a request run side by side in the slots, and a score is
// the same bits alone or beside other requests.
#pragma once

#include <httplib.h>

#include "server/server_state.h"

namespace xtile::server {

// Throws ApiError for anything the client got wrong (501 when the model cannot rerank).
void handle_rerank(ServerState& st, const httplib::Request& req, httplib::Response& res);

}  // namespace xtile::server
