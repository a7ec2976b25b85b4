#include "server/request_fields.h"

#include "server/api_error.h"

namespace xtile::server {

using nlohmann::ordered_json;

const ordered_json* present(const ordered_json& o, const char* key) {
  const auto it = o.find(key);
  return it == o.end() || it->is_null() ? nullptr : &*it;
}

void must_be(const std::string& at, const std::string& what) {
  throw bad_request("'" + at + "' must be " + what, at);
}

std::string string_at(const ordered_json& o, const char* key, const std::string& at,
                      bool required) {
  const ordered_json* v = present(o, key);
  if (!v) {
    if (required) throw bad_request("'" + at + "' is required", at);
    return "";
  }
  if (!v->is_string()) must_be(at, "a string");
  return v->get<std::string>();
}

}  // namespace xtile::server
