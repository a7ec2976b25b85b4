// Reading an OpenAI-shaped request's fields: what is missing, of the wrong type or out of range
// is a 400 naming the field.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace xtile::server {

// The field `name`, or null when it is absent or JSON null (OpenAI's clients send nulls for
// "not given").
const nlohmann::ordered_json* field(const nlohmann::ordered_json& body, const char* name);

// "a string", "an array", ... for error messages.
const char* type_name(const nlohmann::ordered_json& v);

// Throws the 400 "'field' must be <expected>, got <v's type>".
[[noreturn]] void wrong_type(const std::string& field, const char* expected,
                             const nlohmann::ordered_json& v);

bool get_bool(const nlohmann::ordered_json& v, const std::string& name);
// A finite number within [lo, hi].
double get_number(const nlohmann::ordered_json& v, const std::string& name, double lo, double hi);
// An integer (an integral float too) within [lo, hi].
int64_t get_int(const nlohmann::ordered_json& v, const std::string& name, int64_t lo, int64_t hi);

}  // namespace xtile::server
