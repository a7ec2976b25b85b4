#include "server/api_error.h"

namespace xtile::server {

nlohmann::json ApiError::body() const {
  nlohmann::json e = {{"message", what()},
                      {"type", type},
                      {"param", param.empty() ? nlohmann::json() : nlohmann::json(param)},
                      {"code", code.empty() ? nlohmann::json() : nlohmann::json(code)}};
  for (auto it = extra.begin(); it != extra.end(); ++it) e[it.key()] = it.value();
  return {{"error", e}};
}

ApiError bad_request(const std::string& message, const std::string& param) {
  return ApiError(400, "invalid_request_error", message, {}, param);
}

std::string dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace xtile::server
