// Requests to a test server over loopback (cpp-httplib's client), the whole answer at once.
#pragma once

#include <httplib.h>

#include <nlohmann/json.hpp>
#include <string>

namespace xtile::test {

struct Reply {
  int status = 0;    // 0: no answer (connection failed or aborted)
  std::string body;  // with status 0: the client's error
  httplib::Headers headers;
  nlohmann::json j() const { return nlohmann::json::parse(body); }
};

inline Reply request(int port, const std::string& method, const std::string& path,
                     const std::string& body = "", const httplib::Headers& headers = {},
                     int timeout_s = 120) {
  httplib::Client cli("127.0.0.1", port);
  cli.set_read_timeout(timeout_s, 0);
  cli.set_connection_timeout(10, 0);
  httplib::Result res = method == "GET"       ? cli.Get(path, headers)
                        : method == "OPTIONS" ? cli.Options(path, headers)
                                              : cli.Post(path, headers, body, "application/json");
  Reply r;
  if (!res) {
    r.body = "no answer: " + httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  r.body = res->body;
  r.headers = res->headers;
  return r;
}

inline Reply post(int port, const std::string& path, const nlohmann::json& body,
                  const httplib::Headers& h = {}) {
  return request(port, "POST", path, body.dump(), h);
}

}  // namespace xtile::test
