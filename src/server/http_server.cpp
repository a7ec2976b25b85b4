#include "server/http_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include <chrono>
#include <filesystem>

#include "base/error.h"
#include "server/anthropic_api.h"
#include "server/anthropic_routes.h"
#include "server/api_error.h"
#include "server/chat_page.h"
#include "server/completions.h"
#include "server/embeddings.h"
#include "server/infill.h"
#include "server/ollama_api.h"
#include "server/ollama_routes.h"
#include "server/rerank.h"
#include "server/responses_routes.h"
#include "server/route_guard.h"

namespace xtile::server {

using nlohmann::json;

namespace {
namespace http_server {  // unity batches: CMakeLists.txt

void write_error(httplib::Response& res, const ApiError& e) {
  res.status = e.status;
  res.set_content(dump(e.body()), "application/json");
}

// An error outside a route's handler (a missing key, an oversize body) in the shape the
// route's clients read: Anthropic's for its routes, OpenAI's for the others.
void write_error(const httplib::Request& req, httplib::Response& res, const ApiError& e) {
  if (!is_anthropic_path(req.path)) return write_error(res, e);
  res.status = e.status;
  res.set_content(dump(anthropic_error(e.status, e.what())), "application/json");
}

// Every route's errors become OpenAI-shaped bodies (route_guard.h).
httplib::Server::Handler guarded(RouteHandler h) {
  return guard(openai_error_shape, std::move(h));
}

bool is_public(const std::string& path) {
  return path == "/" || path == "/index.html" || path == "/health" || path == "/v1/health" ||
         path == "/models" || path == "/v1/models" || path.starts_with("/v1/models/");
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    i += n;
  }
  return true;
}

const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

bool bool_field(const json& body, const char* name, bool dflt) {
  const json* v = field(body, name);
  if (!v) return dflt;
  if (!v->is_boolean())
    throw bad_request(std::string("'") + name + "' must be true or false", name);
  return v->get<bool>();
}

}  // namespace http_server
}  // namespace

bool ModelInfo::matches(const std::string& name) const {
  const std::filesystem::path p(path);
  return name == id || name == path || name == p.filename().string() || name == p.stem().string();
}

HttpServer::HttpServer(ServerOptions options, Metrics& metrics)
    : st_(std::move(options), metrics), svr_(std::make_unique<httplib::Server>()) {
  const size_t threads = static_cast<size_t>(std::max(4, st_.opts.http_threads));
  svr_->new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  svr_->set_payload_max_length(st_.opts.max_body_bytes);
  svr_->set_read_timeout(st_.opts.timeout_s, 0);
  svr_->set_write_timeout(st_.opts.timeout_s, 0);
  // httplib's default sets SO_REUSEPORT: a second server on a taken port would bind too and
  // share its connections with the first. SO_REUSEADDR only allows a restart over TIME_WAIT.
  svr_->set_socket_options([this](int sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listen_socket_ = sock;
  });
  routes();
}

HttpServer::~HttpServer() {
  stop();
}

int HttpServer::bind() {
  const std::string& host = st_.opts.host;
  int port = st_.opts.port;
  if (port == 0) {
    port = svr_->bind_to_any_port(host);
  } else if (!svr_->bind_to_port(host, port)) {
    port = -1;
  }
  if (port <= 0)
    fail("cannot listen on ", host, ":", st_.opts.port,
         " (the port is in use, or the address is not one of this machine's)");
  // Debian's compiled httplib listens with a backlog of 5: 16 clients connecting at once
  // overflow it, and the kernel drops handshakes (a 1 s SYN retry, or a connection the client
  // sees fail). Linux takes a second listen() on a listening socket as a new backlog.
  if (listen_socket_ >= 0) ::listen(listen_socket_, SOMAXCONN);
  return port;
}

void HttpServer::start() {
  thread_ = std::thread([this] { svr_->listen_after_bind(); });
}

void HttpServer::stop() {
  if (svr_) svr_->stop();
  if (thread_.joinable()) thread_.join();
}

void HttpServer::set_ready(Scheduler* scheduler, const Tokenizer* tok, ModelInfo model) {
  st_.scheduler = scheduler;
  st_.tok = tok;
  st_.model = std::move(model);
  st_.ready.store(true, std::memory_order_release);
}

