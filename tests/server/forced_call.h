// The function-calling fixture of the tests of the API shapes (Anthropic's, the Responses') on the
// one-layer random qwen3 (and of Llama 3.1's calls): get_weather(city, one of three names: a call
// that closes within a few tokens), and the call the chat route makes when it is forced with a
// seed: the call the other shapes must give for the same request.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "http_client.h"

namespace xtile::test {

inline nlohmann::json city_schema() {
  return {{"type", "object"},
          {"properties", {{"city", {{"enum", {"Oslo", "Paris", "Lima"}}}}}},
          {"required", {"city"}},
          {"additionalProperties", false}};
}

// The chat route's tool list of get_weather.
inline nlohmann::json chat_weather_tools() {
  return nlohmann::json::array(
      {{{"type", "function"},
        {"function", {{"name", "get_weather"}, {"parameters", city_schema()}}}}});
}

// tool_calls[0] of the chat route's answer to `question` with get_weather forced (one call,
// thinking off, temperature 0.8, this seed); null after a failed expectation.
inline nlohmann::json chat_forced_call(int port, const std::string& question, uint64_t seed) {
  using nlohmann::json;
  const Reply r =
      post(port, "/v1/chat/completions",
           {{"messages", json::array({{{"role", "user"}, {"content", question}}})},
            {"tools", chat_weather_tools()},
            {"tool_choice", {{"type", "function"}, {"function", {{"name", "get_weather"}}}}},
            {"parallel_tool_calls", false},
            {"chat_template_kwargs", {{"enable_thinking", false}}},
            {"seed", seed},
            {"temperature", 0.8},
            {"max_tokens", 200}});
  EXPECT_EQ(r.status, 200) << r.body;
  if (r.status != 200) return nullptr;
  return r.j()["choices"][0]["message"]["tool_calls"][0];
}

}  // namespace xtile::test
