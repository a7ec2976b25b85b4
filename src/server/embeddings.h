// Embeddings: POST /v1/embeddings (OpenAI's shape), and what Ollama's /api/embed and
// /api/embeddings share with it. Each input (a text, or token ids) is a job of its own that
// reads the prompt and pools its hidden states, the output norm's rows the head would read
// (ModelInfo::pooling: the last position's, or the mean of all), scaled to length 1; the jobs of
// one request are queued together and run in the slots side by side, so a batch of texts
// embeds at the pace of a batched prompt. A vector is the same bits alone or beside other
// requests (the scheduler's contract).
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
  std::vector<std::vector<float>> vectors;  // one per input, in order
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

// Embeds the inputs (each 1 .. n_ctx tokens: `truncate` cuts a longer one to its first n_ctx,
// else it is the 400 of a long prompt). `dimensions` > 0 keeps the first that many of each
// vector, scaled to length 1 again (Matryoshka-trained models; 400 above n_embd). Throws ApiError.
Embedded embed(ServerState& st, std::vector<std::vector<int32_t>> inputs, bool truncate,
               int64_t dimensions, const ClientConnection& conn, httplib::Response& res);

// A request's "dimensions": 0 when absent; a 400 unless a positive integer.
int64_t dimensions_field(const nlohmann::json& body);

// Throws ApiError for anything the client got wrong.
void handle_embeddings(ServerState& st, const httplib::Request& req, httplib::Response& res);

}  // namespace xtile::server