void HttpServer::routes() {
  using namespace http_server;  // this file's helpers
  httplib::Server& s = *svr_;
  ServerState& st = st_;

  s.set_pre_routing_handler([&st](const httplib::Request& req, httplib::Response& res) {
    // CORS: the request's origin is echoed (a local server; the API key is the protection).
    const std::string origin = req.get_header_value("Origin");
    if (!origin.empty()) {
      res.set_header("Access-Control-Allow-Origin", origin);
      res.set_header("Access-Control-Allow-Credentials", "true");
      res.set_header("Vary", "Origin");
    }
    if (req.method == "OPTIONS") {
      res.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS");
      const std::string asked = req.get_header_value("Access-Control-Request-Headers");
      res.set_header("Access-Control-Allow-Headers",
                     asked.empty() ? "Authorization, Content-Type, X-Api-Key" : asked);
      res.set_header("Access-Control-Max-Age", "86400");
      res.status = 204;
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!st.ready.load(std::memory_order_acquire)) {
      write_error(req, res, ApiError(503, "unavailable_error", "Loading model"));
      return httplib::Server::HandlerResponse::Handled;
    }
    if (!st.opts.api_keys.empty() && !is_public(req.path)) {
      std::string key = req.get_header_value("X-Api-Key");
      const std::string auth = req.get_header_value("Authorization");
      if (auth.starts_with("Bearer ")) key = auth.substr(7);
      bool ok = false;
      for (const std::string& k : st.opts.api_keys) ok = ok || (!key.empty() && key == k);
      if (!ok) {
        write_error(req, res,
                    ApiError(401, "authentication_error",
                             key.empty() ? "an API key is required (Authorization: Bearer KEY)"
                                         : "Invalid API Key",
                             "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
      }
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });

  s.set_error_handler(httplib::Server::HandlerWithResponse([&st](const httplib::Request& req,
                                                                 httplib::Response& res) {
    if (!res.body.empty() || res.status == 499) return httplib::Server::HandlerResponse::Unhandled;
    if (res.status == 404) {
      // llama-server's and OpenAI's routes for what xtile serve does not do: 501 saying so (a
      // client probing for a feature learns it is absent, not that it mistyped a path).
      static const std::pair<const char*, const char*> kAbsent[] = {
          {"/v1/audio/transcriptions", "audio transcription"},
          {"/api/pull", "pulling models (it serves the GGUF file it was started with)"},
          {"/api/push", "pushing models"},
          {"/api/create", "creating models"},
          {"/api/copy", "copying models"},
          {"/api/delete", "deleting models"},
      };
      for (const auto& [path, what] : kAbsent)
        if (req.path == path) {
          write_error(res,
                      ApiError(501, "not_supported_error",
                               std::string("xtile serve does not do ") + what, "not_supported"));
          return httplib::Server::HandlerResponse::Handled;
        }
      write_error(
          req, res,
          ApiError(404, "not_found_error", "no route " + req.method + " " + req.path, "not_found"));
    } else if (res.status == 413) {
      write_error(req, res,
                  ApiError(413, "invalid_request_error",
                           "the request body is larger than the server's limit of " +
                               std::to_string(st.opts.max_body_bytes) + " bytes",
                           "request_too_large"));
    } else {
      const int status = res.status;
      write_error(req, res,
                  ApiError(status, status >= 500 ? "server_error" : "invalid_request_error",
                           "the request failed with HTTP status " + std::to_string(status)));
    }
    return httplib::Server::HandlerResponse::Handled;
  }));

  s.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown exception";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        write_error(res, ApiError(500, "server_error", "internal error: " + what));
      });

  auto page = guarded([](const httplib::Request&, httplib::Response& res) {
    res.set_content(std::string(chat_page_html()), "text/html; charset=utf-8");
  });
  s.Get("/", page);
  s.Get("/index.html", page);

  auto health = guarded([&st](const httplib::Request&, httplib::Response& res) {
    const int64_t busy = st.metrics.requests_processing.load();
    json j = {{"status", "ok"},
              {"slots_idle", st.metrics.slots_total.load() - busy},
              {"slots_processing", busy},
              {"requests_deferred", st.metrics.requests_deferred.load()}};
    res.set_content(dump(j), "application/json");
  });
  s.Get("/health", health);
  s.Get("/v1/health", health);

  // llama-server's GET /slots; ?fail_on_no_slot=1: 503 when none is idle.
  s.Get("/slots", guarded([&st](const httplib::Request& req, httplib::Response& res) {
          std::vector<SlotView> slots;
          {
            const std::lock_guard lock(st.metrics.slots_mu);
            slots = st.metrics.slots;
          }
          const int64_t n_ctx = st.scheduler->options().n_ctx;
          json out = json::array();
          bool idle = false;
          for (const SlotView& v : slots) {
            idle = idle || !v.processing;
            out.push_back({{"id", v.id},
                           {"n_ctx", n_ctx},
                           {"is_processing", v.processing},
                           {"n_cached", v.n_cached},
                           {"n_prompt_tokens", v.n_prompt},
                           {"n_decoded", v.n_decoded},
                           {"n_predict", v.n_predict}});
          }
          if (req.has_param("fail_on_no_slot") && req.get_param_value("fail_on_no_slot") != "0" &&
              !idle)
            throw ApiError(503, "unavailable_error", "no slot available");
          res.set_content(dump(out), "application/json");
        }));

  // The served model as each client family lists it: OpenAI's fields (id, object, created,
  // owned_by), Anthropic's (type, display_name, created_at) and llama-server's meta.
  auto model_entry = [&st] {
    const ModelInfo& m = st.model;
    const auto created =
        std::chrono::duration_cast<std::chrono::seconds>(st.metrics.start.time_since_epoch())
            .count();
    json meta = {{"n_ctx", st.scheduler->options().n_ctx},
                 {"n_ctx_train", m.n_ctx_train},
                 {"n_vocab", m.n_vocab},
                 {"n_embd", m.n_embd},
                 {"n_params", m.n_params},
                 {"size", m.size_bytes},
                 {"arch", m.arch},
                 {"tier", m.tier},
                 {"chat_template", std::string(chat_family_name(m.chat_family))},
                 {"pooling", pooling_name(m.pooling)}};
    return json{{"id", m.id},
                {"object", "model"},
                {"created", created},
                {"owned_by", "xtile"},
                {"type", "model"},
                {"display_name", m.id},
                {"created_at", rfc3339(st.metrics.start)},
                {"meta", meta}};
  };
  auto models = guarded([&st, model_entry](const httplib::Request&, httplib::Response& res) {
    json j = {{"object", "list"},
              {"data", json::array({model_entry()})},
              // Anthropic's page of one.
              {"has_more", false},
              {"first_id", st.model.id},
              {"last_id", st.model.id},
              // llama-server's answer carries Ollama's listing too (clients that probe either).
              {"models", json::array({ollama_model_entry(st.model)})}};
    res.set_content(dump(j), "application/json");
  });
  s.Get("/v1/models", models);
  s.Get("/models", models);
  // One model by name (OpenAI's and Anthropic's models.retrieve).
  s.Get(R"(/v1/models/(.+))",
        guarded([&st, model_entry](const httplib::Request& req, httplib::Response& res) {
          const std::string name = req.matches[1];
          if (!st.model.matches(name))
            throw ApiError(
                404, "not_found_error",
                "the model '" + name + "' does not exist; this server runs '" + st.model.id + "'",
                "model_not_found");
          res.set_content(dump(model_entry()), "application/json");
        }));

  s.Get("/metrics", guarded([&st](const httplib::Request&, httplib::Response& res) {
          const auto start =
              std::chrono::duration_cast<std::chrono::seconds>(st.metrics.start.time_since_epoch());
          res.set_header("Process-Start-Time-Unix", std::to_string(start.count()));
          res.set_content(st.metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
        }));

  s.Get("/props", guarded([&st](const httplib::Request&, httplib::Response& res) {
          const SchedulerOptions& o = st.scheduler->options();
          const RequestDefaults& d = st.opts.defaults;
          json params = {{"temperature", d.sampler.temperature},
                         {"top_k", d.sampler.top_k},
                         {"top_p", d.sampler.top_p},
                         {"min_p", d.sampler.min_p},
                         {"repeat_penalty", d.sampler.repeat_penalty},
                         {"n_predict", d.max_tokens}};
          json j = {{"default_generation_settings", {{"n_ctx", o.n_ctx}, {"params", params}}},
                    {"total_slots", o.n_slots},
                    {"kv_budget", o.kv_budget},
                    {"model_path", st.model.path},
                    {"model_alias", st.model.id},
                    {"chat_template", std::string(chat_family_name(st.model.chat_family))},
                    {"build_info", st.model.fingerprint}};
          res.set_content(dump(j), "application/json");
        }));

  for (const char* path : {"/v1/chat/completions", "/chat/completions"})
    s.Post(path, guarded([&st](const httplib::Request& req, httplib::Response& res) {
             handle_completion(st, req, res, Endpoint::kChat);
           }));
  for (const char* path : {"/v1/completions", "/completions"})
    s.Post(path, guarded([&st](const httplib::Request& req, httplib::Response& res) {
             handle_completion(st, req, res, Endpoint::kText);
           }));
  for (const char* path : {"/v1/embeddings", "/embeddings"})
    s.Post(path, guarded([&st](const httplib::Request& req, httplib::Response& res) {
             handle_embeddings(st, req, res);
           }));
  for (const char* path : {"/v1/responses", "/responses"})
    s.Post(path, guarded([&st](const httplib::Request& req, httplib::Response& res) {
             handle_responses(st, req, res);
           }));
  for (const char* path : {"/rerank", "/v1/rerank", "/reranking", "/v1/reranking"})
    s.Post(path, guarded([&st](const httplib::Request& req, httplib::Response& res) {
             handle_rerank(st, req, res);
           }));
  s.Post("/embedding", guarded([&st](const httplib::Request& req, httplib::Response& res) {
           handle_native_embedding(st, parse_body(req.body), req, res);
         }));
  s.Post("/infill", guarded([&st](const httplib::Request& req, httplib::Response& res) {
           handle_infill(st, req, res);
         }));
  s.Post("/completion", guarded([&st](const httplib::Request& req, httplib::Response& res) {
           handle_completion(st, req, res, Endpoint::kNative);
         }));

  s.Post("/tokenize", guarded([&st](const httplib::Request& req, httplib::Response& res) {
           const json body = parse_body(req.body);
           const json* content = field(body, "content");
           if (!content || !content->is_string())
             throw bad_request("'content' must be a string", "content");
           const bool add_special = bool_field(body, "add_special", false);
           const bool parse_special = bool_field(body, "parse_special", true);
           const bool with_pieces = bool_field(body, "with_pieces", false);
           const std::vector<int32_t> ids =
               st.tok->encode(content->get<std::string>(), add_special, parse_special);
           json tokens = json::array();
           for (int32_t id : ids) {
             if (!with_pieces) {
               tokens.push_back(id);
               continue;
             }
             // A piece that is part of a UTF-8 character is given as its bytes.
             const std::string piece = st.tok->decode_token(id, true);
             json p = valid_utf8(piece) ? json(piece) : json::array();
             if (p.is_array())
               for (unsigned char c : piece) p.push_back(static_cast<int>(c));
             tokens.push_back({{"id", id}, {"piece", p}});
           }
           res.set_content(dump(json{{"tokens", tokens}}), "application/json");
         }));

  s.Post("/detokenize", guarded([&st](const httplib::Request& req, httplib::Response& res) {
           const json body = parse_body(req.body);
           const json* tokens = field(body, "tokens");
           if (!tokens || !tokens->is_array())
             throw bad_request("'tokens' must be an array of token ids", "tokens");
           std::vector<int32_t> ids;
           for (const json& t : *tokens) {
             if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
                 t.get<int64_t>() >= st.tok->n_vocab())
               throw bad_request("'tokens' holds " + t.dump() + ", not a token id (0.." +
                                     std::to_string(st.tok->n_vocab() - 1) + ")",
                                 "tokens");
             ids.push_back(t.get<int32_t>());
           }
           res.set_content(dump(json{{"content", st.tok->decode(ids, true)}}), "application/json");
         }));

  add_ollama_routes(s, st);
  add_anthropic_routes(s, st);

  s.Post("/apply-template", guarded([&st](const httplib::Request& req, httplib::Response& res) {
           const ParsedRequest r = parse_request(parse_body(req.body), true, st.opts.defaults);
           res.set_content(dump(json{{"prompt", chat_prompt_text(st, r)}}), "application/json");
         }));
}

}  // namespace xtile::server
