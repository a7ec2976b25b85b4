// The HTTP side of `xtile serve` (cpp-httplib): routes, API keys, CORS, error bodies, limits.
// It listens before the model is loaded (every route answers 503 "Loading model" until
// set_ready), so that a client or orchestrator can watch /health. /health and /metrics read
// atomics only: they never wait for the inference thread.
//
// Routes: GET / (the chat page), GET /health, /v1/health, GET /v1/models, /models,
// GET /metrics, GET /props, POST /v1/chat/completions, /chat/completions, /v1/completions,
// /completions, POST /tokenize, /detokenize, /apply-template.
#pragma once

#include <memory>
#include <thread>

#include "server/server_state.h"

namespace httplib {
class Server;
}

namespace xtile::server {

class HttpServer {
 public:
  HttpServer(ServerOptions options, Metrics& metrics);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Binds host:port (port 0: a free one); returns the port. Throws xtile::Error naming the
  // address when it cannot.
  int bind();
  // Serves on a background thread until stop().
  void start();
  // From now on requests are served (the scheduler and tokenizer outlive this server).
  void set_ready(Scheduler* scheduler, const Tokenizer* tok, ModelInfo model);
  void stop();

 private:
  void routes();
  ServerState st_;
  std::unique_ptr<httplib::Server> svr_;
  int listen_socket_ = -1;  // set by the socket-options hook, before bind
  std::thread thread_;
};

}  // namespace xtile::server
