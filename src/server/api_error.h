// Errors a request can cause, in OpenAI's shape:
//   {"error": {"message": "...", "type": "invalid_request_error", "param": "stop", "code": null}}
// with the HTTP status beside it. Anything a client sends that the server cannot serve is one
// of these, never a crash and never a bare 500.
#pragma once

#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

namespace xtile::server {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, std::string type, std::string message, std::string code = {},
           std::string param = {})
      : std::runtime_error(message),
        status(status),
        type(std::move(type)),
        code(std::move(code)),
        param(std::move(param)) {}

  int status;
  std::string type;   // invalid_request_error, authentication_error, not_found_error, ...
  std::string code;   // OpenAI's machine-readable code ("" -> null)
  std::string param;  // the request field at fault ("" -> null)
  nlohmann::json extra = nlohmann::json::object();  // added to the error object

  nlohmann::json body() const;
};

// 400 invalid_request_error naming the field.
ApiError bad_request(const std::string& message, const std::string& param = {});

// JSON text with invalid UTF-8 replaced (U+FFFD) instead of throwing: generated text may cut a
// character that a byte-fallback token never completes.
std::string dump(const nlohmann::json& j);

}  // namespace xtile::server
