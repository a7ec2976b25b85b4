// Reading a request body's fields for the routes that translate another API's request (Ollama's,
// Anthropic's, OpenAI's Responses): what is wrong is a 400 naming the field by its path in that
// API ("messages[2].content[0].text"), not by where it lands in the chat request.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace xtile::server {

// The value at `key`, or null when it is absent or JSON null (clients send null for "not given").
const nlohmann::ordered_json* present(const nlohmann::ordered_json& o, const char* key);

// Throws the 400 "'at' must be what".
[[noreturn]] void must_be(const std::string& at, const std::string& what);

// The string at `key` ("" when absent and not required); `at` names it in errors.
std::string string_at(const nlohmann::ordered_json& o, const char* key, const std::string& at,
                      bool required);

}  // namespace xtile::server
