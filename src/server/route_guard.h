// A route handler wrapped so that nothing it throws escapes: an ApiError becomes the response in
// the shape the route's clients read (OpenAI's, Ollama's, Anthropic's), any other exception a 500
// naming it (a server bug, but the server and the other requests go on).
#pragma once

#include <httplib.h>

#include <functional>
#include <nlohmann/json.hpp>

#include "server/api_error.h"

namespace xtile::server {

using RouteHandler = std::function<void(const httplib::Request&, httplib::Response&)>;
// An error's body in one API's shape.
using ErrorShape = nlohmann::json (*)(const ApiError&);

inline nlohmann::json openai_error_shape(const ApiError& e) {
  return e.body();
}

inline httplib::Server::Handler guard(ErrorShape shape, RouteHandler h) {
  return [shape, h = std::move(h)](const httplib::Request& req, httplib::Response& res) {
    auto write = [&](const ApiError& e) {
      res.status = e.status;
      res.set_content(dump(shape(e)), "application/json");
    };
    try {
      h(req, res);
    } catch (const ApiError& e) {
      write(e);
    } catch (const std::exception& e) {
      write(ApiError(500, "server_error", std::string("internal error: ") + e.what()));
    }
  };
}

}  // namespace xtile::server
