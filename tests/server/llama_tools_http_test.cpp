// Llama 3.1's function calling through the real server: a random model (tiny-llama's shape on
// the real Llama-3 vocabulary) run with --chat-template llama3.1. The prompt is checked against
// what Meta's template renders (Python's jinja2 with transformers' tojson, run outside the
// repository); the answers against the request's tools.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "forced_call.h"
#include "http_client.h"
#include "server_process.h"

namespace xtile::test {
namespace {
namespace llama_tools_http_test {  // unity batches: CMakeLists.txt

using nlohmann::json;
using nlohmann::ordered_json;  // the tools' keys go into the prompt in the order sent

Reply post_ordered(int port, const std::string& path, const ordered_json& body) {
  return request(port, "POST", path, body.dump());
}

#define REQUIRE_LLAMA3_MODEL()                                                            \
  if (llama3_model().empty())                                                             \
  GTEST_SKIP() << "../shared/fixtures/tokenizers/vocab-llama3.gguf is absent (needed to " \
                  "synthesize the test model)"

const ordered_json kWeatherTool = ordered_json::parse(R"({"type": "function", "function": {
    "name": "get_weather", "description": "Current weather in a city, °C",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}})");

TEST(ServerLlamaTools, ThePromptIsTheTemplates) {
  REQUIRE_LLAMA3_MODEL();
  ServerProcess s({"-m", llama3_model(), "--chat-template", "llama3.1", "-np", "1"});
  ASSERT_TRUE(s.ok());
  const ordered_json messages = ordered_json::parse(R"([
      {"role": "system", "content": "You are a weather bot."},
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "", "tool_calls": [{"id": "c1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "{\"temp\": 22, \"sky\": \"clear\"}\n"},
      {"role": "assistant", "content": "It is 22 °C and clear."},
      {"role": "user", "content": "Thanks!"}])");
  Reply r = post_ordered(s.port(), "/apply-template",
                         {{"messages", messages}, {"tools", ordered_json::array({kWeatherTool})}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(
      r.j()["prompt"],
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: "
      "ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nYou are a "
      "weather bot.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nGiven the following "
      "functions, please respond with a JSON for a function call with its proper arguments that "
      "best answers the given prompt.\n\nRespond in the format {\"name\": function name, "
      "\"parameters\": dictionary of argument name and its value}.Do not use variables.\n\n{\n  "
      "  \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\",\n     "
      "   \"description\": \"Current weather in a city, °C\",\n        \"parameters\": {\n      "
      "      \"type\": \"object\",\n            \"properties\": {\n                \"city\": "
      "{\n                    \"type\": \"string\"\n                }\n            },\n        "
      "    \"required\": [\n                \"city\"\n            ]\n        }\n    }\n}\n\nWeat"
      "her in Paris?<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{\"name\": "
      "\"get_weather\", \"parameters\": {\"city\": \"Paris\"}}<|eot_id|><|start_header_id|>"
      "ipython<|end_header_id|>\n\n\"{\\\"temp\\\": 22, \\\"sky\\\": \\\"clear\\\"}\\n\"<|eot_id|>"
      "<|start_header_id|>assistant<|end_header_id|>\n\nIt is 22 °C and clear.<|eot_id|><|start_"
      "header_id|>user<|end_header_id|>\n\nThanks!<|eot_id|><|start_header_id|>assistant<|end_"
      "header_id|>\n\n");
  // The template's variables through chat_template_kwargs, as llama-server passes them.
  r = post_ordered(s.port(), "/apply-template",
                   {{"messages", ordered_json::array({{{"role", "user"}, {"content", "Hi"}}})},
                    {"tools", ordered_json::array({kWeatherTool})},
                    {"chat_template_kwargs",
                     {{"tools_in_user_message", false}, {"date_string", "01 Jan 2025"}}}});
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string prompt = r.j()["prompt"];
  EXPECT_TRUE(prompt.starts_with(
      "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nEnvironment: "
      "ipython\nCutting Knowledge Date: December 2023\nToday Date: 01 Jan 2025\n\nYou have "
      "access to the following functions."))
      << prompt;
  EXPECT_TRUE(
      prompt.ends_with("}\n\n<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
                       "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"))
      << prompt;
  // What the template refuses is a 400 naming it: two calls in one turn, a wrong kwarg.
  ordered_json two = messages;
  two[2]["tool_calls"].push_back(two[2]["tool_calls"][0]);
  r = post_ordered(
      s.port(), "/v1/chat/completions",
      {{"messages", two}, {"tools", ordered_json::array({kWeatherTool})}, {"max_tokens", 1}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("one call per turn"), std::string::npos) << r.body;
  r = post_ordered(s.port(), "/v1/chat/completions",
                   {{"messages", messages}, {"chat_template_kwargs", {{"date_string", 5}}}});
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("date_string"), std::string::npos) << r.body;
  EXPECT_EQ(s.stop(), 0) << s.log();
}

// tool_choice "required" or a named function: the random model's answer is one call of the
// request's tools, its arguments an instance of the schema, whole or streamed, the same bits
// beside another request. With "auto" it writes text, which comes back as the content.
TEST(ServerLlamaTools, ForcedAnswersAreOneCallOfTheTools) {
  REQUIRE_LLAMA3_MODEL();
  ServerProcess s({"-m", llama3_model(), "--chat-template", "llama3.1", "-np", "2"});
  ASSERT_TRUE(s.ok());
  json tools = chat_weather_tools();  // get_weather(city, one of three names), and ping()
  tools.push_back({{"type", "function"},
                   {"function",
                    {{"name", "ping"},
                     {"parameters", {{"type", "object"}, {"additionalProperties", false}}}}}});
  const auto body = [&](uint64_t seed, const json& choice) {
    return json{{"messages", json::array({{{"role", "user"}, {"content", "Weather in Oslo?"}}})},
                {"max_tokens", 400},
                {"seed", seed},
                {"temperature", 0.8},
                {"tools", tools},
                {"tool_choice", choice},
                {"parallel_tool_calls", true}};  // still one: the template's rule
  };
  const auto check_call = [](const json& c) {
    EXPECT_TRUE(c["id"].get<std::string>().starts_with("call_"));
    const json args = json::parse(c["function"]["arguments"].get<std::string>());
    if (c["function"]["name"] == "ping") {
      EXPECT_EQ(args, json::object());
    } else {
      EXPECT_EQ(c["function"]["name"], "get_weather");
      const std::string city = args.at("city");
      EXPECT_TRUE(city == "Oslo" || city == "Paris" || city == "Lima") << args;
    }
  };
  for (uint64_t seed = 1; seed <= 3; ++seed) {
    const Reply r = post(s.port(), "/v1/chat/completions", body(seed, "required"));
    ASSERT_EQ(r.status, 200) << r.body;
    const json c = r.j()["choices"][0];
    SCOPED_TRACE(c.dump());
    EXPECT_EQ(c["finish_reason"], "tool_calls");
    EXPECT_TRUE(c["message"]["content"].is_null());
    ASSERT_EQ(c["message"]["tool_calls"].size(), 1u);
    check_call(c["message"]["tool_calls"][0]);
  }
  const json named = {{"type", "function"}, {"function", {{"name", "get_weather"}}}};
  const Reply alone = post(s.port(), "/v1/chat/completions", body(7, named));
  ASSERT_EQ(alone.status, 200) << alone.body;
  const json call = alone.j()["choices"][0]["message"]["tool_calls"];
  ASSERT_EQ(call.size(), 1u) << alone.body;
  EXPECT_EQ(call[0]["function"]["name"], "get_weather");
  check_call(call[0]);

  // Streamed: one tool_calls delta, the same call.
  json b = body(7, named);
  b["stream"] = true;
  const Reply streamed = post(s.port(), "/v1/chat/completions", b);
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  json deltas = json::array();
  std::string finish;
  for (size_t at = streamed.body.find("data: {"); at != std::string::npos;
       at = streamed.body.find("data: {", at + 1)) {
    const json e = json::parse(streamed.body.substr(at + 6, streamed.body.find('\n', at) - at - 6));
    if (e["choices"].empty()) continue;
    const json& ch = e["choices"][0];
    if (ch["delta"].contains("tool_calls"))
      for (const json& c : ch["delta"]["tool_calls"]) deltas.push_back(c["function"]);
    if (!ch["finish_reason"].is_null()) finish = ch["finish_reason"];
  }
  EXPECT_EQ(finish, "tool_calls");
  ASSERT_EQ(deltas.size(), 1u) << streamed.body;
  EXPECT_EQ(deltas[0], call[0]["function"]);

  // Beside another request: the same bits.
  Reply beside;
  std::thread other([&] { beside = post(s.port(), "/v1/chat/completions", body(3, "auto")); });
  const Reply again = post(s.port(), "/v1/chat/completions", body(7, named));
  other.join();
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.j()["choices"][0]["message"]["tool_calls"][0]["function"], call[0]["function"]);

  // auto: the random model writes text; it is the content, untouched by the call grammar.
  ASSERT_EQ(beside.status, 200) << beside.body;
  const json text = beside.j()["choices"][0];
  if (!text["message"].contains("tool_calls")) {
    EXPECT_TRUE(text["message"]["content"].is_string()) << text;
    EXPECT_NE(text["finish_reason"], "tool_calls") << text;
  } else {  // a call the model made by itself must be one of the tools' (the grammar held it)
    ASSERT_EQ(text["message"]["tool_calls"].size(), 1u) << text;
    check_call(text["message"]["tool_calls"][0]);
  }
  EXPECT_EQ(s.stop(), 0) << s.log();
}

}  // namespace llama_tools_http_test
}  // namespace
}  // namespace xtile::test
