#include "server/anthropic_routes.h"

#include <ctime>
#include <functional>

#include "server/anthropic_api.h"
#include "server/api_error.h"
#include "server/completions.h"
#include "server/connection.h"
#include "server/openai_response.h"
#include "server/route_guard.h"

namespace xtile::server {

using nlohmann::json;

namespace {
namespace anthropic_routes {  // unity batches: CMakeLists.txt

nlohmann::json anthropic_shape(const ApiError& e) {
  return anthropic_error(e.status, e.what());
}

httplib::Server::Handler anthropic_guarded(RouteHandler h) {
  return guard(anthropic_shape, std::move(h));
}

// The request's model must be the served one (as on the OpenAI routes: a client that names
// another model learns so rather than getting this one's answer).
ParsedRequest parsed(const ServerState& st, const AnthropicRequest& a) {
  if (!st.model.matches(a.model))
    throw ApiError(404, "not_found_error",
                   "model: '" + a.model + "' is not served here; this server runs '" + st.model.id +
                       "' (GET /v1/models)");
  return parse_request(a.openai, /*chat=*/true, st.opts.defaults);
}

void handle_messages(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  const AnthropicRequest a = anthropic_request(parse_body(req.body));
  ParsedRequest r = parsed(st, a);
  Submitted sub = submit_request(st, r, Endpoint::kChat, res);
  const std::string id = make_id("msg_");
  ClientConnection conn(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  if (a.stream) {
    stream_chat_events(
        st, r, std::move(sub), conn, res,
        {id, static_cast<int64_t>(std::time(nullptr)), st.model.id, st.model.fingerprint},
        std::make_shared<AnthropicEvents>(id, st.model.id));
    return;
  }
  ChatReply reply;
  if (!read_chat_reply(r, sub, conn, res, &reply)) return;
  res.set_content(dump(anthropic_message(id, st.model.id, reply.thinking, reply.text, reply.calls,
                                         reply.reason, reply.stats)),
                  "application/json");
}

}  // namespace anthropic_routes
}  // namespace

bool is_anthropic_path(const std::string& path) {
  return path == "/v1/messages" || path.starts_with("/v1/messages/");
}

void add_anthropic_routes(httplib::Server& s, ServerState& st) {
  using namespace anthropic_routes;  // this file's helpers
  s.Post("/v1/messages",
         anthropic_guarded([&st](const httplib::Request& req, httplib::Response& res) {
           handle_messages(st, req, res);
         }));
  // The prompt's token count as the template writes it (what usage.input_tokens would say).
  s.Post("/v1/messages/count_tokens",
         anthropic_guarded([&st](const httplib::Request& req, httplib::Response& res) {
           const AnthropicRequest a = anthropic_request(parse_body(req.body), /*count_only=*/true);
           const ParsedRequest r = parsed(st, a);
           const std::string text = chat_prompt_text(st, r);
           const size_t n = st.tok->encode(text, /*add_bos=*/false, /*parse_special=*/true).size();
           res.set_content(dump(json{{"input_tokens", n}}), "application/json");
         }));
}

}  // namespace xtile::server
