#include "server/responses_routes.h"

#include <cmath>

#include "server/api_error.h"
#include "server/completions.h"
#include "server/connection.h"
#include "server/openai_response.h"
#include "server/responses_api.h"

namespace xtile::server {

void handle_responses(ServerState& st, const httplib::Request& req, httplib::Response& res) {
  const ResponsesRequest q = responses_request(parse_body(req.body));
  ParsedRequest r = parse_request(q.openai, /*chat=*/true, st.opts.defaults);
  check_requested_model(st, r.model);
  Submitted sub = submit_request(st, r, Endpoint::kChat, res);
  // The sampling the answer used: the request's, else the server's defaults (six digits: the
  // float's, not its binary tail).
  nlohmann::json echo = q.echo;
  auto six = [](float x) { return std::round(static_cast<double>(x) * 1e6) / 1e6; };
  if (!echo.contains("temperature")) echo["temperature"] = six(r.gen.sampler.temperature);
  if (!echo.contains("top_p")) echo["top_p"] = six(r.gen.sampler.top_p);
  const nlohmann::json head = response_head(make_id("resp_"), st.model.id, echo);
  ClientConnection conn(req.local_addr, req.local_port, req.remote_addr, req.remote_port);
  if (q.stream) {
    stream_chat_events(st, r, std::move(sub), conn, res,
                       {head["id"], head["created_at"], st.model.id, st.model.fingerprint},
                       std::make_shared<ResponseEvents>(head));
    return;
  }
  ChatReply reply;
  if (!read_chat_reply(r, sub, conn, res, &reply)) return;
  res.set_content(
      dump(response_object(head, reply.reason,
                           response_output(reply.thinking, reply.text, reply.calls), reply.stats)),
      "application/json");
}

}  // namespace xtile::server
