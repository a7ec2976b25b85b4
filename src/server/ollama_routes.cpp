#include "server/ollama_routes.h"

#include <chrono>
#include <functional>

#include "server/api_error.h"
#include "server/completions.h"
#include "server/connection.h"
#include "server/embeddings.h"
#include "server/ollama_api.h"
#include "server/route_guard.h"
#include "server/sse.h"

namespace xtile::server {

using nlohmann::json;
using nlohmann::ordered_json;

namespace {
namespace ollama_routes {  // unity batches: CMakeLists.txt

// The API level whose shapes these routes follow (clients compare it to enable features).
constexpr const char* kOllamaVersion = "0.12.0";

// Ollama's errors: {"error": "..."}.
nlohmann::json ollama_shape(const ApiError& e) {
  return {{"error", e.what()}};
}

httplib::Server::Handler ollama_guarded(RouteHandler h) {
  return guard(ollama_shape, std::move(h));
}

void check_model(const ServerState& st, const std::string& name) {
  if (!ollama_names(st.model, name))
    throw ApiError(404, "not_found_error",
                   "model '" + name + "' not found; this server runs '" + ollama_name(st.model) +
                       "' (GET /api/tags)");
}

void handle_generation(ServerState& st, const httplib::Request& req, httplib::Response& res,
                       OllamaRoute route) {
  const OllamaRequest o = ollama_request(parse_body(req.body), route);
  check_model(st, o.model);
  if (o.load_only) {  // the model is always loaded: say so at once
    json j = ollama_chunk(route, o.model, "", "", {});
    j["done"] = true;
    j["done_reason"] = "load";
    if (o.stream) {
      res.set_content(dump(j) + "\n", "application/x-ndjson");
    } else {
      res.set_content(dump(j), "application/json");
    }
    return;
  }
  ParsedRequest r = parse_request(o.openai, o.chat, st.opts.defaults);
  if (route == OllamaRoute::kChat && o.truncate) {
    const int64_t n_ctx = st.scheduler->options().n_ctx;
    r.messages = ollama_truncate(r.messages, n_ctx, [&](const std::vector<ChatMessage>& m) {
      const std::string text = chat_prompt_text(st, r, m);
      return static_cast<int64_t>(st.tok->encode(text, false, true).size());
    });
  }
  Submitted sub = submit_request(st, r, o.chat ? Endpoint::kChat : Endpoint::kText, res);
  ClientConnection conn(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  if (o.stream) {
    StreamSpec spec;
    spec.chat = o.chat;
    spec.reasoning = o.chat && r.reasoning;
    spec.in_reasoning = sub.in_reasoning;
    spec.tool_format = o.chat ? tool_format(r) : ToolCallFormat::kNone;
    spec.ping_s = 0;  // NDJSON has no comments
    spec.head = {"", 0, o.model, st.model.fingerprint};
    spec.ollama = route;
    stream_job(res, std::move(sub.jobs), std::move(sub.signal), conn, *st.tok, spec);
    return;
  }
  std::vector<std::string> texts;
  std::vector<std::vector<TokenOut>> tokens;
  if (!read_all(sub, conn, res, &texts, &tokens)) return;
  const Job& job = *sub.jobs.front();
  std::string reasoning, content;
  std::vector<ToolCallOut> calls;
  if (o.chat) {
    split_reply(r, sub.in_reasoning, std::move(texts.front()), &reasoning, &content, &calls);
  } else {
    content = std::move(texts.front());
  }
  res.set_content(dump(ollama_final(route, o.model, reasoning, content, calls, job.finish_reason(),
                                    job.stats())),
                  "application/json");
}

// The request's model, which must be the served one.
std::string model_of(const ServerState& st, const ordered_json& body) {
  const auto m = body.find("model");
  if (m == body.end() || !m->is_string() || m->get<std::string>().empty())
    throw bad_request("'model' is required", "model");
  check_model(st, m->get<std::string>());
  return m->get<std::string>();
}

// /api/embed: {model, input (a text or a list), truncate (default true: a long input is cut to
// the context), dimensions} -> {model, embeddings, total_duration, load_duration,
// prompt_eval_count}.
void handle_embed(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  const ordered_json body = parse_body(req.body);
  const std::string model = model_of(st, body);
  const auto input = body.find("input");
  if (input == body.end() || input->is_null()) throw bad_request("'input' is required", "input");
  bool truncate = true;
  if (const auto t = body.find("truncate"); t != body.end() && !t->is_null()) {
    if (!t->is_boolean()) throw bad_request("'truncate' must be true or false", "truncate");
    truncate = t->get<bool>();
  }
  EmbedOptions o;
  o.truncate = truncate;
  o.dimensions = dimensions_field(body);
  ClientConnection conn(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  const auto start = std::chrono::steady_clock::now();
  const Embedded e = embed(st, embedding_inputs(st, *input, "input"), o, conn, res);
  if (e.client_gone) return;
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start)
          .count();
  res.set_content(dump(json{{"model", model},
                            {"embeddings", pooled_vectors(e)},
                            {"total_duration", ns},
                            {"load_duration", 0},
                            {"prompt_eval_count", e.prompt_tokens}}),
                  "application/json");
}

// /api/embeddings, Ollama's older route: {model, prompt} -> {embedding}.
void handle_embeddings_v0(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  const ordered_json body = parse_body(req.body);
  model_of(st, body);
  const auto prompt = body.find("prompt");
  if (prompt == body.end() || !prompt->is_string())
    throw bad_request("'prompt' must be a string", "prompt");
  ClientConnection conn(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  EmbedOptions o;
  o.truncate = true;
  const Embedded e = embed(st, embedding_inputs(st, *prompt, "prompt"), o, conn, res);
  if (e.client_gone) return;
  res.set_content(dump(json{{"embedding", pooled_vectors(e).front()}}), "application/json");
}

}  // namespace ollama_routes
}  // namespace

void add_ollama_routes(httplib::Server& s, ServerState& st) {
  using namespace ollama_routes;  // this file's helpers
  s.Post("/api/chat", ollama_guarded([&st](const httplib::Request& req, httplib::Response& res) {
           handle_generation(st, req, res, OllamaRoute::kChat);
         }));
  s.Post("/api/generate",
         ollama_guarded([&st](const httplib::Request& req, httplib::Response& res) {
           handle_generation(st, req, res, OllamaRoute::kGenerate);
         }));
  s.Post("/api/embed", ollama_guarded([&st](const httplib::Request& req, httplib::Response& res) {
           handle_embed(st, req, res);
         }));
  s.Post("/api/embeddings",
         ollama_guarded([&st](const httplib::Request& req, httplib::Response& res) {
           handle_embeddings_v0(st, req, res);
         }));
  s.Get("/api/tags", ollama_guarded([&st](const httplib::Request&, httplib::Response& res) {
          res.set_content(dump(json{{"models", json::array({ollama_model_entry(st.model)})}}),
                          "application/json");
        }));
  s.Get("/api/ps", ollama_guarded([&st](const httplib::Request&, httplib::Response& res) {
          json entry = ollama_model_entry(st.model);
          entry["expires_at"] = "9999-12-31T23:59:59Z";  // never unloaded
          entry["size_vram"] = 0;
          entry["context_length"] = st.scheduler->options().n_ctx;
          res.set_content(dump(json{{"models", json::array({std::move(entry)})}}),
                          "application/json");
        }));
  s.Post("/api/show", ollama_guarded([&st](const httplib::Request& req, httplib::Response& res) {
           const ordered_json body = parse_body(req.body);
           std::string name;
           for (const char* key : {"model", "name"})  // "name": older clients
             if (const auto it = body.find(key); name.empty() && it != body.end()) {
               if (!it->is_string())
                 throw bad_request(std::string("'") + key + "' must be a string");
               name = it->get<std::string>();
             }
           if (name.empty()) throw bad_request("'model' is required", "model");
           check_model(st, name);
           res.set_content(dump(ollama_show(st.model, st.scheduler->options().n_ctx)),
                           "application/json");
         }));
  s.Get("/api/version", ollama_guarded([](const httplib::Request&, httplib::Response& res) {
          res.set_content(dump(json{{"version", kOllamaVersion}}), "application/json");
        }));
}

}  // namespace xtile::server
