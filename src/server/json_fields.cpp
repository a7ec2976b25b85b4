#include "server/json_fields.h"

#include <cmath>

#include "server/api_error.h"

namespace xtile::server {

using nlohmann::ordered_json;

const char* type_name(const ordered_json& v) {
  switch (v.type()) {
    case ordered_json::value_t::null:
      return "null";
    case ordered_json::value_t::boolean:
      return "a boolean";
    case ordered_json::value_t::string:
      return "a string";
    case ordered_json::value_t::array:
      return "an array";
    case ordered_json::value_t::object:
      return "an object";
    case ordered_json::value_t::binary:
      return "binary";
    case ordered_json::value_t::discarded:
      return "nothing";
    default:
      return "a number";
  }
}

[[noreturn]] void wrong_type(const std::string& field, const char* expected,
                             const ordered_json& v) {
  throw bad_request("'" + field + "' must be " + expected + ", got " + type_name(v), field);
}

const ordered_json* field(const ordered_json& body, const char* name) {
  const auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

bool get_bool(const ordered_json& v, const std::string& name) {
  if (!v.is_boolean()) wrong_type(name, "true or false", v);
  return v.get<bool>();
}

double get_number(const ordered_json& v, const std::string& name, double lo, double hi) {
  if (!v.is_number()) wrong_type(name, "a number", v);
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad_request("'" + name + "' must be between " + ordered_json(lo).dump() + " and " +
                          ordered_json(hi).dump() + ", got " + v.dump(),
                      name);
  return x;
}

int64_t get_int(const ordered_json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (v.is_number_float()) {
    const double x = v.get<double>();
    if (x != std::floor(x)) wrong_type(name, "an integer", v);
  } else if (!v.is_number()) {
    wrong_type(name, "an integer", v);
  }
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    throw bad_request("'" + name + "' must be at most " + std::to_string(hi), name);
  const double x = v.get<double>();
  if (x < static_cast<double>(lo) || x > static_cast<double>(hi))
    throw bad_request("'" + name + "' must be between " + std::to_string(lo) + " and " +
                          std::to_string(hi) + ", got " + v.dump(),
                      name);
  return v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
}

}  // namespace xtile::server
