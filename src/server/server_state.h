// What the HTTP routes share: the options, the metrics, and - once the model is loaded - the
// scheduler, tokenizer and model description. `ready` flips once, after which the pointers are
// fixed; until then every route answers 503 "Loading model".
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "model/chat_template.h"
#include "server/metrics.h"
#include "server/openai_request.h"
#include "server/rerank_head.h"
#include "server/scheduler.h"
#include "tokenizer/tokenizer.h"

namespace xtile::server {

struct ServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;                    // 0: any free port (printed when listening)
  std::vector<std::string> api_keys;  // empty: no authentication
  size_t max_body_bytes = 16u << 20;  // larger request bodies get 413
  int http_threads = 0;               // 0: slots + queue + 8
  int timeout_s = 600;                // read/write timeout of a connection
  int sse_ping_s = 30;                // ": ping" comment on a silent stream (0: never)
  RequestDefaults defaults;
};

struct ModelInfo {
  std::string id;    // what clients name the model (--alias, else the file's name)
  std::string path;  // the GGUF file
  std::string arch;
  std::string tier;
  ChatFamily chat_family = ChatFamily::kNone;
  int64_t n_ctx_train = 0;
  int64_t n_vocab = 0;
  int64_t n_embd = 0;
  uint64_t n_params = 0;
  uint64_t size_bytes = 0;
  std::string quantization;  // llama-quantize's file type, upper case ("Q4_K_M"), or ""
  std::string fingerprint;   // system_fingerprint
  // How the embedding routes pool a text's hidden states: --pooling, else the GGUF's
  // <arch>.pooling_type (mean or last), else the last position's (a causal model's last position
  // has read the whole text). kTokens (--pooling none): a vector per position, which only
  // llama-server's /embedding shape carries.
  Pooling pooling = Pooling::kLast;
  bool fill_in_middle = false;  // the vocabulary has FIM tokens (/infill, a completion's suffix)
  RerankHead rerank;            // what /rerank scores with
  // Whether a request's "model" names this one: the id, the file's name or stem, or its path.
  bool matches(const std::string& name) const;
};

struct ServerState {
  ServerState(ServerOptions o, Metrics& m) : opts(std::move(o)), metrics(m) {}
  const ServerOptions opts;
  Metrics& metrics;
  std::atomic<bool> ready{false};
  Scheduler* scheduler = nullptr;
  const Tokenizer* tok = nullptr;
  ModelInfo model;
};

}  // namespace xtile::server
