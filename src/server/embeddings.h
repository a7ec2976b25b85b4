// Embeddings: POST /v1/embeddings (OpenAI's shape), llama-server's own POST /embedding, and
// what Ollama's /api/embed and /api/embeddings share with them. Each input (a text, or token
// ids) is a job of its own that reads the prompt and pools its hidden states, the output norm's
// rows the head would read (ModelInfo::pooling: the last position's, the mean of all, or with
// --pooling none each position's), scaled as the route asks (embedding_norm.h); the jobs of one
// request are queued together and run in the slots side by side, so a batch of texts embeds at
// the pace of a batched prompt. A vector is the same bits alone or beside other requests (the
// scheduler's contract).
#pragma once

#include <httplib.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "server/connection.h"
#include "server/server_state.h"

namespace xtile::server {

struct Embedded {
  // Per input, in order: its pooled vector, or (--pooling none) one per token.
  std::vector<std::vector<std::vector<float>>> vectors;
  int64_t prompt_tokens = 0;                // all inputs' tokens
  double prompt_ms = 0;                     // the slowest input's reading time
  bool client_gone = false;                 // the connection closed (res.status is 499)
};

// The token ids of `input` as OpenAI's embeddings take it: a string, a list of strings, a list
// of token ids or a list of such lists (1 .. 2048 inputs). Texts are tokenized as a completion's
// prompt (BOS, and EOS where the vocabulary asks for it: embedding models end on it). Throws
// ApiError naming `param`: an empty text or list, an id outside the vocabulary.
std::vector<std::vector<int32_t>> embedding_inputs(const ServerState& st,
                                                   const nlohmann::json& input,
                                                   const std::string& param);

struct EmbedOptions {
  bool truncate = false;   // cut an input to its first n_ctx tokens (else the long prompt's 400)
  int64_t dimensions = 0;  // > 0: the first that many values (Matryoshka-trained models)
  int normalize = 2;       // embd_normalize (embedding_norm.h), applied after the cut
  bool per_token = false;  // the route can carry --pooling none's vectors (else a 400)
  Pooling pooling = Pooling::kNone;  // kNone: the server's (--pooling); else this one
};

// Embeds the inputs (each 1 .. n_ctx tokens). A pooled vector is cut to `dimensions` (400 above
// n_embd) and scaled by `normalize`; --pooling none's per-token vectors are returned as the model
// gives them, as llama-server does. Throws ApiError.
Embedded embed(ServerState& st, std::vector<std::vector<int32_t>> inputs, const EmbedOptions& o,
               const ClientConnection& conn, httplib::Response& res);

// Each input's one vector (routes that refuse per-token vectors: EmbedOptions::per_token false).
std::vector<std::vector<float>> pooled_vectors(const Embedded& e);

// A request's "dimensions": 0 when absent; a 400 unless a positive integer.
int64_t dimensions_field(const nlohmann::json& body);

// A request's "model": "" when absent; a 400 unless a string.
std::string model_field(const nlohmann::json& body);

// POST /v1/embeddings and /embeddings; a body with llama-server's "content" and no "input" is
// answered as /embedding. Throws ApiError for anything the client got wrong.
void handle_embeddings(ServerState& st, const httplib::Request& req, httplib::Response& res);

// llama-server's POST /embedding: {content (or input), embd_normalize} ->
// [{index, embedding: [[...]]}] (one vector per input, or one per token under --pooling none).
void handle_native_embedding(ServerState& st, const nlohmann::json& body,
                             const httplib::Request& req, httplib::Response& res);

}  // namespace xtile::server
